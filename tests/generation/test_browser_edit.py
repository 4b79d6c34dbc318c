"""The Generate and Edit forms in a real browser: switching models, coming back to staged
reference images, and the number of images kept across a switch."""

from __future__ import annotations

from typing import Any

import pytest

from studio.generation.models import Job, StagedImage
from tests.support.browser import screenshot, serious_accessibility_problems, signed_in_context
from tests.support.inputs import add_images, boxes_of, card, close_to, draw_box, file, picture

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def console_errors(page: Any) -> list[str]:
    """What the page logs as an error from here on: htmx reports a failed swap there."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def choose_model(page: Any, label: str) -> str:
    """Pick a model and wait until htmx has swapped the answer in, or failed to: which."""
    page.evaluate(
        """() => { window.swapOutcome = new Promise(done => {
             const once = event => done(event.type);
             document.body.addEventListener("htmx:afterSettle", once, {once: true});
             document.body.addEventListener("htmx:swapError", once, {once: true});
           }); }"""
    )
    page.get_by_label(label, exact=False).first.check()
    return page.evaluate("() => window.swapOutcome")


def draw(page: Any, number: int, box: tuple[int, int, int, int]) -> None:
    """Open image `number` large from its thumbnail, and draw a region on it by mouse."""
    card(page, number).locator("[data-open]").click()
    draw_box(page, number, box)


def ids_on_page(page: Any) -> list[str]:
    return page.eval_on_selector_all("[data-input]", "cards => cards.map(c => c.dataset.input)")


def test_switching_model_on_edit_redraws_one_form_with_the_images_and_regions(page):
    errors = console_errors(page)
    page.goto("/edit/")
    add_images(
        page,
        file("first.png", picture(1000, 800), "image/png"),
        file("second.png", picture(800, 1000), "image/png"),
        file("narrow.png", picture(300, 900), "image/png"),  # too small for Wan 2.5
        file("fourth.png", picture(900, 900), "image/png"),
        file("fifth.png", picture(1200, 900), "image/png"),
    )
    draw(page, 1, (100, 100, 500, 400))
    card(page, 2).get_by_role("button", name="Move image 2 earlier").click()
    order = ids_on_page(page)
    regions = boxes_of(page, 2)
    assert close_to(regions[0], (100, 100, 500, 400))

    outcome = choose_model(page, "Wan 2.6 Image")
    assert page.locator("form.generate-form").count() == 1
    assert page.locator(".recent-jobs form.generate-form").count() == 0
    assert outcome == "htmx:afterSettle"
    assert ids_on_page(page) == order
    # Kept, not sent: Wan 2.6 Image takes no regions, and the card says so.
    kept = page.locator(f'input[type=hidden][name="boxes-{order[1]}"]')
    assert close_to([int(v) for v in kept.input_value().split(",")], tuple(regions[0]))
    assert "does not take regions" in card(page, 2).inner_text()
    assert not [e for e in errors if "htmx" in e or "remove" in e], errors

    # Wan 2.5 takes three images of at least 384 pixels a side: the narrow one and the
    # last are set aside, each saying why, and nothing else changes.
    choose_model(page, "Wan 2.5 Edit")
    assert page.locator("form.generate-form").count() == 1
    assert ids_on_page(page) == order
    narrow = page.locator(f'[data-input="{order[2]}"]')
    last = page.locator(f'[data-input="{order[4]}"]')
    assert "Not sent" in narrow.inner_text() and "at least 384 pixels" in narrow.inner_text()
    assert "Not sent" in last.inner_text() and "at most 3 images" in last.inner_text()
    numbers = [card(page, n).locator("[data-position]").inner_text() for n in (1, 2, 4)]
    assert numbers == ["1", "2", "3"]
    assert page.locator("[data-insert-ref]:visible").count() == 3
    assert not serious_accessibility_problems(page)
    screenshot(page, "edit-switched-set-aside")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "edit-switched-set-aside-phone")
    page.set_viewport_size(LAPTOP)

    # Back to a model that takes them all: every image is sent again, regions and all.
    choose_model(page, "Wan 2.7 Image Pro")
    assert ids_on_page(page) == order
    assert page.locator("[data-input] [data-aside-note]").count() == 0
    assert close_to(boxes_of(page, 2)[0], tuple(regions[0]))
    assert page.locator(".region").count() == 1

    # Removing an image that is sent makes room: the one set aside for the count is sent
    # again, the page says so at once, and the studio keeps it so.
    choose_model(page, "Wan 2.5 Edit")
    card(page, 1).get_by_role("button", name="Remove image 1").click()
    assert "Not sent" not in last.inner_text()
    assert last.locator("[data-position]").inner_text() == "3"
    assert "Not sent" in narrow.inner_text()
    assert (
        page.evaluate("document.activeElement.closest('[data-input]').dataset.input") == (order[1])
    )
    page.wait_for_function("() => !document.querySelector('[data-remembering]')")
    page.reload()
    assert ids_on_page(page) == order[1:]
    assert page.locator("[data-aside]").count() == 1
    assert page.is_checked('input[name=model][value="wan2.5-i2i-preview"]')  # after a reload
    assert not [e for e in errors if "htmx" in e or "remove" in e], errors


def test_staged_images_come_back_after_a_reload_and_another_page(page, worker):
    page.goto("/edit/")
    add_images(
        page,
        file("one.png", picture(1000, 800), "image/png"),
        file("two.png", picture(800, 1000), "image/png"),
        file("three.png", picture(900, 900), "image/png"),
    )
    draw(page, 1, (100, 100, 500, 400))
    draw(page, 3, (50, 60, 300, 350))
    card(page, 3).get_by_role("button", name="Move image 3 earlier").click()
    order = ids_on_page(page)
    first, third = boxes_of(page, 1), boxes_of(page, 2)
    # What the page asks the studio to keep is kept before the person leaves.
    page.wait_for_function("() => !document.querySelector('[data-remembering]')")

    page.reload()
    assert ids_on_page(page) == order
    assert close_to(boxes_of(page, 1)[0], tuple(first[0]))
    assert close_to(boxes_of(page, 2)[0], tuple(third[0]))
    assert page.locator(".region").count() == 2
    page.goto("/gallery/")
    page.goto("/edit/")
    assert ids_on_page(page) == order
    assert [card(page, n).locator("[data-position]").inner_text() for n in (1, 2, 3)] == [
        "1",
        "2",
        "3",
    ]
    screenshot(page, "edit-staged-after-reload")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "edit-staged-after-reload-phone")
    page.set_viewport_size(LAPTOP)

    # Removed, it stays removed.
    card(page, 3).get_by_role("button", name="Remove image 3").click()
    page.wait_for_function("() => !document.querySelector('[data-remembering]')")
    page.reload()
    assert ids_on_page(page) == order[:2]

    # Used in a job, they leave the form.
    page.fill("textarea[name=prompt]", "Put the lamp from image 1 into image 2")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.locator(".result-entry").first.wait_for()  # sent: the designer stays on the page
    assert Job.objects.get().inputs.count() == 2
    assert page.locator("[data-input]").count() == 0  # used, they left the form
    page.goto("/edit/")
    assert ids_on_page(page) == []


def test_staged_images_are_shown_only_to_who_staged_them(page, browser, live_server):
    from tests.support.factories import create_membership, create_user

    page.goto("/edit/")
    add_images(page, file("mine.png", picture(800, 600), "image/png"))
    staged = StagedImage.objects.get()
    member = create_membership(team=staged.team, user=create_user(username="cole"))
    other = _signed_in_tab(browser, live_server, member.user)
    other.goto("/edit/")
    assert other.locator("[data-input]").count() == 0
    assert other.request.get(f"/edit/inputs/{staged.pk}").status == 404
    other.context.close()


def _signed_in_tab(browser: Any, live_server: Any, user: Any) -> Any:
    return signed_in_context(browser, live_server, user, viewport=LAPTOP).new_page()


def test_the_number_of_images_is_kept_across_a_model_switch(page):
    page.goto("/generate/")
    choose_model(page, "Wan 2.6")
    page.select_option("select[name=n]", "3")
    choose_model(page, "Qwen-Image 2.0 Pro")
    assert page.input_value("select[name=n]") == "3"
    assert page.locator("[data-cost-images]").inner_text() == "3 images"
    # Qwen-Image Max makes one image a request: the number is lowered, and it says so.
    choose_model(page, "Qwen-Image Max")
    assert page.input_value("select[name=n]") == "1"
    note = page.locator("[data-n-note]")
    assert "Qwen-Image Max makes at most 1 image" in note.inner_text()
    assert "you chose 3" in note.inner_text()
    described = page.get_attribute("select[name=n]", "aria-describedby") or ""
    assert note.get_attribute("id") in described.split()
    assert not serious_accessibility_problems(page)
    screenshot(page, "generate-n-clamped")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "generate-n-clamped-phone")
    page.set_viewport_size(LAPTOP)

    page.goto("/edit/")
    add_images(page, file("one.png", picture(1000, 800), "image/png"))
    page.select_option("select[name=n]", "3")
    choose_model(page, "Wan 2.6 Image")
    assert page.input_value("select[name=n]") == "3"
    assert page.locator("[data-cost-images]").inner_text() == "3 images"

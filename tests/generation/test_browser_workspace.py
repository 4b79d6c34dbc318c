"""Generate and Edit as a workspace in a real browser: the form beside the results with its
submit control in reach, the reference images as a strip of thumbnails that can be dragged
or moved from the keyboard, one opened large to draw regions, by mouse or by touch."""

from __future__ import annotations

import re
from typing import Any

import pytest

from studio.generation.models import Job
from tests.support.browser import (
    ARTIFACTS,
    finished_job,
    screenshot,
    serious_accessibility_problems,
    signed_in_context,
)
from tests.support.inputs import add_images, close_to, draw_box, file, picture

pytestmark = [pytest.mark.django_db(transaction=True)]

LAPTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def window_screenshot(page: Any, name: str) -> None:
    """What the window shows: an image opened large lies over the page, fixed to the window,
    which a screenshot of the whole page would draw out of place."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def tile(page: Any, number: int) -> Any:
    return page.locator("[data-input]").nth(number - 1)


def open_image(page: Any, number: int) -> Any:
    """Open image `number` large, as a designer does to draw on it; its panel."""
    card = tile(page, number)
    card.locator("[data-open]").click()
    panel = card.locator("[data-detail]")
    panel.locator("[data-stage] img").wait_for(state="visible")
    return panel


def draw_on(page: Any, number: int, box: tuple[int, int, int, int]) -> None:
    open_image(page, number)
    draw_box(page, number, box)


def ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("[data-input]", "cards => cards.map(c => c.dataset.input)")


def numbers(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "[data-input] [data-position]", "spans => spans.map(s => s.textContent.trim())"
    )


def boxes_by_id(page: Any) -> dict[str, str]:
    return page.eval_on_selector_all(
        "[data-input]",
        """cards => Object.fromEntries(cards.map(c => [c.dataset.input,
             c.querySelector('[data-boxes]').value]))""",
    )


def parse(text: str) -> list[list[int]]:
    return [[int(v) for v in part.split(",")] for part in text.split(";") if part.strip()]


def remembered(page: Any) -> None:
    page.wait_for_function("() => !document.querySelector('[data-remembering]')")


def three_images_with_regions(page: Any) -> tuple[list[str], dict[str, str]]:
    page.goto("/edit/")
    add_images(
        page,
        file("one.png", picture(1000, 800), "image/png"),
        file("two.png", picture(800, 1000), "image/png"),
        file("three.png", picture(900, 900), "image/png"),
    )
    draw_on(page, 1, (100, 100, 500, 400))
    draw_on(page, 3, (50, 60, 300, 350))
    remembered(page)
    return ids(page), boxes_by_id(page)


def in_window(box: dict[str, float] | None, size: dict[str, int]) -> bool:
    return bool(
        box
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= size["width"]
        and box["y"] + box["height"] <= size["height"]
    )


def test_a_reload_finds_three_images_in_order_with_their_regions(page):
    order, boxes = three_images_with_regions(page)
    assert close_to(parse(boxes[order[0]])[0], (100, 100, 500, 400))
    assert boxes[order[1]] == ""
    assert close_to(parse(boxes[order[2]])[0], (50, 60, 300, 350))

    page.reload()
    assert ids(page) == order and numbers(page) == ["1", "2", "3"]
    assert boxes_by_id(page) == boxes
    # Each tile says whether it carries regions, before it is opened.
    badges = [tile(page, n).locator("[data-regions-badge]") for n in (1, 2, 3)]
    assert [b.is_visible() for b in badges] == [True, False, True]
    assert "1 region" in tile(page, 3).locator("[data-open]").get_attribute("aria-label")
    assert page.locator(".region:visible").count() == 0  # all closed: a compact strip
    panel = open_image(page, 3)
    assert panel.locator(".region").count() == 1
    assert panel.locator("[data-detail-title]").inner_text() == "Image 3"
    assert "is-open" in (tile(page, 3).get_attribute("class") or "")


def test_dragging_a_thumbnail_reorders_the_images_and_their_regions_follow(page):
    order, boxes = three_images_with_regions(page)
    first, second, third = order
    source = tile(page, 1).locator(".tile-thumb").bounding_box()
    target = tile(page, 3).locator(".tile-thumb").bounding_box()
    page.mouse.move(source["x"] + source["width"] / 2, source["y"] + source["height"] / 2)
    page.mouse.down()
    page.mouse.move(source["x"] + source["width"] / 2 + 10, source["y"] + 30, steps=3)
    page.mouse.move(target["x"] + target["width"] * 0.75, target["y"] + 30, steps=12)
    page.mouse.up()

    assert ids(page) == [second, third, first]
    assert numbers(page) == ["1", "2", "3"]
    assert boxes_by_id(page) == boxes  # each image's regions went with it
    assert (
        tile(page, 3)
        .locator("[data-open]")
        .get_attribute("aria-label")
        .startswith("Open image 3 (1 region)")
    )
    assert "Moved to image 3" in page.locator("[data-order-status]").inner_text()
    # A drag is not a click: the image open before (the third) still is, and only it.
    assert page.locator(".input-detail.is-open").count() == 1
    assert "is-open" in (tile(page, 2).get_attribute("class") or "")
    panel = open_image(page, 3)
    assert panel.locator("[data-detail-title]").inner_text() == "Image 3"
    assert panel.locator(".region").count() == 1

    remembered(page)
    page.reload()
    assert ids(page) == [second, third, first]
    assert boxes_by_id(page) == boxes


def test_the_keyboard_reorders_and_the_focus_stays_on_the_moved_image(page):
    order, boxes = three_images_with_regions(page)
    first, second, third = order
    tile(page, 1).locator("[data-open]").focus()
    page.keyboard.press("Alt+ArrowRight")
    assert ids(page) == [second, first, third]
    focused = "() => [document.activeElement.closest('[data-input]')?.dataset.input, " + (
        "document.activeElement.hasAttribute('data-open')]"
    )
    assert page.evaluate(focused) == [first, True]
    page.keyboard.press("Alt+ArrowRight")
    assert ids(page) == [second, third, first]
    assert page.evaluate(focused) == [first, True]
    assert "Moved to image 3" in page.locator("[data-order-status]").inner_text()

    # The arrow buttons do the same, and keep the focus on themselves.
    tile(page, 3).get_by_role("button", name="Move image 3 earlier").press("Enter")
    assert ids(page) == [second, first, third]
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == (
        "Move image 2 earlier"
    )
    assert boxes_by_id(page) == boxes

    # Opened from the keyboard, and closed with Escape back to its thumbnail.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    tile(page, 2).locator("[data-open]").focus()
    page.keyboard.press("Enter")
    panel = tile(page, 2).locator("[data-detail]")
    assert panel.is_visible()
    assert page.evaluate("() => document.activeElement.hasAttribute('data-detail-title')")
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert page.evaluate(focused) == [first, True]
    remembered(page)
    page.reload()
    assert ids(page) == [second, first, third]


def nine_references(page: Any) -> None:
    page.goto("/edit/?model=wan2.7-image-pro")
    pictures = (file(f"ref-{n}.png", picture(400 + n * 10, 300), "image/png") for n in range(9))
    add_images(page, *pictures)
    assert page.locator("[data-input]").count() == 9


def test_the_submit_control_is_in_the_window_with_nine_references(page):
    nine_references(page)
    page.evaluate("window.scrollTo(0, 0)")
    edit = page.get_by_role("button", name="Edit", exact=True).last
    assert in_window(edit.bounding_box(), LAPTOP)
    assert "image" in page.locator(".submit-bar [data-cost]").inner_text()
    assert in_window(page.locator(".submit-bar [data-cost-images]").bounding_box(), LAPTOP)
    screenshot(page, "workspace-edit-nine-1440")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # On a phone the submit bar with its cost sticks to the foot of the screen.
    assert in_window(edit.bounding_box(), PHONE)
    assert in_window(page.locator(".submit-bar [data-cost-images]").bounding_box(), PHONE)
    page.set_viewport_size(LAPTOP)

    page.goto("/generate/")
    generate = page.get_by_role("button", name="Generate", exact=True)
    assert in_window(generate.bounding_box(), LAPTOP)
    assert in_window(page.locator(".submit-bar [data-cost-images]").bounding_box(), LAPTOP)
    screenshot(page, "workspace-generate-1440")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert in_window(generate.bounding_box(), PHONE)
    screenshot(page, "workspace-generate-390")


def wide_size(page: Any) -> tuple[int, int]:
    """Choose the widest of the model's preset sizes; its width and height."""
    values = page.eval_on_selector_all("select[name=size] option", "os => os.map(o => o.value)")
    sizes = []
    for value in values:
        match = re.fullmatch(r"(\d+)\*(\d+)", value)
        if match:
            sizes.append((int(match[1]), int(match[2]), value))
    width, height, value = max(sizes, key=lambda s: s[0] / s[1])
    assert width > height
    page.select_option("select[name=size]", value)
    return width, height


def places_then_images(page: Any, before: int, count: int, shape: tuple[int, int]) -> None:
    """A new first result shows `count` places in `shape`, then fills them with images."""
    page.wait_for_function("n => document.querySelectorAll('.result-entry').length > n", arg=before)
    entry = page.locator(".result-entry").first
    waiting = entry.locator("[data-tile=waiting]")
    assert waiting.count() == count
    place = entry.locator(".result-tiles > li").first.bounding_box()
    assert place and abs(place["width"] / place["height"] - shape[0] / shape[1]) < 0.03
    entry.locator("img[data-tile=image]").nth(count - 1).wait_for(timeout=40_000)
    assert entry.locator("img[data-tile=image]").count() == count
    assert entry.locator("[data-tile=waiting]").count() == 0


def test_generate_and_edit_show_places_of_the_asked_shape_then_images_in_place(page, worker):
    page.goto("/generate/")
    page.get_by_label("Wan 2.6", exact=False).first.check()
    page.get_by_text("Between 1280×1280 and 1440×1440").wait_for()
    page.fill("textarea[name=prompt]", "A harbour at dawn, wide")
    shape = wide_size(page)
    page.select_option("select[name=n]", "2")
    url = page.url
    page.evaluate("window.stillThisPage = true")
    page.get_by_role("button", name="Generate", exact=True).click()
    places_then_images(page, 0, 2, shape)
    assert page.url == url and page.evaluate("window.stillThisPage") is True

    page.goto("/edit/?model=wan2.7-image-pro")
    add_images(page, file("room.png", picture(1200, 600), "image/png"))
    draw_on(page, 1, (100, 100, 500, 400))
    page.fill("textarea[name=prompt]", "Put a lamp in the box on image 1")
    shape = (1200, 600)  # Wan 2.7 makes its images in the shape of the last one given
    page.select_option("select[name=n]", "2")
    url = page.url
    page.evaluate("window.stillThisPage = true")
    page.get_by_role("button", name="Edit", exact=True).click()
    places_then_images(page, 1, 2, shape)
    assert page.url == url and page.evaluate("window.stillThisPage") is True
    assert Job.objects.count() == 2
    screenshot(page, "workspace-edit-results-1440")


def touch_tab(browser: Any, live_server: Any, user: Any) -> Any:
    """A phone's tab with a touch screen, signed in as `user`."""
    context = signed_in_context(
        browser, live_server, user, viewport=PHONE, has_touch=True, is_mobile=True
    )
    return context.new_page()


def test_a_region_is_drawn_with_a_finger(page, browser, live_server, designer_member):
    page.goto("/edit/?model=wan2.7-image-pro")
    add_images(page, file("one.png", picture(1000, 800), "image/png"))
    remembered(page)
    phone = touch_tab(browser, live_server, designer_member.user)
    errors: list[str] = []
    phone.on("pageerror", lambda error: errors.append(str(error)))
    try:
        phone.goto("/edit/")
        card = phone.locator("[data-input]").first
        card.locator("[data-open]").tap()
        img = card.locator("[data-stage] img")
        img.wait_for(state="visible")
        rect = img.bounding_box()
        scrolled = phone.evaluate("() => document.querySelector('[data-detail].is-open').scrollTop")

        def at(x: int, y: int) -> dict[str, float]:
            return {
                "x": rect["x"] + x / 1000 * rect["width"],
                "y": rect["y"] + y / 800 * rect["height"],
            }

        cdp = phone.context.new_cdp_session(phone)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [at(200, 150)]})
        for step in range(1, 9):
            x = 200 + (700 - 200) * step // 8
            y = 150 + (600 - 150) * step // 8
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [at(x, y)]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

        drawn = parse(card.locator("[data-boxes]").input_value())
        assert len(drawn) == 1 and close_to(drawn[0], (200, 150, 700, 600), tolerance=6)
        # The finger drew; it did not scroll the panel or the page.
        assert (
            phone.evaluate("() => document.querySelector('[data-detail].is-open').scrollTop")
            == scrolled
        )
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        window_screenshot(phone, "workspace-edit-touch-region-390")
        phone.wait_for_function("() => !document.querySelector('[data-remembering]')")
    finally:
        phone.context.close()
    assert not errors, errors


def test_edit_with_three_images_and_one_open_has_no_serious_accessibility_problem(page):
    three_images_with_regions(page)
    page.reload()
    page.fill("textarea[name=prompt]", "Put the lamp from image 1 into the box on image 3")
    open_image(page, 1)
    assert not serious_accessibility_problems(page)
    screenshot(page, "workspace-edit-1440")
    page.set_viewport_size(PHONE)
    tile(page, 1).locator("[data-detail] [data-close]").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "workspace-edit-390")
    open_image(page, 2)
    assert not serious_accessibility_problems(page)
    window_screenshot(page, "workspace-edit-open-390")


def test_a_finger_reorders_the_strip_after_a_short_press(
    page, browser, live_server, designer_member
):
    page.goto("/edit/?model=wan2.7-image-pro")
    add_images(
        page,
        file("one.png", picture(1000, 800), "image/png"),
        file("two.png", picture(800, 1000), "image/png"),
    )
    remembered(page)
    first, second = ids(page)
    phone = touch_tab(browser, live_server, designer_member.user)
    try:
        phone.goto("/edit/")
        source = phone.locator("[data-input]").nth(0).locator(".tile-thumb")
        # Mid-screen, clear of the submit bar stuck to the foot of the screen.
        source.evaluate("el => el.scrollIntoView({block: 'center'})")
        start = source.bounding_box()
        end = phone.locator("[data-input]").nth(1).locator(".tile-thumb").bounding_box()
        cdp = phone.context.new_cdp_session(phone)
        x, y = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2

        def touch(kind: str, *points: dict[str, float]) -> None:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": list(points)})

        # A swipe that does not wait is the page's: nothing is picked up.
        touch("touchStart", {"x": x, "y": y})
        for step in range(1, 6):
            touch("touchMove", {"x": x + (end["x"] + 60 - x) * step / 5, "y": y})
        touch("touchEnd")
        order = phone.eval_on_selector_all("[data-input]", "cs => cs.map(c => c.dataset.input)")
        assert order == [first, second]
        touch("touchStart", {"x": x, "y": y})
        phone.wait_for_timeout(400)  # a short press: the strip is picked up, not scrolled
        to_x, to_y = end["x"] + end["width"] * 0.75, end["y"] + end["height"] / 2
        for step in range(1, 11):
            point = {"x": x + (to_x - x) * step / 10, "y": y + (to_y - y) * step / 10}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
            phone.wait_for_timeout(30)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        order = phone.eval_on_selector_all("[data-input]", "cs => cs.map(c => c.dataset.input)")
        assert order == [second, first]
        numbers_now = phone.eval_on_selector_all(
            "[data-input] [data-position]", "spans => spans.map(s => s.textContent.trim())"
        )
        assert numbers_now == ["1", "2"]
        phone.wait_for_function("() => !document.querySelector('[data-remembering]')")
    finally:
        phone.context.close()
    page.reload()
    assert ids(page) == [second, first]


def test_an_image_with_a_problem_is_marked_on_its_tile_and_brought_into_view(page):
    page.goto("/edit/?model=wan2.7-image-pro")
    add_images(
        page,
        file("one.png", picture(800, 600), "image/png"),
        file("two.png", picture(600, 800), "image/png"),
    )
    tile(page, 2).locator("[data-boxes]").evaluate("field => { field.value = '10,10,900,100'; }")
    page.fill("textarea[name=prompt]", "Warmer colours on image 2")
    page.locator(".studio-side").evaluate("side => side.scrollTo(0, side.scrollHeight)")
    page.get_by_role("button", name="Edit", exact=True).click()
    marked = page.locator("[data-input].has-error")
    marked.wait_for()
    assert marked.get_attribute("data-input") == ids(page)[1]
    assert marked.locator(".badge-problem").is_visible()
    assert "reaches outside the 600×800 image" in marked.inner_text()  # read out with it
    page.wait_for_function(
        """() => {
             const r = document.querySelector('[data-input].has-error').getBoundingClientRect();
             return r.top >= 0 && r.bottom <= innerHeight;
           }"""
    )
    panel = open_image(page, 2)
    assert "reaches outside the 600×800 image" in panel.inner_text()
    assert not Job.objects.exists()


def test_a_size_to_fix_is_brought_clear_of_the_submit_bar_and_focused(page):
    page.goto("/generate/")
    page.get_by_label("Wan 2.6", exact=False).first.check()
    page.get_by_text("Between 1280×1280 and 1440×1440").wait_for()  # the form redrawn for it
    page.fill("textarea[name=prompt]", "A potter at her wheel")
    page.fill("input[name=custom_size]", "900×1350")
    # The list's choice is not the size sent, and says so.
    assert page.get_by_text("Using your own size below.").is_visible()
    page.get_by_role("button", name="Generate", exact=True).click()
    error = page.locator(".field-custom_size .field-error")
    error.wait_for()
    page.wait_for_function(
        "() => document.activeElement && document.activeElement.name === 'custom_size'"
    )
    box = error.bounding_box()
    bar = page.locator(".submit-bar").bounding_box()
    assert in_window(box, LAPTOP)
    assert box["y"] + box["height"] <= bar["y"]  # above the bar, not under it
    # Where the designer looked: beside the button, a link to what to fix.
    summary = page.locator(".submit-bar [data-submit-problems]")
    assert summary.inner_text().startswith("1 thing to fix: Or your own size — ")
    assert in_window(summary.bounding_box(), LAPTOP)
    page.locator("textarea[name=prompt]").focus()
    summary.get_by_role("link").click()
    assert page.evaluate("document.activeElement.name") == "custom_size"
    window_screenshot(page, "workspace-generate-size-to-fix-1440")
    assert not Job.objects.exists()


def test_the_live_size_check_and_the_refusal_say_the_same(page):
    page.goto("/generate/")
    page.get_by_label("Wan 2.6", exact=False).first.check()
    page.get_by_text("Between 1280×1280 and 1440×1440").wait_for()
    page.fill("textarea[name=prompt]", "A potter at her wheel")
    page.fill("input[name=custom_size]", "900×1350")
    said = "900×1350 is 1,215,000 pixels; Wan 2.6 makes between 1280×1280 and 1440×1440 in total."
    assert page.locator("[data-size-check]").inner_text() == said
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator(".field-custom_size .field-error", has_text=said).wait_for()


def test_on_a_phone_the_new_job_is_brought_into_view_after_sending(page, worker):
    page.set_viewport_size(PHONE)
    page.goto("/generate/")
    page.fill("textarea[name=prompt]", "A lighthouse at dusk")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator(".result-entry").first.wait_for()
    # Smoothly, unless less motion is asked for: it arrives in a moment, and stays.
    page.wait_for_function(
        """() => { const y = scrollY, still = window.lastY === y;
                   window.lastY = y; return still && y > 0; }""",
        polling=250,
    )
    # Its head and the top of its places in sight (as far up as the page's end lets it).
    entry = page.locator(".result-entry").first.bounding_box()
    assert entry["y"] >= 0 and entry["y"] + 120 <= PHONE["height"]
    window_screenshot(page, "workspace-generate-sent-390")
    # On a wide screen the results are in sight beside the form: nothing moves.
    page.set_viewport_size(LAPTOP)
    page.goto("/generate/")  # the prompt is back from its draft
    scrolled = """() => [window.scrollY, document.querySelector('.studio-side').scrollTop,
                         document.querySelector('.studio-results').scrollTop]"""
    before = page.evaluate(scrolled)
    page.get_by_role("button", name="Generate", exact=True).click()
    page.locator(".result-entry").nth(1).wait_for()
    page.wait_for_timeout(300)
    assert page.evaluate(scrolled) == before


def test_a_reload_keeps_the_prompts_typed_on_each_page(page):
    page.goto("/generate/?model=wan2.6-t2i")
    page.fill("textarea[name=prompt]", "A harbour at dawn")
    page.fill("[name=negative_prompt]", "people")
    page.reload()
    assert page.locator("textarea[name=prompt]").input_value() == "A harbour at dawn"
    assert page.locator("[name=negative_prompt]").input_value() == "people"
    assert page.locator(".counter").first.inner_text().startswith("17 /")  # counted as well
    # Each page keeps its own.
    page.goto("/edit/")
    assert page.locator("textarea[name=prompt]").input_value() == ""
    page.fill("textarea[name=prompt]", "Warmer light on image 1")
    page.reload()
    assert page.locator("textarea[name=prompt]").input_value() == "Warmer light on image 1"
    # A prompt the page comes with (a remix, a form sent back) wins over the draft.
    page.goto("/generate/?model=wan2.6-t2i")
    page.fill("textarea[name=prompt]", "")
    page.reload()
    assert page.locator("textarea[name=prompt]").input_value() == ""


def test_a_model_switch_logs_no_htmx_selector_error(page):
    from playwright.sync_api import expect

    said: list[str] = []
    page.on(
        "console",
        lambda message: said.append(message.text) if message.type in ("error", "warning") else None,
    )
    for path in ("/generate/", "/edit/"):
        page.goto(path)
        # Mark the form so the wait below is for its replacement, not for a
        # panel's poll that happens to settle first.
        page.evaluate(
            "() => { document.querySelector('form.generate-form').dataset.before = '1'; }"
        )
        chosen = page.locator(".model-picker input[name=model]:not(:checked)").first.get_attribute(
            "id"
        )
        # By its id: a locator of "the first unchecked" would, on a retry after the form
        # was redrawn, find another model and check that one.
        page.locator(f"#{chosen}").check()
        page.wait_for_function(
            "() => { const form = document.querySelector('form.generate-form');"
            " return form && !form.dataset.before && !form.classList.contains('htmx-settling'); }"
        )
        expect(page.locator(f"#{chosen}")).to_be_checked()
    selectors = [text for text in said if "selector" in text.lower() or "hx-" in text]
    assert not selectors, selectors


def test_results_give_a_job_of_several_images_room_and_line_up_their_heads(page, designer_member):
    finished_job(
        designer_member,
        "A single square, " + "long prompt " * 10,
        count=1,
        size=(1280, 1280),
        minutes_ago=9,
    )
    finished_job(
        designer_member,
        "Portraits of a potter at her wheel",
        count=4,
        size=(960, 1440),
        minutes_ago=7,
    )
    finished_job(
        designer_member, "A harbour at dawn, wide", count=3, size=(1664, 928), minutes_ago=5
    )
    finished_job(designer_member, "A tall single", count=1, size=(928, 1664), minutes_ago=3)
    page.goto("/generate/")
    entries = page.locator(".result-entry")
    entries.first.locator("img").first.wait_for()
    wide = entries.nth(1)  # newest first: the harbour's three wide images
    tile_box = wide.locator(".result-tiles > li").first.bounding_box()
    # Two columns of the contact sheet, each of its images about as wide as one column.
    assert (
        tile_box["width"] > 250 and abs(tile_box["width"] / tile_box["height"] - 1664 / 928) < 0.03
    )
    tall = entries.nth(2).locator(".result-tiles > li")
    boxes = [tall.nth(i).bounding_box() for i in range(4)]
    assert len({round(b["y"]) for b in boxes}) == 1  # four tall places in one row
    assert abs(boxes[0]["width"] / boxes[0]["height"] - 960 / 1440) < 0.03
    single_tall = entries.nth(0).locator(".result-tiles > li").first.bounding_box()
    assert abs(single_tall["width"] / single_tall["height"] - 928 / 1664) < 0.03
    # Every head one line of prompt and one of details: the images of a row line up.
    heads = page.eval_on_selector_all(
        ".result-head", "hs => hs.map(h => Math.round(h.getBoundingClientRect().height))"
    )
    assert len(set(heads)) == 1, heads
    assert "just now" not in page.locator("#recent-jobs").inner_text()
    assert "3\xa0minutes ago" in page.locator("#recent-jobs").inner_text()
    window_screenshot(page, "workspace-results-1440")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.locator("#recent-jobs").scroll_into_view_if_needed()
    screenshot(page, "workspace-results-390")

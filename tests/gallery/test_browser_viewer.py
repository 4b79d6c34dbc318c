"""The viewer in a real browser: opened from the gallery, the results and a job's page, its
address, the keys, swipes, zoom and pan, and every action beside the image."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from studio.accounts.models import Membership, ModelPrice
from studio.gallery.models import Star
from studio.generation.models import GeneratedImage, Job, JobInput, QuotaCharge
from tests.support.browser import ARTIFACTS, screenshot, serious_accessibility_problems
from tests.support.gallery import loaded, stored_image

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def viewer(page: Any) -> Any:
    return page.locator("#viewer")


def path_of(page: Any) -> str:
    return urlsplit(page.url).path


def image_path(image: GeneratedImage) -> str:
    return f"/gallery/images/{image.pk}/"


def shown(page: Any, image: GeneratedImage) -> None:
    """Wait until the viewer shows this image, its address in the bar."""
    viewer(page).locator(f'[data-image-panel][data-image-id="{image.pk}"]').wait_for()
    page.wait_for_function("p => location.pathname === p", arg=image_path(image))
    loaded(page, viewer(page).locator("[data-pin-stage] img"))


def open_from(page: Any, image: GeneratedImage) -> None:
    page.locator(f'a[data-viewer][href^="{image_path(image)}"]').first.click()
    shown(page, image)


def seen(page: Any, name: str) -> None:
    """What the window shows: the viewer fills it, and a whole-page picture would add the
    page's length under it."""
    page.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-window.png"))


def focus_in_viewer(page: Any) -> bool:
    return page.evaluate("document.getElementById('viewer').contains(document.activeElement)")


def test_the_gallery_opens_images_in_the_viewer_browses_and_closes(page, designer_member):
    Membership.objects.filter(pk=designer_member.pk).update(role=Membership.Role.REVIEWER)
    images = [
        stored_image(designer_member, f"Poster {n}", (60 * n, 90, 160), n + 1, (960, 640))
        for n in range(3)
    ]
    page.goto("/gallery/")
    page.evaluate("window.stillThisPage = true")
    open_from(page, images[0])
    assert viewer(page).is_visible()
    assert viewer(page).locator("#viewer-title").inner_text() == "Poster 0"
    assert focus_in_viewer(page)
    facts = viewer(page).locator(".job-facts").inner_text()
    for fact in ("Wan 2.6", "dana", "960×640", "not recorded", "no price set"):
        assert fact in facts, fact

    # The arrow keys follow the grid's order, and the address follows them.
    page.keyboard.press("ArrowRight")
    shown(page, images[1])
    page.keyboard.press("ArrowRight")
    shown(page, images[2])
    assert viewer(page).get_by_role("button", name="Next image").is_disabled()
    page.keyboard.press("ArrowLeft")
    shown(page, images[1])
    page.keyboard.press("ArrowLeft")
    shown(page, images[0])
    # The buttons too, and the focus stays on the one pressed while it can be pressed again.
    following = viewer(page).get_by_role("button", name="Next image")
    following.focus()
    page.keyboard.press("Enter")
    shown(page, images[1])
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Next image"
    page.keyboard.press("Enter")
    shown(page, images[2])
    # The last one: the button is off, and the focus is on the viewer's heading, not lost.
    assert page.evaluate("document.activeElement.id") == "viewer-title"
    viewer(page).get_by_role("button", name="Previous image").click()
    shown(page, images[1])

    # A review in the viewer shows on the grid's card at once.
    viewer(page).get_by_role("button", name="Approved").click()
    page.locator(f"#badge-{images[1].pk}", has_text="Approved").wait_for()
    assert focus_in_viewer(page)  # the pressed button was redrawn, and the focus kept

    page.set_viewport_size(LAPTOP)
    assert not serious_accessibility_problems(page)
    screenshot(page, "viewer-1440")
    seen(page, "viewer-1440")
    page.set_viewport_size(PHONE)
    screenshot(page, "viewer-390")
    seen(page, "viewer-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    body = viewer(page).locator("[data-viewer-body]")
    assert body.evaluate("b => b.scrollWidth <= b.clientWidth")
    # On a phone the facts are under the image, not beside it.
    stage = viewer(page).locator(".image-full").bounding_box()
    facts_box = viewer(page).locator(".image-facts").bounding_box()
    assert facts_box["y"] >= stage["y"] + stage["height"] - 1
    assert not serious_accessibility_problems(page)
    page.set_viewport_size(LAPTOP)

    # Escape closes it: the gallery's address again, the same page, the focus on its card.
    page.keyboard.press("Escape")
    page.wait_for_function("() => location.pathname === '/gallery/'")
    assert viewer(page).is_hidden()
    assert page.evaluate("window.stillThisPage") is True
    assert page.evaluate("document.activeElement.closest('.gallery-card') !== null")

    # The browser's Back closes it too, and Forward opens it again.
    open_from(page, images[1])
    page.go_back()
    page.wait_for_function("() => location.pathname === '/gallery/'")
    viewer(page).wait_for(state="hidden")
    page.go_forward()
    shown(page, images[1])
    page.locator("[data-viewer-close]").click()
    page.wait_for_function("() => location.pathname === '/gallery/'")
    assert page.evaluate("window.stillThisPage") is True
    assert page.locator(".gallery-card").count() == 3

    # The address can be shared: opened directly, it is the image's own page.
    page.goto(image_path(images[2]))
    assert page.locator("[data-image-panel]").count() == 1 and viewer(page).is_hidden()


def test_a_filtered_grid_is_still_there_after_the_viewer_closes(page, designer_member):
    stored_image(designer_member, "A brass lamp", (200, 160, 60), 1)
    stored_image(designer_member, "A red chair", (190, 40, 40), 2)
    page.goto("/gallery/")
    page.evaluate("window.stillThisPage = true")
    page.fill("input[name=q]", "lamp")
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 1")
    page.locator(".gallery-card a[data-viewer]").click()
    viewer(page).locator("[data-image-panel]").wait_for()
    page.keyboard.press("Escape")
    page.wait_for_function("() => location.search.includes('q=lamp')")
    assert page.locator(".gallery-card").count() == 1
    assert page.evaluate("window.stillThisPage") is True


def test_the_results_and_a_job_page_open_their_images_in_the_viewer(page, designer_member):
    first = stored_image(designer_member, "A tall vase", (40, 90, 160), 2, (640, 960))
    second = stored_image(designer_member, "A wide bench", (160, 90, 40), 1, (960, 640))
    page.goto("/generate/")
    page.evaluate("window.stillThisPage = true")
    open_from(page, second)
    assert "A wide bench" in viewer(page).locator("#viewer-title").inner_text()
    page.keyboard.press("ArrowRight")  # the next result down the list
    shown(page, first)
    seen(page, "viewer-results-1440")
    assert not serious_accessibility_problems(page)
    page.keyboard.press("Escape")
    page.wait_for_function("() => location.pathname === '/generate/'")
    assert page.evaluate("window.stillThisPage") is True

    page.goto(f"/jobs/{first.job.pk}/")
    open_from(page, first)
    assert "A tall vase" in viewer(page).inner_text()
    page.keyboard.press("Escape")
    page.wait_for_function(f"() => location.pathname === '/jobs/{first.job.pk}/'")


def job_of_three(member: Membership) -> list[GeneratedImage]:
    """One job's three images, made at the same moment, as a job that asked for three."""
    first = stored_image(member, "Three lanterns", (200, 120, 40), 1)
    images = [first]
    for index in (1, 2):
        data = io.BytesIO()
        Image.new("RGB", (640, 640), (40 * index, 120, 200)).save(data, format="PNG")
        image = GeneratedImage(
            job=first.job,
            team=member.team,
            index=index,
            width=640,
            height=640,
            bytes=len(data.getvalue()),
            sha256="0" * 64,
            created_at=first.created_at,
        )
        name = f"results/{first.job_id}/{index}.png"
        image.image.save(name, ContentFile(data.getvalue()), save=False)
        image.thumbnail.save(f"thumbs/{first.job_id}/{index}.png", ContentFile(data.getvalue()))
        images.append(image)
    return images


def test_a_job_page_browses_its_own_images_and_stops_at_its_ends(page, designer_member):
    images = job_of_three(designer_member)
    page.goto(f"/jobs/{images[0].job_id}/")
    open_from(page, images[2])
    # The last of the job's three: nothing after it on this page, not the gallery's next
    # image (which is this job's own first or second again).
    assert viewer(page).get_by_role("button", name="Next image").is_disabled()
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    shown(page, images[2])
    page.keyboard.press("ArrowLeft")
    shown(page, images[1])
    page.keyboard.press("ArrowLeft")
    shown(page, images[0])
    assert viewer(page).get_by_role("button", name="Previous image").is_disabled()
    assert not viewer(page).get_by_role("button", name="Next image").is_disabled()


def chart(image: GeneratedImage) -> None:
    """Squares of 100 pixels, numbered, over the image: zoom and pan can be seen."""
    from PIL import ImageDraw

    picture = Image.new("RGB", (image.width, image.height), (235, 238, 242))
    draw = ImageDraw.Draw(picture)
    for x in range(0, image.width, 100):
        for y in range(0, image.height, 100):
            if (x + y) // 100 % 2:
                draw.rectangle((x, y, x + 99, y + 99), fill=(40, 110, 160))
            draw.text((x + 8, y + 8), f"{x // 100},{y // 100}", fill=(200, 40, 40))
    data = io.BytesIO()
    picture.save(data, format="PNG")
    image.image.save(f"results/{image.job_id}/chart.png", ContentFile(data.getvalue()))


def test_zoom_shows_actual_pixels_and_a_drag_pans(page, designer_member):
    big = stored_image(designer_member, "A large map", (30, 120, 90), 1, (2400, 1600))
    chart(big)
    page.goto("/gallery/")
    open_from(page, big)
    img = viewer(page).locator("[data-pin-stage] img")
    fit = img.bounding_box()
    assert fit["width"] < 2400
    frame = viewer(page).locator(".image-full").bounding_box()
    assert fit["width"] <= frame["width"] + 1 and fit["height"] <= frame["height"] + 1

    viewer(page).get_by_role("button", name="100 %").click()
    actual = img.bounding_box()
    assert abs(actual["width"] - 2400) <= 2 and abs(actual["height"] - 1600) <= 2
    assert viewer(page).locator("[data-viewer-level]").inner_text() == "100 %"
    assert viewer(page).get_by_role("button", name="100 %").get_attribute("aria-pressed") == "true"

    # A drag moves the picture with the pointer.
    x, y = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 150, y + 80, steps=5)
    page.mouse.up()
    panned = img.bounding_box()
    assert abs(panned["x"] - actual["x"] - 150) <= 2 and abs(panned["y"] - actual["y"] - 80) <= 2
    seen(page, "viewer-zoomed-1440")
    viewer(page).get_by_role("button", name="Fit").click()
    seen(page, "viewer-fit-1440")
    viewer(page).get_by_role("button", name="100 %").click()

    viewer(page).get_by_role("button", name="Fit").click()
    again = img.bounding_box()
    assert abs(again["width"] - fit["width"]) <= 1 and abs(again["x"] - fit["x"]) <= 1
    # The wheel over the image zooms in around the pointer; the buttons step.
    page.mouse.move(x, y)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        "w => document.querySelector('#viewer [data-pin-stage] img')"
        ".getBoundingClientRect().width > w + 10",
        arg=fit["width"],
    )
    # The level is said once the zooming stops, not at each step of the wheel.
    level = viewer(page).locator("[data-viewer-level]")
    assert level.evaluate("el => el.tagName !== 'OUTPUT' && !el.hasAttribute('aria-live')")
    page.evaluate(
        """() => {
        const status = document.querySelector('[data-viewer-status]');
        window.said = [];
        new MutationObserver(() => window.said.push(status.textContent)).observe(
            status, {childList: true, characterData: true, subtree: true});
    }"""
    )
    for _ in range(5):
        page.mouse.wheel(0, -60)
    page.wait_for_function("() => window.said.length > 0")
    page.wait_for_timeout(600)
    assert page.evaluate("window.said") == [f"Zoom {level.inner_text()}"]
    viewer(page).get_by_role("button", name="Zoom out").click()
    viewer(page).get_by_role("button", name="Fit").click()

    # Pinning a comment: a drag draws the area, zoomed in or not, and the pins follow zoom.
    viewer(page).get_by_role("button", name="Pin to an area").click()
    viewer(page).get_by_role("button", name="Zoom in").click()
    box = img.bounding_box()
    scale = box["width"] / 2400

    def at(px: int, py: int) -> tuple[float, float]:
        return box["x"] + px * scale, box["y"] + py * scale

    start = at(1100, 700)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*at(1300, 900), steps=4)
    page.mouse.up()
    assert img.bounding_box()["x"] == box["x"]  # not panned
    area = [int(v) for v in viewer(page).locator("[data-pin-box]").input_value().split(",")]
    assert all(abs(a - b) <= 4 for a, b in zip(area, (1100, 700, 1300, 900), strict=True))
    viewer(page).locator("textarea[name=body]").fill("Move the legend here")
    viewer(page).get_by_role("button", name="Comment", exact=True).click()
    pin = viewer(page).locator(".pins .pin")
    pin.wait_for()
    drawn = pin.bounding_box()
    assert abs(drawn["x"] - start[0]) <= 3 and abs(drawn["y"] - start[1]) <= 3


def swipe(tab: Any, cdp: Any, x0: float, x1: float, y: float) -> None:
    """A finger drawn sideways across the screen, as the touch screen reports it."""
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y}]})
    for step in range(1, 9):
        x = x0 + (x1 - x0) * step / 8
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_a_swipe_moves_between_images_and_review_works_by_touch(
    browser, page, live_server, designer_member
):
    Membership.objects.filter(pk=designer_member.pk).update(role=Membership.Role.REVIEWER)
    images = [
        stored_image(designer_member, f"Chair {n}", (50 * n, 120, 90), n + 1) for n in range(3)
    ]
    page.goto("/gallery/")  # the session the phone shares
    context = browser.new_context(
        base_url=live_server.url, viewport=PHONE, has_touch=True, is_mobile=True
    )
    context.add_cookies(page.context.cookies())
    context.set_default_timeout(15_000)
    try:
        tab = context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto("/gallery/")
        tab.locator(f'a[data-viewer][href^="{image_path(images[0])}"]').tap()
        shown(tab, images[0])
        # Review and comment with a finger: targets large enough to hit.
        approve = viewer(tab).get_by_role("button", name="Approved")
        approve.scroll_into_view_if_needed()
        size = approve.bounding_box()
        assert size["height"] >= 44 and size["width"] >= 44
        approve.tap()
        viewer(tab).locator(".badge", has_text="Approved").first.wait_for()
        comment = viewer(tab).get_by_role("button", name="Comment", exact=True)
        assert comment.bounding_box()["height"] >= 44
        viewer(tab).locator("textarea[name=body]").fill("Lovely")
        comment.tap()
        viewer(tab).locator(".comment-list", has_text="Lovely").wait_for()

        # Swipes last: after a synthetic swipe the browser takes the next tap for the end
        # of a fling, not a tap.
        cdp = context.new_cdp_session(tab)
        viewer(tab).locator(".image-full").scroll_into_view_if_needed()
        frame = viewer(tab).locator(".image-full").bounding_box()
        y = frame["y"] + frame["height"] / 2
        swipe(tab, cdp, frame["x"] + frame["width"] * 0.8, frame["x"] + frame["width"] * 0.2, y)
        shown(tab, images[1])  # to the left: the next image
        swipe(tab, cdp, frame["x"] + frame["width"] * 0.2, frame["x"] + frame["width"] * 0.8, y)
        shown(tab, images[0])
        assert tab.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        # Two fingers apart: zoomed in around them.
        img = viewer(tab).locator("[data-pin-stage] img")
        before = img.bounding_box()["width"]
        cx = frame["x"] + frame["width"] / 2
        for kind, gap in [("touchStart", 20)] + [("touchMove", 20 + 10 * n) for n in range(1, 9)]:
            points = [{"x": cx - gap, "y": y, "id": 1}, {"x": cx + gap, "y": y, "id": 2}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert img.bounding_box()["width"] > before * 2
        shown(tab, images[0])  # zoomed, not moved on
        screenshot(tab, "viewer-touch-390")
        seen(tab, "viewer-touch-390")
        assert not errors, errors
    finally:
        context.close()
    images[0].refresh_from_db()
    assert images[0].review_state == GeneratedImage.Review.APPROVED


def edit_image(member: Membership) -> GeneratedImage:
    """An edit's result with the reference image it was made from, both of one shape."""
    image = stored_image(member, "Make the sky orange", (220, 120, 40), 1, (800, 600))
    job = image.job
    job.kind = Job.Kind.EDIT
    job.model = "wan2.7-image"
    job.parameters = {"size": "1K", "n": 1}
    job.save()
    data = io.BytesIO()
    Image.new("RGB", (800, 600), (60, 120, 220)).save(data, format="PNG")
    item = JobInput(job=job, position=1, mime="image/png", width=800, height=600, bytes=1)
    item.image.save("1.png", ContentFile(data.getvalue()), save=False)
    item.save()
    return image


def test_every_action_beside_the_image_works_from_the_viewer(page, designer_member):
    ModelPrice.objects.create(model="wan2.6-t2i", price_per_image=Decimal("0.04"))
    # A size the model makes, so that its variations can be sent.
    image = stored_image(designer_member, "A copper kettle", (180, 100, 50), 2, (1280, 1280))
    image.job.parameters |= {"seed": 1234}
    image.job.save()
    QuotaCharge.objects.create(
        job=image.job, kind=QuotaCharge.Kind.SETTLE, images=1, unit_price=Decimal("0.04")
    )
    edited = edit_image(designer_member)
    page.goto("/gallery/")
    open_from(page, image)
    facts = viewer(page).locator(".job-facts").inner_text()
    assert "1234" in facts and "0.04 USD" in facts

    # Star, and star again.
    star = viewer(page).locator(f"#star-button-{image.pk}")
    star.click()
    viewer(page).locator(f"#star-button-{image.pk}[aria-pressed=true]").wait_for()
    assert Star.objects.filter(image=image).exists()
    assert focus_in_viewer(page)
    viewer(page).locator(f"#star-button-{image.pk}").click()
    viewer(page).locator(f"#star-button-{image.pk}[aria-pressed=false]").wait_for()
    assert not Star.objects.filter(image=image).exists()

    # Download is the original, as a download; remix starts the form from this job.
    download = viewer(page).get_by_role("link", name="Download")
    assert download.get_attribute("href").endswith(
        f"/jobs/{image.job.pk}/images/0/original?download=1"
    )
    assert viewer(page).get_by_role("link", name="Remix").get_attribute("href") == (
        f"/generate/?remix={image.job.pk}"
    )

    # Variations: a new job, the same prompt and model, another seed; she stays here.
    viewer(page).get_by_role("button", name="Variations").click()
    note = viewer(page).locator(".variations-note")
    note.wait_for()
    made = Job.objects.exclude(pk__in=[image.job.pk, edited.job.pk]).get()
    assert (made.prompt, made.model, made.author) == (
        "A copper kettle",
        "wan2.6-t2i",
        image.job.author,
    )
    assert made.parameters["seed"] != 1234
    assert note.get_by_role("link").get_attribute("href") == f"/jobs/{made.pk}/"
    assert path_of(page) == image_path(image)
    page.locator("[data-viewer-status]", has_text="Variations queued").wait_for(state="attached")

    # Refused over the quota: said in the viewer, nothing made.
    Membership.objects.filter(pk=designer_member.pk).update(images_per_day=1)
    viewer(page).get_by_role("button", name="Variations").click()
    viewer(page).locator(".variations .field-error", has_text="left today").wait_for()
    assert Job.objects.count() == 3
    Membership.objects.filter(pk=designer_member.pk).update(images_per_day=None)

    # Compare with its inputs, for an edit (the newer image, to the left in the grid).
    page.keyboard.press("ArrowLeft")
    shown(page, edited)
    viewer(page).get_by_role("link", name="Compare with inputs").click()
    page.wait_for_url(f"**/gallery/images/{edited.pk}/compare-inputs/")
    both = page.locator("[data-compare]")
    assert both.count() == 2
    loaded(page, both)
    assert page.locator("[data-compare-slider]").count() == 1
    screenshot(page, "viewer-compare-inputs-1440")
    assert not serious_accessibility_problems(page)

    # Use as input: the image is on the edit form.
    page.goto("/gallery/")
    open_from(page, image)
    viewer(page).get_by_role("button", name="Use as input").click()
    page.wait_for_url("**/edit/**")
    page.locator("[data-input]").first.wait_for()
    assert page.locator("[data-input]").count() == 1


def test_the_next_page_of_the_grid_loads_and_its_cards_open_in_the_viewer(page, designer_member):
    from studio.gallery.forms import PAGE_SIZE

    images = [
        stored_image(designer_member, f"Tile {n}", (n * 5 % 255, 80, 120), n + 1, (64, 64))
        for n in range(PAGE_SIZE + 2)
    ]
    page.goto("/gallery/")
    assert page.locator(".gallery-card").count() == PAGE_SIZE
    page.locator(".gallery-more").scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelectorAll('.gallery-card').length === {PAGE_SIZE + 2}"
    )
    last = images[-1]
    open_from(page, images[-2])
    page.keyboard.press("ArrowRight")
    shown(page, last)  # a card of the page loaded last
    assert viewer(page).get_by_role("button", name="Next image").is_disabled()
    page.keyboard.press("Escape")
    page.wait_for_function("() => location.pathname === '/gallery/'")
    # The focus is on the card of the image last shown, not the one first opened.
    assert page.evaluate("document.activeElement.closest('.gallery-card').dataset.image") == str(
        last.pk
    )

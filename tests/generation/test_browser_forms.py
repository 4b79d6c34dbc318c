"""The designer's day in a real browser: forms, regions on reference images, live status."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from PIL import Image

from studio.generation.models import Job
from tests.support.browser import received, screenshot, stored_image
from tests.support.inputs import add_images, boxes_of, card, close_to, draw_box, file, picture

pytestmark = [pytest.mark.django_db(transaction=True)]


def rotated_jpeg(width: int, height: int) -> bytes:
    """A JPEG stored `width`×`height` whose EXIF says: turn it 90° clockwise to view."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return picture(width, height, fmt="JPEG", exif=exif.tobytes())


def open_sent_job(page: Any) -> None:
    """After sending, the designer stays on the page; the new job is the first result."""
    result = page.locator(".result-entry").first
    result.wait_for()
    result.locator(".result-head").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+/$"))


def wait_for_status(page: Any, label: str, seconds: float = 30) -> None:
    page.locator("#job-status .role", has_text=label).wait_for(timeout=seconds * 1000)


def test_a_text_to_image_job_from_the_form_to_its_image(page, worker):
    page.goto("/generate/")
    page.get_by_label("Wan 2.6", exact=False).first.check()
    page.get_by_text("Between 1280×1280 and 1440×1440").wait_for()  # the form redrawn for it
    page.fill("textarea[name=prompt]", "A lighthouse at dusk, oil painting")
    assert page.locator(".counter").first.inner_text().startswith("34 /")
    page.select_option("select[name=n]", "2")
    assert page.locator("[data-cost-images]").inner_text() == "2 images"
    page.fill("input[name=custom_size]", "500×500")
    assert "pixels" in page.locator("[data-size-check]").inner_text()
    page.fill("input[name=custom_size]", "")
    screenshot(page, "text-to-image-form")
    # In reach without scrolling, however long the form.
    page.evaluate("window.scrollTo(0, 0)")
    button = page.get_by_role("button", name="Generate").bounding_box()
    assert button and button["y"] + button["height"] <= 900
    page.evaluate("window.stillThisPage = true")
    page.get_by_role("button", name="Generate").click()
    # The designer stays on the page: the job's two places appear at the top of the
    # results, in the shape asked for, and fill in as the images are stored.
    result = page.locator(".result-entry").first
    result.wait_for()
    tiles = result.locator(".result-tiles > li")
    assert tiles.count() == 2
    box = tiles.first.bounding_box()
    assert box and abs(box["width"] - box["height"]) <= 1  # 1280×1280
    assert "Sent: its 2 images appear under Results" in page.locator(".sent-note").inner_text()
    assert page.locator("textarea[name=prompt]").input_value().startswith("A lighthouse")
    result.locator("img[data-tile=image]").nth(1).wait_for(timeout=30_000)
    assert page.evaluate("window.stillThisPage") is True and "/generate/" in page.url
    screenshot(page, "results-in-place")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "results-in-place-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    result.locator(".result-head").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+/$"))
    wait_for_status(page, "Succeeded")
    images = page.locator(".job-results img[data-tile=image]")
    images.first.wait_for()
    assert images.count() == 2
    assert page.evaluate("img => img.naturalWidth", images.first.element_handle()) > 0
    assert page.title().startswith("Succeeded")
    screenshot(page, "finished-job")
    job = Job.objects.get()
    assert job.images.count() == 2 and job.images_charged == 2


def test_a_qwen_prompt_is_counted_in_tokens_as_the_server_counts_it(page):
    from tests.support import prompts
    from tests.support.prompts import SPEC, TEXT

    page.goto("/generate/")
    page.get_by_label("Qwen-Image 2.0 Pro", exact=False).first.check()
    page.get_by_text("Up to 1,300 tokens").wait_for()
    page.fill("textarea[name=prompt]", TEXT)  # seed 000's 2,045-character sample
    counter = page.locator(".counter").first
    counter.filter(has_text="439 / 1,300 tokens").wait_for()
    page.fill("textarea[name=prompt]", prompts.one_over(SPEC))
    counter.filter(has_text="1,301 / 1,300 tokens").wait_for()
    assert "counter-over" in (counter.get_attribute("class") or "")
    generate = page.get_by_role("button", name="Generate")
    assert generate.is_disabled()
    why = page.locator("[data-submit-why]")
    assert why.inner_text() == "Prompt is 1 token over its limit of 1,300."
    assert generate.get_attribute("aria-describedby") == why.get_attribute("id")
    screenshot(page, "prompt-counted-in-tokens")
    page.fill("textarea[name=prompt]", TEXT)
    counter.filter(has_text="439 / 1,300 tokens").wait_for()
    assert generate.is_enabled() and why.is_hidden()


def test_the_counter_and_the_server_agree_to_the_character_spaces_included(page):
    page.goto("/generate/")
    page.get_by_label("Wan 2.6", exact=False).first.check()
    page.get_by_text("Up to 2,100 characters").wait_for()
    at_limit = "  " + "画" * 2096 + "  "  # spaces count, as they are sent
    page.fill("textarea[name=prompt]", at_limit + " ")
    counter = page.locator(".counter").first
    assert counter.inner_text() == "2,101 / 2,100"
    assert page.get_by_role("button", name="Generate").is_disabled()
    page.fill("textarea[name=prompt]", at_limit)
    assert counter.inner_text() == "2,100 / 2,100"
    page.get_by_role("button", name="Generate").click()
    page.locator(".result-entry").first.wait_for()
    assert Job.objects.get().prompt == at_limit


def test_an_edit_with_two_images_and_a_region_drawn_on_each(page, worker):
    page.goto("/edit/")
    add_images(
        page,
        file("wide.png", picture(1600, 1000), "image/png"),
        file("phone.jpg", rotated_jpeg(1200, 900), "image/jpeg"),
    )
    # The photo was turned as its camera recorded: 900 wide, 1200 high.
    assert card(page, 2).get_attribute("data-width") == "900"
    assert card(page, 2).get_attribute("data-height") == "1200"
    assert "rotated as its camera recorded" in card(page, 2).inner_text().lower()
    card(page, 2).locator("[data-open]").click()
    shown = card(page, 2).locator("[data-stage] img").bounding_box()
    assert shown["width"] < 900  # shown scaled down to fit its card

    draw_box(page, 1, (200, 100, 900, 600))
    draw_box(page, 2, (100, 300, 700, 1100))
    assert close_to(boxes_of(page, 1)[0], (200, 100, 900, 600))
    assert close_to(boxes_of(page, 2)[0], (100, 300, 700, 1100))
    page.fill("textarea[name=prompt]", "Put the lamp from image 1 into the box on image 2")
    screenshot(page, "edit-form-with-regions")
    page.get_by_role("button", name="Edit", exact=True).click()
    open_sent_job(page)
    wait_for_status(page, "Succeeded")

    body = received(worker, "wan2.7-image-pro")[-1]
    sent = body["parameters"]["bbox_list"]
    assert close_to(sent[0][0], (200, 100, 900, 600))
    assert close_to(sent[1][0], (100, 300, 700, 1100))
    images = [c for c in body["input"]["messages"][0]["content"] if "image" in c]
    assert (images[1]["image"]["width"], images[1]["image"]["height"]) == (900, 1200)
    assert page.locator(".job-input .region").count() == 2


def test_reordering_two_images_moves_their_regions_and_chips(page):
    page.goto("/edit/")
    add_images(
        page,
        file("first.png", picture(800, 600), "image/png"),
        file("second.png", picture(600, 800), "image/png"),
    )
    draw_box(page, 1, (100, 100, 400, 300))
    first_id = card(page, 1).get_attribute("data-input")

    source = card(page, 1).locator(".tile-thumb").bounding_box()
    target = card(page, 2).locator(".tile-thumb").bounding_box()
    page.mouse.move(source["x"] + source["width"] / 2, source["y"] + source["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"] + target["width"] * 0.75, target["y"] + 30, steps=12)
    page.mouse.up()
    assert card(page, 2).get_attribute("data-input") == first_id
    assert card(page, 2).locator("[data-position]").inner_text() == "2"
    assert card(page, 1).locator("[data-position]").inner_text() == "1"
    assert boxes_of(page, 1) == [] and close_to(boxes_of(page, 2)[0], (100, 100, 400, 300))

    # The same from the keyboard.
    card(page, 2).get_by_role("button", name="Move image 2 earlier").press("Enter")
    assert card(page, 1).get_attribute("data-input") == first_id
    assert card(page, 1).locator("[data-position]").inner_text() == "1"

    # "Image N" chips put the right reference into the prompt.
    card(page, 2).locator("[data-insert-ref]").click()
    assert page.input_value("textarea[name=prompt]").strip() == "image 2"


def test_fit_shows_a_tall_image_whole_so_a_region_can_span_its_height(page):
    page.goto("/edit/")
    add_images(page, file("banner.png", picture(500, 4000), "image/png"))
    card(page, 1).locator("[data-open]").click()
    frame = card(page, 1).locator(".region-frame").bounding_box()
    shown = card(page, 1).locator("[data-stage] img").bounding_box()
    assert shown["height"] <= frame["height"] + 1  # the whole image, no scrolling
    draw_box(page, 1, (50, 100, 450, 3900))
    assert close_to(boxes_of(page, 1)[0], (50, 100, 450, 3900), tolerance=12)
    page.get_by_role("button", name="Zoom in").click()
    assert card(page, 1).locator("[data-stage] img").bounding_box()["height"] > frame["height"]


def test_a_third_region_on_one_image_is_refused(page):
    page.goto("/edit/")
    add_images(page, file("one.png", picture(1000, 800), "image/png"))
    draw_box(page, 1, (50, 50, 300, 300))
    draw_box(page, 1, (400, 400, 700, 700))
    draw_box(page, 1, (750, 100, 950, 300))
    assert len(boxes_of(page, 1)) == 2
    assert "already has 2 regions" in card(page, 1).locator("[data-region-message]").inner_text()
    assert card(page, 1).locator(".region").count() == 2

    # From the keyboard: delete one, add one in the middle, move it right.
    card(page, 1).locator(".region").nth(1).focus()
    page.keyboard.press("Delete")
    assert len(boxes_of(page, 1)) == 1
    card(page, 1).get_by_role("button", name="+ Region").press("Enter")
    before = boxes_of(page, 1)[1]
    page.keyboard.press("ArrowRight")
    after = boxes_of(page, 1)[1]
    assert after[0] == before[0] + 10 and after[2] == before[2] + 10


def test_images_the_model_cannot_take_are_flagged_and_nothing_is_created(page):
    page.goto("/edit/")
    add_images(
        page,
        file("tiny.png", picture(200, 300), "image/png"),
        file("banner.png", picture(2500, 250), "image/png"),
        file("notes.txt", b"not a picture at all", "text/plain"),
    )
    refused = page.locator("[data-refused]")
    assert refused.count() == 3
    assert "at least 240 pixels" in refused.nth(0).inner_text()
    assert "aspect ratio must be between 1:8 to 8:1" in refused.nth(1).inner_text()
    assert "cannot be used" in refused.nth(2).inner_text()
    page.fill("textarea[name=prompt]", "Make it brighter")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_text("Add at least one reference image").wait_for()  # drawn in place
    assert not Job.objects.exists()


def test_what_the_studio_fixed_is_said_on_the_image_and_regions_still_land(page, worker):
    page.goto("/edit/")
    add_images(
        page,
        file("logo.png", picture(900, 700, alpha=True), "image/png"),
        file("panorama.png", picture(9000, 1200), "image/png"),
    )
    assert "transparency flattened onto white" in card(page, 1).inner_text().lower()
    assert "scaled down from 9000×1200 to 8000×1067" in card(page, 2).inner_text().lower()
    assert card(page, 2).get_attribute("data-width") == "8000"
    draw_box(page, 1, (100, 100, 500, 400))
    draw_box(page, 2, (4000, 200, 7000, 900))
    page.fill("textarea[name=prompt]", "Place the logo from image 1 in the sky of image 2")
    page.get_by_role("button", name="Edit", exact=True).click()
    open_sent_job(page)
    wait_for_status(page, "Succeeded")
    sent = received(worker, "wan2.7-image-pro")[-1]["parameters"]["bbox_list"]
    assert close_to(sent[0][0], (100, 100, 500, 400))
    # Within 2 px of the 8000-pixel normalised image, though a screen pixel of this card
    # covers about 25 of them: pointer positions are fractional and so are the regions.
    assert close_to(sent[1][0], (4000, 200, 7000, 900))


def test_a_queued_job_can_be_cancelled_from_its_page(page):
    # No worker runs: the job stays in the studio's queue.
    page.goto("/generate/")
    page.fill("textarea[name=prompt]", "A quiet harbour")
    page.get_by_role("button", name="Generate").click()
    result = page.locator(".result-entry").first
    # Each place says where the job is: first in the studio's line.
    result.locator("[data-tile=waiting]", has_text="Next in line").first.wait_for()
    result.locator(".result-head").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+/$"))
    wait_for_status(page, "Queued")
    assert "1 in line" in page.locator("#job-status").inner_text()
    # From the keyboard: the status redraws itself every second meanwhile, and the focus
    # stays on the button.
    page.get_by_role("button", name="Cancel").focus()
    page.wait_for_timeout(2500)
    assert page.evaluate("document.activeElement.id") == "job-cancel"
    page.keyboard.press("Enter")
    wait_for_status(page, "Canceled")
    assert Job.objects.get().status == Job.Status.CANCELED


def hold_requests(page: Any, pattern: str, method: str) -> list[Any]:
    """Requests to `pattern` by `method` are held until the test lets each go."""
    held: list[Any] = []

    def handle(route: Any) -> None:
        if route.request.method == method:
            held.append(route)
        else:
            route.continue_()

    page.route(pattern, handle)
    return held


def test_pressing_generate_again_while_it_is_sent_makes_one_job(page):
    held = hold_requests(page, "**/generate/", "POST")
    page.goto("/generate/")
    page.fill("textarea[name=prompt]", "A quiet harbour")
    button = page.get_by_role("button", name="Generate")
    button.scroll_into_view_if_needed()
    box = button.bounding_box()
    # Pressed by the mouse itself, which does not wait for the page the first press asked
    # for: that page is held back, as on a slow line, and the person presses again.
    for _ in range(3):
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(200)
    assert len(held) == 1
    held[0].continue_()
    page.locator(".result-entry").first.wait_for()
    assert Job.objects.count() == 1


def test_an_edit_waits_for_the_images_still_being_checked(page):
    page.goto("/edit/")
    add_images(page, file("first.png", picture(800, 600), "image/png"))
    held = hold_requests(page, "**/edit/inputs", "POST")
    page.set_input_files("input[name=files]", [file("second.png", picture(700, 500), "image/png")])
    page.locator(".input-loading").wait_for()
    page.fill("textarea[name=prompt]", "Put the lamp from image 1 into image 2")
    page.get_by_role("button", name="Edit", exact=True).click()
    note = page.locator("[data-submit-wait]")
    note.wait_for()
    assert "1 left" in note.inner_text()
    assert not Job.objects.exists()

    held[0].continue_()
    page.wait_for_function(
        "() => document.querySelectorAll('[data-input-cards] > li:not(.input-loading)').length == 2"
    )
    assert note.is_hidden()
    page.get_by_role("button", name="Edit", exact=True).click()
    open_sent_job(page)
    assert Job.objects.get().inputs.count() == 2


def test_the_gallery_filters_and_a_review_shows_at_once(page, designer_member):
    from studio.accounts.models import Membership

    Membership.objects.filter(pk=designer_member.pk).update(role=Membership.Role.REVIEWER)
    lamp = stored_image(designer_member, "A brass lamp on a desk", (200, 160, 60), 1)
    stored_image(designer_member, "A red chair", (190, 40, 40), 2)
    stored_image(designer_member, "A blue sofa", (40, 70, 190), 3)
    page.goto("/gallery/")
    cards = page.locator(".gallery-card")
    assert cards.count() == 3
    page.evaluate("window.stillThisPage = true")
    page.fill("input[name=q]", "lamp")
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 1")
    assert "q=lamp" in page.url  # the filtered grid can be linked and reloaded
    page.fill("input[name=q]", "")
    page.wait_for_function("() => document.querySelectorAll('.gallery-card').length === 3")
    screenshot(page, "gallery")

    cards.first.locator("a").click()
    lightbox = page.locator("#viewer")
    lightbox.locator(".image-panel").wait_for()
    assert "A brass lamp on a desk" in lightbox.inner_text()
    lightbox.get_by_role("button", name="Approved").click()
    page.locator(f"#badge-{lamp.pk}", has_text="Approved").wait_for()
    page.locator("#activity-feed", has_text="set the review state of").wait_for()
    screenshot(page, "gallery-lightbox")
    page.keyboard.press("ArrowRight")
    lightbox.get_by_text("A red chair").first.wait_for()
    page.keyboard.press("Escape")
    assert page.evaluate("window.stillThisPage") is True  # no reload happened
    assert page.locator(f"#badge-{lamp.pk}").inner_text() == "Approved"


def test_a_comment_pinned_by_mouse_shows_its_rectangle(page, designer_member):
    image = stored_image(designer_member, "A green bottle", (40, 160, 90), 1)
    page.goto(f"/gallery/images/{image.pk}/")
    page.get_by_role("button", name="Pin to an area").click()
    stage = page.locator("[data-pin-stage] img").bounding_box()

    def at(x: int, y: int) -> tuple[float, float]:
        return stage["x"] + x / 640 * stage["width"], stage["y"] + y / 640 * stage["height"]

    page.mouse.move(*at(64, 128))
    page.mouse.down()
    page.mouse.move(*at(200, 250), steps=3)
    page.mouse.move(*at(320, 384), steps=3)
    page.mouse.up()
    box = [int(v) for v in page.input_value("[data-pin-box]").split(",")]
    assert close_to(box, (64, 128, 320, 384))
    page.fill("textarea[name=body]", "The label should sit higher")
    page.get_by_role("button", name="Comment", exact=True).click()
    pin = page.locator(".pins .pin")
    pin.wait_for()
    shown = pin.bounding_box()
    assert abs(shown["x"] - at(64, 128)[0]) <= 2 and abs(shown["y"] - at(64, 128)[1]) <= 2
    assert abs(shown["width"] - 256 / 640 * stage["width"]) <= 3
    assert "The label should sit higher" in page.locator(".comment-list").inner_text()
    screenshot(page, "gallery-pinned-comment")


def test_compare_and_a_zip_of_three_selected_images(page, designer_member, tmp_path):
    import json
    import zipfile

    images = [
        stored_image(designer_member, f"Poster {n}", (60 * n, 90, 140), n + 1) for n in range(3)
    ]
    page.goto("/gallery/")
    for image in images:
        page.locator(f'[data-image="{image.pk}"] .card-select').check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download as zip").click()
    path = tmp_path / "selection.zip"
    download.value.save_as(path)
    archive = zipfile.ZipFile(path)
    manifest = json.loads(archive.read("manifest.json"))
    assert sorted(m["prompt"] for m in manifest) == ["Poster 0", "Poster 1", "Poster 2"]
    for entry in manifest:
        with Image.open(io.BytesIO(archive.read(entry["file"]))) as original:
            assert original.size == (640, 640)

    page.goto("/gallery/")
    for image in images[:2]:
        page.locator(f'[data-image="{image.pk}"] .card-select').check()
    page.get_by_role("button", name="Compare two").click()
    page.wait_for_url("**/gallery/compare/")
    both = page.locator("[data-compare]")
    assert both.count() == 2
    for n in range(2):
        both.nth(n).wait_for()
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=both.nth(n).element_handle()
        )
    screenshot(page, "gallery-compare")


def test_the_usage_chart_renders_for_thirty_days(page, designer_member):
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    User.objects.filter(pk=designer_member.user_id).update(is_staff=True, is_superuser=True)
    today = timezone.localdate()
    for day in range(30):
        for n in range(day % 7 + 1):
            Job.objects.create(
                team=designer_member.team,
                author=designer_member.user,
                kind=Job.Kind.TEXT_TO_IMAGE,
                model="wan2.6-t2i",
                prompt=f"Day {day} image {n}",
                images_requested=2,
                images_charged=2,
                status=Job.Status.SUCCEEDED,
                created_at=timezone.now() - timedelta(days=day),
            )
    start = (today - timedelta(days=29)).isoformat()
    page.goto(f"/admin/usage/?start={start}&end={today.isoformat()}&by=day")
    chart = page.locator("[data-usage-chart]")
    chart.wait_for()
    assert chart.locator("rect").count() == 30
    heights = [chart.locator("rect").nth(i).bounding_box()["height"] for i in range(30)]
    # Oldest day first; the day `ago` days back made (ago % 7 + 1) jobs of 2 images.
    images = [2 * ((29 - i) % 7 + 1) for i in range(30)]
    tallest = max(heights)
    assert tallest > 100  # drawn to scale, not flat
    for height, made in zip(heights, images, strict=True):
        assert abs(height - tallest * made / max(images)) <= 1.5
    assert "Total" in page.locator(".usage-table tfoot").inner_text()
    screenshot(page, "admin-usage")


def test_a_held_download_reads_as_made_and_on_its_way(page, designer_member):
    from datetime import timedelta

    from django.utils import timezone

    from studio.generation.messages import DOWNLOAD_HELD
    from studio.generation.services import create_job

    job = create_job(
        membership=designer_member,
        model="wan2.6-t2i",
        prompt="A lighthouse at dusk",
        parameters={"size": "1280*1280", "n": 2},
    )
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.DOWNLOAD_HELD,
        error_code="ResultURLRefused",
        download_held_at=now,
        download_retry_at=now + timedelta(minutes=1),
        results_valid_until=now + timedelta(hours=24),
        result_urls=["https://dashscope-9f3a.oss-new.aliyuncs.com/a.png?Signature=s3cret"],
    )
    page.goto(f"/jobs/{job.pk}/")
    note = page.locator("[data-held]")
    assert note.inner_text() == DOWNLOAD_HELD
    content = page.content()
    assert "ResultURLRefused" not in content and "s3cret" not in content
    screenshot(page, "job-download-held")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "job-download-held-phone")


def test_the_edit_button_is_in_reach_with_nine_references(page):
    page.goto("/edit/")
    page.get_by_label("Wan 2.7 Image Pro", exact=False).first.check()
    page.locator("#edit-form[data-model='wan2.7-image-pro']").wait_for()
    pictures = (file(f"ref-{n}.png", picture(400 + n * 10, 300), "image/png") for n in range(9))
    add_images(page, *pictures)
    assert page.locator("[data-input]").count() == 9
    page.evaluate("window.scrollTo(0, 0)")
    button = page.get_by_role("button", name="Edit", exact=True).last.bounding_box()
    assert button and button["y"] >= 0 and button["y"] + button["height"] <= 900
    screenshot(page, "edit-nine-references")


def test_the_gallery_shows_each_image_in_its_own_shape(page, designer_member):
    stored_image(designer_member, "A wide harbour", (40, 90, 160), 1, size=(1600, 900))
    stored_image(designer_member, "A tall tower", (160, 90, 40), 2, size=(600, 900))
    stored_image(designer_member, "A square tile", (90, 160, 40), 3)
    page.goto("/gallery/")
    shapes = page.locator(".gallery-card img").evaluate_all(
        "imgs => imgs.map(i => i.getBoundingClientRect().width / i.getBoundingClientRect().height)"
    )
    assert [round(ratio, 2) for ratio in shapes] == [round(1600 / 900, 2), round(600 / 900, 2), 1.0]
    prompt = page.locator(".gallery-card .card-prompt").first
    assert prompt.evaluate("e => getComputedStyle(e).opacity") == "0"
    page.locator(".gallery-card a").first.focus()  # from the keyboard, as by pointing
    page.wait_for_function(
        "() => getComputedStyle(document.querySelector('.card-prompt')).opacity === '1'"
    )
    assert prompt.inner_text() == "A wide harbour"
    screenshot(page, "gallery-true-shape")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "gallery-true-shape-phone")

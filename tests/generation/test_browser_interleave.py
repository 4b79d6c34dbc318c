"""A piece of mixed text and images on Wan 2.6 Image, in a real browser against the real
worker and the emulator's stream: asked for on Generate, read in the results and on the job
page with its text and pictures in order, opened in the viewer with its text around the
picture; and a piece whose stream stalls, shown as it arrives and then saying why it ended."""

from __future__ import annotations

from typing import Any

import pytest

from studio.generation.models import Job
from tests.support.browser import (
    job_ended,
    received,
    screenshot,
    serious_accessibility_problems,
)
from tests.support.inputs import add_images, file, picture

pytestmark = [pytest.mark.django_db(transaction=True)]

WAN26 = "Wan 2.6 Image"


def begin_piece(page: Any, prompt: str, most: int = 4) -> None:
    """Generate's form for Wan 2.6 Image: already a piece, at most `most` pictures."""
    page.goto("/generate/")
    page.get_by_label(WAN26, exact=False).first.check()
    page.locator("select[name=max_images]").wait_for()  # redrawn for the piece
    page.select_option("select[name=max_images]", str(most))
    page.fill("textarea[name=prompt]", prompt)


def reading_order(container: Any) -> list[str]:
    """The piece's parts as the page shows them, top to bottom: "text: …" or "picture"."""
    return container.locator("[data-piece-part]").evaluate_all(
        """parts => parts.map(p => p.dataset.piecePart === 'text'
              ? 'text: ' + p.innerText.trim() : 'picture')"""
    )


def no_sideways_scrolling(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def test_a_piece_from_generate_reads_in_order_in_the_results_and_on_its_page(
    page, worker, designer_member
):
    begin_piece(page, "Baking a country loaf")
    form = page.locator("#generate-form")
    assert form.get_by_label("Text and images: a short illustrated piece").is_checked()
    assert form.get_by_label("Text and images: a short illustrated piece").is_disabled()
    assert form.locator("select[name=n]").count() == 0
    cost = page.locator("[data-cost]").inner_text()
    assert "at most 4 images" in cost and "Only the pictures the piece holds are charged" in cost
    screenshot(page, "piece-form")
    page.get_by_role("button", name="Generate").click()

    entry = page.locator(".result-entry").first
    entry.locator("[data-piece]").wait_for()
    job = job_ended(Job.objects.get().pk)
    # The results take in the end at their next look.
    entry.locator("[data-piece-part='text']", has_text="the end of the piece").wait_for()
    assert entry.locator("[data-piece-waiting]").count() == 0
    order = reading_order(entry)
    assert order == [
        "text: Here is an illustrated piece about Baking a country loaf.",
        "picture",
        "text: After picture 1, the story goes on.",
        "picture",
        "text: After picture 2, the story goes on.",
        "picture",
        "text: And that is the end of the piece about Baking a country loaf.",
    ]
    assert entry.locator("[data-piece] img[data-tile=image]").count() == 3
    screenshot(page, "piece-results")
    assert serious_accessibility_problems(page) == []  # the form with its locked switch too

    # Sent as a piece; charged for the three pictures the model drew of up to four.
    body = received(worker, "wan2.6-image")[-1]
    assert body["parameters"]["enable_interleave"] is True
    assert body["parameters"]["max_images"] == 4 and body["parameters"]["n"] == 1
    assert job.status == Job.Status.SUCCEEDED
    assert job.images.count() == 3 and job.images_charged == 3

    # The job page reads the same.
    page.goto(f"/jobs/{job.pk}/")
    results = page.locator(".job-results")
    assert reading_order(results) == order
    screenshot(page, "piece-job")

    # A picture opens the viewer, with the piece's text around it and its place marked.
    page.goto("/generate/")
    page.locator(".result-entry").first.locator("[data-piece] a[data-viewer]").nth(1).click()
    viewer = page.locator("dialog[open]")
    here = viewer.locator("[data-piece-here]")
    here.wait_for()
    assert "Picture 2: this picture" in here.inner_text()
    context = viewer.locator("[data-piece-context]").inner_text()
    assert context.index("After picture 1") < context.index("Picture 2: this picture")
    assert context.index("Picture 2: this picture") < context.index("After picture 2")
    screenshot(page, "piece-viewer")
    assert serious_accessibility_problems(page) == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/jobs/{job.pk}/")
    assert no_sideways_scrolling(page)
    screenshot(page, "piece-job-phone")
    page.goto("/generate/")
    assert no_sideways_scrolling(page)
    page.locator(".result-entry").first.scroll_into_view_if_needed()
    screenshot(page, "piece-results-phone")
    image = job.images.get(index=1)
    page.goto(f"/gallery/images/{image.pk}/")
    assert no_sideways_scrolling(page)
    screenshot(page, "piece-viewer-phone")


def test_a_stalled_piece_shows_what_arrived_then_why_it_job_ended(
    page, worker, designer_member, settings
):
    # The worker gives up on a silent stream after a few seconds here, not a minute.
    settings.STUDIO_STREAM_STALL_SECONDS = 5
    begin_piece(page, "A short tale #stream-stall", most=2)
    page.get_by_role("button", name="Generate").click()
    entry = page.locator(".result-entry").first
    # What arrived so far, in order, and a place saying more may come.
    entry.locator("[data-piece-waiting]", has_text="more may come").wait_for(timeout=20_000)
    entry.locator("[data-piece] img[data-tile=image]").wait_for()
    assert reading_order(entry)[:2] == [
        "text: Here is an illustrated piece about A short tale.",
        "picture",
    ]
    screenshot(page, "piece-writing")
    job = job_ended(Job.objects.get().pk)
    assert job.status == Job.Status.PARTIAL
    end = entry.locator("[data-piece-end]")
    end.wait_for()
    assert "sent nothing for too long after 1 picture" in end.inner_text()
    assert entry.locator("[data-piece-waiting]").count() == 0
    screenshot(page, "piece-partial")


def test_on_edit_the_switch_takes_one_reference_image_and_sets_the_rest_aside(
    page, worker, designer_member
):
    page.goto("/edit/?model=wan2.6-image")
    add_images(
        page,
        file("loaf.png", picture(1200, 900), "image/png"),
        file("crumb.png", picture(900, 900), "image/png"),
    )
    page.fill("textarea[name=prompt]", "A recipe for the loaf in image 1")
    switch = page.get_by_label("Text and images: a short illustrated piece")
    switch.check()
    page.locator("select[name=max_images]").wait_for()  # the form redrawn for a piece
    # What was typed stays; the second image stays on the form, not sent, saying why.
    assert page.locator("textarea[name=prompt]").input_value() == "A recipe for the loaf in image 1"
    assert page.locator("[data-input]").count() == 2
    aside = page.locator("[data-input][data-aside]")
    assert aside.count() == 1
    assert "takes at most 1 image" in aside.locator("[data-tile-says]").inner_text()
    assert "Optional: up to 1 image" in page.locator(".references .help").first.inner_text()
    page.locator(".field-enable_interleave").scroll_into_view_if_needed()
    screenshot(page, "piece-edit-form")
    page.set_viewport_size({"width": 390, "height": 844})
    assert no_sideways_scrolling(page)
    screenshot(page, "piece-edit-form-phone")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.get_by_role("button", name="Edit", exact=True).click()
    entry = page.locator(".result-entry").first
    entry.locator("[data-piece-part='text']", has_text="the end of the piece").wait_for(
        timeout=30_000
    )
    job = job_ended(Job.objects.get().pk)
    assert job.kind == Job.Kind.EDIT and job.inputs.count() == 1
    body = received(worker, "wan2.6-image")[-1]
    content = body["input"]["messages"][0]["content"]
    assert len([part for part in content if "image" in part]) == 1
    # Turned off, the form is an edit's again, with both images sent.
    switch = page.get_by_label("Text and images: a short illustrated piece")
    switch.uncheck()
    page.locator("select[name=n]").wait_for()
    assert page.locator("[data-input][data-aside]").count() == 0

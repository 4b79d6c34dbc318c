"""A set of images on wan2.7, in a real browser against the emulator: asked for from a
prompt and from two reference images, shown as one set in the results, on the job page, in
the viewer and in the gallery, charged for the images the model made; and the form's
refusal of a colour palette with a set."""

from __future__ import annotations

import re
from typing import Any

import pytest

from studio.accounts.models import QuotaCounter
from studio.gallery.models import Star
from studio.generation.models import GeneratedImage, Job, QuotaCharge
from tests.support.browser import job_ended, received, screenshot, stored_image
from tests.support.inputs import add_images, file, picture

pytestmark = [pytest.mark.django_db(transaction=True)]

PRO = "Wan 2.7 Image Pro"


def begin_set(page: Any, most: int) -> None:
    """Wan 2.7 Pro's form, turned to a set of at most `most` images at 1K."""
    page.get_by_label(PRO, exact=False).first.check()
    page.get_by_label("Make a set of images").wait_for()
    page.get_by_label("Make a set of images").check()
    # The form is drawn again for a set: up to 12, and "at most" in the cost.
    page.locator("select[name=n] option[value='12']").wait_for(state="attached")
    page.select_option("select[name=n]", str(most))
    page.select_option("select[name=size]", "1K")


def test_a_set_from_a_prompt_shown_as_one_set_everywhere_and_charged_for_what_came(
    page, worker, designer_member
):
    page.goto("/generate/")
    begin_set(page, 6)
    cost = page.locator("[data-cost]").inner_text()
    assert "at most 6 images" in cost and "Only the images the set holds are charged" in cost
    # The provider decides how many a set holds; this prompt makes the emulator stop short.
    page.fill("textarea[name=prompt]", "A fox mascot: front, side and back views #fewer")
    screenshot(page, "set-form")
    page.get_by_role("button", name="Generate").click()
    entry = page.locator(".result-entry").first
    entry.locator("[data-set-label]", has_text="A set of up to 6").wait_for()
    job = job_ended(Job.objects.get().pk)
    entry.locator("[data-set-label]", has_text="the model made 3 of up to 6").wait_for()
    assert entry.locator(".result-tiles > li").count() == 3
    assert entry.locator(".result-tiles img[data-tile=image]").count() == 3
    screenshot(page, "set-results")

    # What was asked of the provider, and what was charged: the three it made.
    body = received(worker, "wan2.7-image-pro")[-1]
    assert body["parameters"]["enable_sequential"] is True
    assert body["parameters"]["n"] == 6
    assert job.status == Job.Status.SUCCEEDED
    assert job.images.count() == 3 and job.images_charged == 3
    # Six were reserved when it was sent; three were charged and three released.
    charges = {c.kind: c.images for c in job.quota_charges.all()}
    assert charges == {QuotaCharge.Kind.RESERVE: 6, QuotaCharge.Kind.SETTLE: 3}
    counters = QuotaCounter.objects.filter(team=designer_member.team)
    assert counters and {(c.used, c.reserved) for c in counters} == {(3, 0)}

    # The job page says the same.
    page.goto(f"/jobs/{job.pk}/")
    assert "A set of 3" in page.locator("[data-set-label]").inner_text()
    assert page.locator(".job-results img[data-tile=image]").count() == 3

    # The gallery: one stacked card, opening to the set's three images.
    page.goto("/gallery/")
    assert page.locator(".gallery-card").count() == 1
    card = page.locator(".gallery-card.is-set")
    assert card.locator(".set-count").inner_text() == "Set of 3"
    screenshot(page, "set-gallery")
    card.get_by_role("link").click()
    page.wait_for_url(re.compile(r"/gallery/\?job="))
    assert page.locator(".gallery-card").count() == 3
    assert "A set of 3" in page.locator("[data-set-head]").inner_text()

    # Starred as a unit: the whole set selected, starred at once.
    page.get_by_role("button", name="Select the whole set").click()
    assert page.locator("[data-selection-count]").inner_text() == "3 selected"
    page.get_by_role("button", name="Star", exact=True).click()
    page.locator(".star-mark").nth(2).wait_for()
    assert Star.objects.filter(user=designer_member.user).count() == 3

    # The viewer steps through the set.
    second = job.images.get(index=1)
    page.goto(f"/gallery/images/{second.pk}/")
    assert page.locator("[data-set-position]").inner_text() == "2 of 3 in this set"
    page.locator("[data-set-member='3']").click()
    page.locator("[data-set-position]", has_text="3 of 3 in this set").wait_for()
    screenshot(page, "set-viewer")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "set-viewer-phone")
    page.goto("/gallery/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "set-gallery-phone")


def test_a_set_from_two_reference_images_on_edit(page, worker, designer_member):
    page.goto("/edit/")
    add_images(
        page,
        file("front.png", picture(1200, 900), "image/png"),
        file("side.png", picture(900, 1200), "image/png"),
    )
    begin_set(page, 6)
    # Turning the set on kept both images on the form.
    assert page.locator("[data-input]").count() == 2
    page.fill("textarea[name=prompt]", "The character of image 1 in the pose of image 2, six views")
    page.get_by_role("button", name="Edit", exact=True).click()
    entry = page.locator(".result-entry").first
    entry.locator("[data-set-label]").wait_for()
    job = job_ended(Job.objects.get().pk)
    entry.locator("[data-set-label]", has_text="A set of 6").wait_for()
    body = received(worker, "wan2.7-image-pro")[-1]
    content = body["input"]["messages"][0]["content"]
    assert len([part for part in content if "image" in part]) == 2
    assert body["parameters"]["enable_sequential"] is True
    assert job.images.count() == 6 and job.images_charged == 6
    assert GeneratedImage.objects.filter(job=job).count() == 6
    # One set in the gallery, as from a prompt.
    page.goto("/gallery/")
    assert page.locator(".gallery-card.is-set .set-count").inner_text() == "Set of 6"


def test_the_form_refuses_a_palette_with_a_set(page, designer_member):
    page.goto("/generate/")
    begin_set(page, 4)
    page.fill("textarea[name=prompt]", "A product series in the brand's colours")
    # Written into the form's own field, as the picker writes it.
    page.evaluate(
        """() => { const f = document.querySelector('[name=color_palette]');
                   f.value = '#1F6FEB\\n#F5F1E8\\n#222222'; }"""
    )
    page.get_by_role("button", name="Generate").click()
    error = page.locator(".field-color_palette .field-error")
    error.wait_for()
    assert "A set of images cannot use a colour palette" in error.inner_text()
    assert not Job.objects.exists()
    # The set and its number are kept for the designer to choose what to change.
    assert page.get_by_label("Make a set of images").is_checked()
    assert page.locator("select[name=n]").input_value() == "4"


def test_on_a_phone_turning_a_set_on_keeps_the_form_in_view(page, designer_member):
    # Results below the form, as a designer who has worked a while has them.
    for minutes in range(4):
        stored_image(designer_member, f"An earlier result {minutes}", (90, 120, 150), minutes)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/generate/")
    page.get_by_label(PRO, exact=False).first.check()
    switch = page.get_by_label("Make a set of images")
    switch.wait_for()
    switch.scroll_into_view_if_needed()
    switch.check()
    page.locator("select[name=n] option[value='12']").wait_for(state="attached")
    page.wait_for_timeout(300)  # the redraw settles
    box = page.get_by_label("Make a set of images").bounding_box()
    assert box and 0 <= box["y"] <= 844, f"the switch is at {box and box['y']} px"

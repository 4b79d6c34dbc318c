"""Brand kits in a real browser: an owner makes one with two reference images and a palette,
a designer applies it on Edit in one click and sends the edit, the job remembers the kit,
a later change to the kit leaves the job as it was, and the gallery filters by kit."""

from __future__ import annotations

from typing import Any

import pytest

from studio.accounts.models import Membership
from studio.generation.models import BrandKit, Job
from tests.support.browser import (
    finished_job,
    job_ended,
    received,
    screenshot,
    serious_accessibility_problems,
)
from tests.support.inputs import file, picture

pytestmark = [pytest.mark.django_db(transaction=True)]

PRO = "wan2.7-image-pro"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def no_sideways_scrolling(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def look(page: Any, name: str) -> None:
    """Screenshots at both sizes, with no sideways scrolling on the phone."""
    screenshot(page, f"{name}-1440")
    page.set_viewport_size(PHONE)
    no_sideways_scrolling(page)
    screenshot(page, f"{name}-390")
    page.set_viewport_size(LAPTOP)


def add_colour(page: Any, hex_: str) -> None:
    before = page.locator("[data-palette-colour]").count()
    page.fill("[data-palette-hex]", hex_)
    page.press("[data-palette-hex]", "Enter")
    page.locator("[data-palette-colour]").nth(before).wait_for()


def make_kit(page: Any) -> BrandKit:
    page.goto("/kits/")
    page.get_by_role("link", name="New kit").click()
    page.get_by_label("Name").fill("Harbour Coffee")
    page.get_by_label("Prompt", exact=True).fill("A poster of {subject}")
    page.get_by_label("Always ends with").fill(", flat colours, no text")
    page.get_by_label("Default model").select_option(PRO)
    page.get_by_label("Default size").fill("2K")
    for hex_ in ("#1F6FEB", "#F5F1E8", "#222222"):
        add_colour(page, hex_)
    page.set_input_files(
        "#id_images",
        [
            file("cup.png", picture(900, 700), "image/png"),
            file("logo.png", picture(800, 800), "image/png"),
        ],
    )
    assert serious_accessibility_problems(page) == []
    look(page, "kit-form")
    page.get_by_role("button", name="Save the kit").click()
    page.get_by_text("Brand kit “Harbour Coffee” saved.").wait_for()
    return BrandKit.objects.get(name="Harbour Coffee")


def test_a_kit_made_applied_on_edit_remembered_by_the_job_and_filtered_in_the_gallery(
    page, designer_member, worker
):
    Membership.objects.filter(pk=designer_member.pk).update(role=Membership.Role.OWNER)
    kit = make_kit(page)
    assert kit.images.count() == 2 and len(kit.color_palette) == 3
    page.locator(f"[data-kit='{kit.pk}'] img").first.wait_for()
    assert serious_accessibility_problems(page) == []
    look(page, "kits")

    # Applied on Edit with one click: its images, marked, and its prompt and palette.
    other = finished_job(designer_member, "A kite over the harbour, no kit", minutes_ago=5)
    page.goto("/edit/")
    page.get_by_role("button", name="Harbour Coffee").click()
    page.locator("[data-input] .from-kit").nth(1).wait_for()
    assert page.locator("[data-input] .from-kit").count() == 2
    assert page.get_by_role("button", name="Harbour Coffee").get_attribute("aria-pressed") == "true"
    assert page.locator("input[name=model]:checked").get_attribute("value") == PRO
    prompt = page.locator("textarea[name=prompt]")
    assert prompt.input_value() == "A poster of {subject}, flat colours, no text"
    assert page.locator("[data-palette-colour]").count() == 3
    # Everything stays editable: the designer writes her subject in place of the slot.
    prompt.fill("A poster of the cup in image 1 with the logo of image 2, flat colours, no text")
    assert serious_accessibility_problems(page) == []
    look(page, "kit-applied-on-edit")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.locator(".sent-note", has_text="Sent:").wait_for()
    job = job_ended(Job.objects.exclude(pk=other.pk).get().pk)
    assert job.status == Job.Status.SUCCEEDED
    assert (job.kit_id, job.kit_name) == (kit.pk, "Harbour Coffee")
    assert job.inputs.count() == 2
    palette = [swatch["hex"] for swatch in job.parameters["color_palette"]]
    assert palette == ["#1F6FEB", "#F5F1E8", "#222222"]
    sent = received(worker, PRO)[-1]
    assert len(sent["input"]["messages"][0]["content"]) == 3  # two images and the text

    page.goto(f"/jobs/{job.pk}/")
    assert page.locator("[data-kit]").inner_text() == "Harbour Coffee"

    # The kit changed: the job is as it was.
    page.goto(f"/kits/{kit.pk}/")
    page.get_by_label("Name").fill("Harbour Coffee 2027")
    page.get_by_label("Always ends with").fill(", pastel shades")
    page.get_by_role("button", name="Save the kit").click()
    page.get_by_text("Brand kit “Harbour Coffee 2027” saved.").wait_for()
    job.refresh_from_db()
    assert job.prompt.endswith("flat colours, no text") and job.kit_name == "Harbour Coffee"
    page.goto(f"/jobs/{job.pk}/")
    assert page.locator("[data-kit]").inner_text() == "Harbour Coffee"

    # The gallery by kit: the job's image, not the other.
    page.goto("/gallery/")
    page.select_option("select[name=kit]", str(kit.pk))
    page.wait_for_url(f"**/gallery/?*kit={kit.pk}*")
    cards = page.locator("#gallery-results [data-image]")
    cards.first.wait_for()
    shown = {int(card.get_attribute("data-image")) for card in cards.all()}
    assert shown == set(job.images.values_list("pk", flat=True))
    look(page, "gallery-by-kit")


def test_a_reload_keeps_the_kit_and_her_words_and_no_kit_gives_them_back(
    page, designer_member, worker
):
    from studio.generation.parsers import parse_palette

    kit = BrandKit.objects.create(
        team=designer_member.team,
        name="Poster kit",
        prompt_template="A poster of {subject}",
        prompt_suffix=", flat colours",
        model=PRO,
        size="2K",
        color_palette=parse_palette("#1F6FEB\n#F5F1E8\n#222222"),
    )
    page.goto("/generate/")
    page.get_by_role("button", name="Poster kit").click()
    prompt = page.locator("textarea[name=prompt]")
    page.wait_for_function(
        "() => document.querySelector('textarea[name=prompt]').value.includes('{subject}')"
    )
    prompt.fill("A poster of a red bicycle, flat colours")
    assert page.locator("[data-palette-colour]").count() == 3

    page.reload()
    assert page.get_by_role("button", name="Poster kit").get_attribute("aria-pressed") == "true"
    assert prompt.input_value() == "A poster of a red bicycle, flat colours"
    assert page.locator("[data-palette-colour]").count() == 3
    look(page, "kit-after-reload")

    page.get_by_role("button", name="No kit").click()
    page.wait_for_function(
        "() => document.querySelector('textarea[name=prompt]').value === 'a red bicycle'"
    )
    assert page.locator("[data-palette-colour]").count() == 0
    page.reload()
    assert prompt.input_value() == "a red bicycle"
    assert page.get_by_role("button", name="Poster kit").get_attribute("aria-pressed") == "false"

    # Applied again, and Enter in a field generates (it does not apply a kit).
    page.get_by_role("button", name="Poster kit").click()
    page.wait_for_function(
        "() => document.querySelector('textarea[name=prompt]').value"
        ".startsWith('A poster of a red')"
    )
    assert prompt.input_value() == "A poster of a red bicycle, flat colours"
    page.fill("input[name=seed]", "42")
    page.press("input[name=seed]", "Enter")
    page.locator(".sent-note", has_text="Sent:").wait_for()
    job = Job.objects.get()
    assert (job.kit_id, job.prompt, job.parameters["seed"]) == (
        kit.pk,
        "A poster of a red bicycle, flat colours",
        42,
    )

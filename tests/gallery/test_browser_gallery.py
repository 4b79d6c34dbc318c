"""The gallery's selection and compare in a real browser: the count, the bar, 2 to 4 images."""

from __future__ import annotations

from typing import Any

import pytest

from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage
from tests.support.browser import ARTIFACTS, screenshot, serious_accessibility_problems
from tests.support.gallery import loaded, stored_image

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def seen(page: Any, name: str) -> None:
    """What the window shows, the fixed selection bar where it really is (a whole-page
    picture draws it part way down)."""
    page.screenshot(path=str(ARTIFACTS / "screenshots" / f"{name}-window.png"))


def posters(member: Membership, count: int) -> list[GeneratedImage]:
    return [
        stored_image(member, f"Poster {n}", (50 * n % 255, 90, 160), n + 1) for n in range(count)
    ]


def console_errors(page: Any) -> list[str]:
    """Errors the page logs (htmx reports a failed swap there, not as an exception)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def select(page: Any, image: GeneratedImage) -> None:
    page.locator(f'[data-image="{image.pk}"] .card-select').check()


def bar(page: Any) -> Any:
    return page.locator("#selection")


def test_the_bar_appears_only_with_a_selection_and_counts_it_politely(page, designer_member):
    images = posters(designer_member, 3)
    page.goto("/gallery/")
    assert bar(page).is_hidden()  # nothing selected: nothing to act on
    status = page.locator("[data-selection-status]")
    assert status.get_attribute("role") == "status"  # read out when it changes, politely
    assert status.get_attribute("aria-live") == "polite"

    # By keyboard: the bar appears and the focus stays where the designer is.
    first = page.locator(f'[data-image="{images[0].pk}"] .card-select')
    first.focus()
    page.keyboard.press("Space")
    bar(page).wait_for(state="visible")
    assert page.evaluate("document.activeElement.value") == str(images[0].pk)
    assert bar(page).locator("[data-selection-count]").inner_text() == "1 selected"
    assert status.inner_text() == "1 selected"
    for image in images[1:]:
        select(page, image)
    assert bar(page).locator("[data-selection-count]").inner_text() == "3 selected"
    assert status.inner_text() == "3 selected"
    # The bar never hides the card it covers: the page makes room below the grid.
    last = page.locator(".gallery-card").last
    last.scroll_into_view_if_needed()
    page.mouse.wheel(0, 5000)
    card_box, bar_box = last.bounding_box(), bar(page).bounding_box()
    assert card_box["y"] + card_box["height"] <= bar_box["y"]
    page.set_viewport_size(LAPTOP)
    screenshot(page, "gallery-selection-1440")
    seen(page, "gallery-selection-1440")
    assert not serious_accessibility_problems(page)
    page.set_viewport_size(PHONE)
    screenshot(page, "gallery-selection-390")
    seen(page, "gallery-selection-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Clearing the selection hides the bar; the focus goes back to the grid, not nowhere.
    page.set_viewport_size(LAPTOP)
    bar(page).get_by_role("button", name="Clear").click()
    bar(page).wait_for(state="hidden")
    status.filter(has_text="Selection cleared").wait_for(state="attached")
    assert page.evaluate("document.activeElement.classList.contains('card-select')")
    assert page.locator(".card-select:checked").count() == 0


def test_three_selected_images_are_compared_side_by_side_and_reviewed_there(page, designer_member):
    Membership.objects.filter(pk=designer_member.pk).update(role=Membership.Role.REVIEWER)
    errors = console_errors(page)
    images = posters(designer_member, 3)
    page.goto("/gallery/")
    for image in images:
        select(page, image)
    page.get_by_role("button", name="Compare three").click()
    page.wait_for_url("**/gallery/compare/")
    shown = page.locator("[data-compare]")
    assert shown.count() == 3
    assert [shown.nth(n).get_attribute("data-compare") for n in range(3)] == ["a", "b", "c"]
    assert page.get_by_text("Poster 2").count() == 1  # the third is there, and said so
    loaded(page, shown)
    # Side by side at a laptop's width: one row, each image as large as the others.
    boxes = [shown.nth(n).bounding_box() for n in range(3)]
    assert len({round(b["y"]) for b in boxes}) == 1
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"]
    assert page.locator("[data-compare-slider]").count() == 0  # a slider takes two
    screenshot(page, "gallery-compare-three-1440")
    assert not serious_accessibility_problems(page)

    # Reviewed from here, without leaving the comparison.
    page.evaluate("window.stillThisPage = true")
    second = page.locator("figure", has=page.locator('[data-compare="b"]'))
    second.get_by_role("button", name="Approved").click()
    second.locator(".badge", has_text="Approved").wait_for()
    assert page.evaluate("window.stillThisPage") is True
    images[1].refresh_from_db()
    assert images[1].review_state == GeneratedImage.Review.APPROVED
    page.set_viewport_size(PHONE)
    screenshot(page, "gallery-compare-three-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not errors, errors


def test_more_than_four_disables_compare_and_says_why(page, designer_member):
    images = posters(designer_member, 5)
    page.goto("/gallery/")
    for image in images:
        select(page, image)
    compare = bar(page).locator("[data-compare]")
    assert compare.is_disabled()
    why = page.locator(f"#{compare.get_attribute('aria-describedby')}")
    assert why.inner_text() == "Compare takes up to four images; untick 1."
    assert why.is_visible()
    assert "Compare takes up to four" in page.locator("[data-selection-status]").inner_text()
    screenshot(page, "gallery-selection-five-1440")
    assert not serious_accessibility_problems(page)
    page.set_viewport_size(PHONE)
    seen(page, "gallery-selection-five-390")
    page.set_viewport_size(LAPTOP)
    page.locator(f'[data-image="{images[4].pk}"] .card-select').uncheck()
    assert compare.is_enabled() and compare.inner_text() == "Compare four"
    assert why.inner_text() == ""
    compare.click()
    page.wait_for_url("**/gallery/compare/")
    shown = page.locator("[data-compare]")
    assert shown.count() == 4
    loaded(page, shown)
    screenshot(page, "gallery-compare-four-1440")
    page.set_viewport_size(PHONE)
    screenshot(page, "gallery-compare-four-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_one_selected_cannot_be_compared_and_says_why(page, designer_member):
    (image,) = posters(designer_member, 1)
    page.goto("/gallery/")
    select(page, image)
    compare = bar(page).locator("[data-compare]")
    assert compare.is_disabled()
    why = page.locator(f"#{compare.get_attribute('aria-describedby')}")
    assert why.inner_text() == "Select one more to compare."


def test_the_slider_takes_two_images_of_the_same_shape(page, designer_member):
    square = stored_image(designer_member, "Square lamp", (200, 160, 60), 1, (640, 640))
    small = stored_image(designer_member, "Small lamp", (60, 160, 200), 2, (320, 320))
    wide = stored_image(designer_member, "Wide lamp", (160, 60, 200), 3, (960, 540))

    page.goto(f"/gallery/compare/?image={square.pk}&image={small.pk}")
    slider = page.locator("[data-compare-slider]")
    assert slider.count() == 1
    loaded(page, slider.locator("img"))
    screenshot(page, "gallery-compare-slider-1440")
    # By keyboard: the range moves the split.
    page.get_by_label("How much of A to show").focus()
    page.keyboard.press("End")
    assert slider.evaluate("s => s.style.getPropertyValue('--split')") == "100%"

    page.goto(f"/gallery/compare/?image={square.pk}&image={wide.pk}")
    shown = page.locator("[data-compare]")
    assert shown.count() == 2
    assert page.locator("[data-compare-slider]").count() == 0
    assert "same shape" in page.locator("[data-slider-note]").inner_text()
    assert not serious_accessibility_problems(page)
    loaded(page, shown)
    screenshot(page, "gallery-compare-shapes-1440")


def test_the_gallery_and_compare_name_models_as_people_read_them(page, designer_member):
    images = posters(designer_member, 2)
    page.goto("/gallery/")
    cards = page.locator("#gallery-results")
    assert "Wan 2.6" in cards.inner_text()
    assert "wan2.6-t2i" not in cards.inner_text()
    assert cards.locator('[title="wan2.6-t2i"]').count() == 2  # the id, for who needs it
    feed = page.locator("#activity-feed").inner_text()
    assert "1 image with Wan 2.6" in feed and "wan2.6-t2i" not in feed

    page.goto(f"/gallery/compare/?image={images[0].pk}&image={images[1].pk}")
    captions = page.locator("figcaption")
    assert captions.count() == 2
    for n in range(2):
        assert "Wan 2.6" in captions.nth(n).inner_text()
        assert "wan2.6-t2i" not in captions.nth(n).inner_text()

    page.goto(f"/gallery/images/{images[0].pk}/")
    facts = page.locator(".job-facts").inner_text()
    assert "Wan 2.6" in facts


def test_an_owner_has_every_action_in_the_bar_and_the_trash_without_a_selection(
    page, designer_member
):
    from studio.gallery.models import Board

    Membership.objects.filter(pk=designer_member.pk).update(role=Membership.Role.OWNER)
    Board.objects.create(team=designer_member.team, name="Spring picks")
    images = posters(designer_member, 6)
    page.goto("/gallery/")
    # The trash is a place, not an action on a selection: reachable with none.
    assert page.get_by_role("link", name="Trash").is_visible()
    for image in images[:2]:
        select(page, image)
    for name in ("Compare two", "Download as zip", "Set", "Add to board", "Create"):
        assert bar(page).get_by_role("button", name=name).is_visible(), name
    assert bar(page).get_by_role("button", name="Move to trash").is_visible()
    seen(page, "gallery-selection-owner-1440")
    assert not serious_accessibility_problems(page)
    page.set_viewport_size(PHONE)
    seen(page, "gallery-selection-owner-390")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    # Enter in the new board's name makes the board, not a comparison.
    bar(page).get_by_label("New board name").fill("Finalists")
    bar(page).get_by_label("New board name").press("Enter")
    page.wait_for_url("**/gallery/?board=*")
    assert page.locator(".gallery-card").count() == 2


def test_on_a_phone_the_filters_fold_away_and_the_first_images_show(page, designer_member):
    from studio.gallery.models import Board

    Board.objects.create(team=designer_member.team, name="Spring picks")
    posters(designer_member, 4)
    # A tall image's card is narrow: its caption cannot be cut short there either.
    stored_image(designer_member, "A tall poster", (30, 60, 90), 9, (640, 1280), "wan2.7-image")
    page.set_viewport_size(PHONE)
    page.goto("/gallery/")
    loaded(page, page.locator(".gallery-card img"))
    filters = page.locator("[data-filter-more]")
    # The search in view, the rest folded under "Filters", and the first row of images on
    # the first screen, with nothing to scroll sideways.
    assert page.locator("input[name=q]").is_visible()
    assert filters.evaluate("d => !d.open") and page.locator("select[name=author]").is_hidden()
    first = page.locator(".gallery-card").first.bounding_box()
    assert first["y"] + first["height"] <= PHONE["height"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    seen(page, "gallery-filters-folded-390")
    screenshot(page, "gallery-filters-folded-390")
    # A card's caption is not cut: the model goes to a second line.
    for part in page.locator(".gallery-card .card-meta > span").all():
        assert part.evaluate("s => s.scrollWidth <= s.clientWidth"), part.inner_text()

    # Unfolded: the two checkboxes sit the same way, each before its words on one line.
    page.get_by_text("Filters", exact=True).click()
    assert page.locator("select[name=author]").is_visible()
    boxes = [
        (
            page.locator(f"input[name={name}]").bounding_box(),
            page.locator(f"label:has(input[name={name}]) span").bounding_box(),
        )
        for name in ("starred", "mentioned")
    ]
    for box, words in boxes:
        assert box["x"] + box["width"] <= words["x"]
        assert abs((box["y"] + box["height"] / 2) - (words["y"] + words["height"] / 2)) <= 3
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.check("input[name=starred]")
    page.locator("[data-filter-count]", has_text="(1 set)").wait_for()
    assert not serious_accessibility_problems(page)
    seen(page, "gallery-filters-open-390")

    # A filter in use: the fold is open when the page comes, saying how many are set.
    page.goto("/gallery/?state=approved&kind=text-to-image")
    assert filters.evaluate("d => d.open")
    assert page.locator("summary").first.inner_text() == "Filters (2 set)"

    # On a wide screen every filter shows, with no fold to open.
    page.set_viewport_size(LAPTOP)
    page.goto("/gallery/")
    assert filters.evaluate("d => d.open")
    assert page.locator("[data-filter-more] > summary").is_hidden()
    assert page.locator("select[name=author]").is_visible()
    assert not serious_accessibility_problems(page)
    for part in page.locator(".gallery-card .card-meta > span").all():
        assert part.evaluate("s => s.scrollWidth <= s.clientWidth"), part.inner_text()
    # Each tick box on its picture's corner, however tall the caption under it.
    for card in page.locator(".gallery-card").all():
        picture, tick = (
            card.locator("img").bounding_box(),
            card.locator(".card-select").bounding_box(),
        )
        assert (
            picture["y"] < tick["y"]
            and tick["y"] + tick["height"] < picture["y"] + picture["height"]
        )
    seen(page, "gallery-filters-1440")

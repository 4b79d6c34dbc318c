"""The colour palette picker in a real browser: colours added by hex or by the colour chooser,
shares by slider or number, what empty shares get, palettes used before, and what is sent."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from studio.generation.models import Job
from studio.generation.parsers import parse_palette
from tests.support.browser import (
    received,
    screenshot,
    serious_accessibility_problems,
    signed_in_context,
)
from tests.support.factories import create_job_row, create_membership, create_team, create_user

pytestmark = [pytest.mark.django_db(transaction=True)]

PRO = "wan2.7-image-pro"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}
# The form drawn again by htmx in place of the one marked before.
REDRAWN = "() => document.getElementById('generate-form') !== window.formBefore"


def colours(page: Any) -> Any:
    return page.locator("[data-palette-colour]")


def add_by_hex(page: Any, hex_: str, *, enter: bool = True) -> None:
    before = colours(page).count()
    page.fill("[data-palette-hex]", hex_)
    if enter:
        page.press("[data-palette-hex]", "Enter")
    else:
        page.get_by_role("button", name="Add colour").click()
    colours(page).nth(before).wait_for()


def add_by_chooser(page: Any, value: str) -> None:
    before = colours(page).count()
    page.fill("input[type=color][data-palette-pick]", value)
    page.get_by_role("button", name="Add colour").click()
    colours(page).nth(before).wait_for()


def share(page: Any, number: int) -> Any:
    return colours(page).nth(number - 1).locator("input[type=number]")


def slider(page: Any, number: int) -> Any:
    return colours(page).nth(number - 1).locator("input[type=range]")


def sent_text(page: Any) -> str:
    return page.locator("textarea[name=color_palette]").input_value()


def shown_shares(page: Any) -> list[Decimal]:
    """Each colour's share as the picker shows it: the one given, or an empty one's part."""
    shown = []
    for n in range(1, colours(page).count() + 1):
        field = share(page, n)
        shown.append(Decimal(field.input_value() or field.get_attribute("placeholder")))
    return shown


def as_server_reads(text: str) -> list[Decimal]:
    return [Decimal(swatch["ratio"].rstrip("%")) for swatch in parse_palette(text)]


def no_sideways_scrolling(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def open_palette(page: Any, model: str = PRO, form: str = "generate") -> None:
    page.goto(f"/{form}/?model={model}")
    page.locator("[data-palette-picker]").wait_for()
    # The textarea is still the field sent, hidden behind the picker.
    assert page.locator("textarea[name=color_palette]").is_hidden()


def test_four_colours_without_shares_are_sent_adding_up_to_100(page, worker):
    open_palette(page)
    message = page.locator("[data-palette-message]")
    assert message.inner_text() == "No palette: the model chooses the colours."
    add_by_hex(page, "#1f6feb")
    add_by_chooser(page, "#f5f1e8")
    assert "at least 3 colours" in message.inner_text()
    assert message.get_attribute("aria-live") == "polite"
    add_by_hex(page, "222", enter=False)  # short hex, written out in full
    add_by_hex(page, "E4572E")
    assert message.inner_text() == ""
    assert message.get_attribute("class") == "palette-message"
    assert [c.get_attribute("data-palette-colour") for c in colours(page).all()] == [
        "#1F6FEB",
        "#F5F1E8",
        "#222222",
        "#E4572E",
    ]
    assert shown_shares(page) == [Decimal(25)] * 4
    assert page.locator("[data-palette-total]").inner_text() == "100.00 %"
    assert sent_text(page) == "#1F6FEB\n#F5F1E8\n#222222\n#E4572E"
    assert serious_accessibility_problems(page) == []
    page.fill("textarea[name=prompt]", "A quiet harbour at dawn, flat poster shapes")
    screenshot(page, "palette-four-colours-1440")
    page.set_viewport_size(PHONE)
    no_sideways_scrolling(page)
    screenshot(page, "palette-four-colours-390")
    page.set_viewport_size(LAPTOP)

    page.get_by_role("button", name="Generate", exact=True).click()
    result = page.locator(".result-entry").first
    result.wait_for()
    result.locator("img[data-tile=image]").first.wait_for(timeout=30_000)
    stored = Job.objects.get().parameters["color_palette"]
    sent = received(worker, PRO)[-1]["parameters"]["color_palette"]
    for palette in (stored, sent):
        assert [swatch["hex"] for swatch in palette] == ["#1F6FEB", "#F5F1E8", "#222222", "#E4572E"]
        assert [swatch["ratio"] for swatch in palette] == ["25.00%"] * 4
        assert sum(Decimal(swatch["ratio"].rstrip("%")) for swatch in palette) == Decimal("100.00")


def test_two_shares_given_and_the_other_two_split_the_rest(page):
    open_palette(page)
    for hex_ in ("#0B3954", "#087E8B", "#BFD7EA", "#FF5A5F"):
        add_by_hex(page, hex_)
    share(page, 1).fill("40")
    slider(page, 2).fill("27")  # the slider and the number move together
    assert share(page, 2).input_value() == "27"
    share(page, 2).fill("26.99")
    assert slider(page, 2).input_value() == "27"
    # 33.01 % is left: 16.50 % each, the last empty one taking the hundredth over.
    assert share(page, 3).get_attribute("placeholder") == "16.5"
    assert share(page, 4).get_attribute("placeholder") == "16.51"
    assert sent_text(page) == "#0B3954 40%\n#087E8B 26.99%\n#BFD7EA\n#FF5A5F"
    assert shown_shares(page) == as_server_reads(sent_text(page))
    assert page.locator("[data-palette-total]").inner_text() == "100.00 %"
    slider(page, 1).focus()
    page.keyboard.press("ArrowRight")  # a whole percent a key
    assert share(page, 1).input_value() == "41"
    assert share(page, 4).get_attribute("placeholder") == "16.01"
    page.keyboard.press("ArrowLeft")
    page.locator("[data-palette-picker]").evaluate("el => el.scrollIntoView({block: 'center'})")
    screenshot(page, "palette-two-shares-1440")
    page.set_viewport_size(PHONE)
    no_sideways_scrolling(page)
    screenshot(page, "palette-two-shares-390")
    page.set_viewport_size(LAPTOP)

    share(page, 1).fill("80")
    message = page.locator("[data-palette-message]")
    assert "106.99 %, over 100 %" in message.inner_text()
    share(page, 1).fill("")  # empty again: it takes its part of the rest
    assert message.inner_text() == ""
    assert shown_shares(page) == as_server_reads(sent_text(page))
    assert shown_shares(page)[0] == Decimal("24.33")

    colours(page).nth(3).get_by_role("button", name="Remove #FF5A5F").click()
    assert colours(page).count() == 3
    assert shown_shares(page) == as_server_reads(sent_text(page))
    # The keyboard stays in the list, on the colour now last.
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Remove #BFD7EA"


def test_the_eleventh_colour_cannot_be_added_and_says_why(page):
    open_palette(page, form="edit")  # the Edit form's palette is the same picker
    for n in range(10):
        add_by_hex(page, f"#{n}{n}{n}{n}{n}{n}")
    add = page.get_by_role("button", name="Add colour")
    assert add.is_disabled()
    why = page.locator("[data-palette-add-why]")
    assert "10 colours: the most a palette holds" in why.inner_text()
    assert add.get_attribute("aria-describedby") == why.get_attribute("id")
    page.fill("[data-palette-hex]", "#ABCDEF")
    page.press("[data-palette-hex]", "Enter")
    assert colours(page).count() == 10
    assert shown_shares(page) == [Decimal(10)] * 10
    page.locator("[data-palette-picker]").scroll_into_view_if_needed()
    screenshot(page, "palette-ten-colours-1440")
    page.set_viewport_size(PHONE)
    no_sideways_scrolling(page)
    screenshot(page, "palette-ten-colours-390")


def test_a_palette_used_before_fills_the_picker_and_stays_through_a_model_switch(
    page, designer_member
):
    warm = parse_palette("#FF6600 50%\n#FFCC00\n#993300")
    cool = parse_palette("#003366\n#336699\n#99CCFF")
    create_job_row(designer_member, model=PRO, parameters={"n": 1, "color_palette": warm})
    elsewhere = create_membership(team=create_team(), user=create_user())
    create_job_row(elsewhere, model=PRO, parameters={"n": 1, "color_palette": cool})
    open_palette(page)
    offers = page.locator("[data-palette-use]")
    assert offers.count() == 1  # the team's own, not the other team's
    offers.first.scroll_into_view_if_needed()
    screenshot(page, "palette-used-before-1440")
    offers.first.click()
    assert [c.get_attribute("data-palette-colour") for c in colours(page).all()] == [
        "#FF6600",
        "#FFCC00",
        "#993300",
    ]
    assert [share(page, n).input_value() for n in (1, 2, 3)] == ["50", "25", "25"]
    assert parse_palette(sent_text(page)) == warm
    page.set_viewport_size(PHONE)
    no_sideways_scrolling(page)
    screenshot(page, "palette-used-before-filled-390")
    page.set_viewport_size(LAPTOP)

    # Another model redraws the form: the picker is drawn again from the palette kept.
    page.evaluate("window.formBefore = document.getElementById('generate-form')")
    page.locator("input[name=model][value='wan2.7-image']").check()
    page.wait_for_function(REDRAWN)
    page.locator("[data-palette-picker]").wait_for()
    assert page.locator("textarea[name=color_palette]").is_hidden()
    assert colours(page).count() == 3
    assert parse_palette(sent_text(page)) == warm

    # Sent with two colours, it comes back with the server's reason and the two colours.
    colours(page).nth(2).get_by_role("button", name="Remove #993300").click()
    page.fill("textarea[name=prompt]", "Autumn leaves")
    page.evaluate("window.formBefore = document.getElementById('generate-form')")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(REDRAWN)
    page.locator("[data-palette-picker]").wait_for()
    error = page.locator(".field-color_palette .field-error")
    assert "3 to 10 colours" in error.inner_text()
    assert colours(page).count() == 2
    assert "at least 3 colours" in page.locator("[data-palette-message]").inner_text()
    assert not Job.objects.filter(prompt="Autumn leaves").exists()
    page.set_viewport_size(PHONE)
    no_sideways_scrolling(page)
    screenshot(page, "palette-sent-back-390")


def test_without_scripts_the_palette_is_typed(browser, live_server, designer_member):
    context = signed_in_context(
        browser, live_server, designer_member.user, java_script_enabled=False
    )
    try:
        tab = context.new_page()
        tab.goto(f"/generate/?model={PRO}")
        assert tab.locator("textarea[name=color_palette]").is_visible()
        assert tab.locator("[data-palette-picker]").is_hidden()
    finally:
        context.close()

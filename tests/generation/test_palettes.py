"""The colour palette field: the team's palettes offered again, and the picker's widget."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from studio.accounts.models import Membership
from studio.dashscope.catalog import get_model
from studio.generation.forms import GenerationForm
from studio.generation.palettes import PaletteWidget, palette_field, recent_palettes
from studio.generation.parsers import parse_palette
from tests.support.factories import create_job_row, create_membership, create_team, create_user

pytestmark = pytest.mark.django_db

SPEC = get_model("wan2.7-image-pro")
WARM = parse_palette("#FF6600 50%\n#FFCC00\n#993300")
COOL = parse_palette("#003366\n#336699\n#99CCFF")
MONO = parse_palette("#000000 10%\n#777777 30%\n#FFFFFF 60%")


@pytest.fixture
def member() -> Membership:
    return create_membership(team=create_team(), user=create_user())


def used(member: Membership, palette: list[dict[str, str]] | None, minutes_ago: int) -> None:
    """A job of the member's, `minutes_ago`, with this palette (or none)."""
    parameters: dict[str, object] = {"size": "2K", "n": 1}
    if palette is not None:
        parameters["color_palette"] = palette
    create_job_row(
        member,
        model="wan2.7-image-pro",
        parameters=parameters,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_each_palette_once_the_latest_used_first(member, django_assert_num_queries):
    used(member, WARM, minutes_ago=50)
    used(member, COOL, minutes_ago=40)
    used(member, None, minutes_ago=30)
    used(member, WARM, minutes_ago=20)  # used again: it moves to the front, once
    used(member, MONO, minutes_ago=30)
    with django_assert_num_queries(1):
        palettes = recent_palettes(member.team)
    assert palettes == [WARM, MONO, COOL]


def test_only_the_teams_own_palettes(member):
    other = create_membership(team=create_team(), user=create_user())
    # The same person in both teams: what she used in one is not offered in the other.
    both = create_membership(team=member.team, user=other.user)
    used(other, COOL, minutes_ago=1)
    used(both, MONO, minutes_ago=2)
    used(member, WARM, minutes_ago=5)
    assert recent_palettes(member.team) == [MONO, WARM]
    assert recent_palettes(other.team) == [COOL]


def test_at_most_the_limit(member):
    for n in range(8):
        used(member, parse_palette(f"#00000{n}\n#111111\n#222222"), minutes_ago=n)
    palettes = recent_palettes(member.team, limit=3)
    assert [p[0]["hex"] for p in palettes] == ["#000000", "#000001", "#000002"]
    assert len(recent_palettes(member.team)) == 6


def test_a_palette_stored_another_way_is_not_offered(member):
    used(member, [], minutes_ago=5)
    used(member, [{"hex": "red", "ratio": "100%"}], minutes_ago=4)
    used(member, [{"hex": "#123456"}], minutes_ago=3)
    create_job_row(member, parameters={"n": 1, "color_palette": None})
    used(member, COOL, minutes_ago=10)
    assert recent_palettes(member.team) == [COOL]


def rendered(**options) -> str:
    field = palette_field(SPEC, options.pop("team", None))
    return field.widget.render("color_palette", options.get("value"), {"id": "id_color_palette"})


def test_the_field_is_the_palette_text_with_its_limits_and_help():
    field = palette_field(SPEC, None)
    assert isinstance(field.widget, PaletteWidget)
    assert not field.required and field.label == "Colour palette"
    assert field.help_text.startswith("3 to 10 colours with their shares")
    assert field.widget.attrs["rows"] == 3


def test_the_widget_is_the_textarea_sent_and_the_picker_hidden_until_scripts_run():
    page = rendered(value="#1F6FEB 40%\n#F5F1E8")
    textarea = re.search(r"<textarea ([^>]*)>\n?([^<]*)</textarea>", page)
    assert textarea, page
    assert 'name="color_palette"' in textarea[1] and 'id="id_color_palette"' in textarea[1]
    assert "hidden" not in textarea[1]  # without scripts it is the field
    assert textarea[2] == "#1F6FEB 40%\n#F5F1E8"
    assert 'data-min-colours="3"' in page and 'data-max-colours="10"' in page
    assert re.search(r'<div class="palette-picker"[^>]*\bhidden\b', page)
    assert 'for="id_color_palette_hex"' in page and 'type="color"' in page
    # The picker's own controls have no names: only the textarea is sent.
    controls = re.findall(r"<(?:input|button)[^>]*>", page)
    assert controls and not any(" name=" in control for control in controls)
    assert "Used before" not in page  # nothing to offer


def test_the_teams_palettes_are_offered_as_rows_of_swatches(member):
    used(member, WARM, minutes_ago=2)
    used(member, COOL, minutes_ago=1)
    page = rendered(team=member.team)
    assert "Used before" in page
    offers = re.findall(r'<button [^>]*data-palette-use="([^"]*)"[^>]*>(.*?)</button>', page, re.S)
    assert [html.unescape(text) for text, _ in offers] == [
        "#003366 33.33%\n#336699 33.33%\n#99CCFF 33.34%",
        "#FF6600 50.00%\n#FFCC00 25.00%\n#993300 25.00%",
    ]
    warm = offers[1][1]
    assert warm.count("palette-offer-swatch") == 3
    assert "background-color: #FF6600; flex-grow: 50.00" in warm
    assert 'aria-label="Use #FF6600 50.00%, #FFCC00 25.00%, #993300 25.00%"' in page


def test_the_generate_form_shows_the_picker_with_the_teams_palettes(member):
    used(member, MONO, minutes_ago=1)
    form = GenerationForm(SPEC, team=member.team)
    widget = form.fields["color_palette"].widget
    assert isinstance(widget, PaletteWidget)
    assert widget.recent == [MONO]
    assert "data-palette-use" in str(form["color_palette"])

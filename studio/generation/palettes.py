"""The colour palette field: a picker over the palette's text, and the team's palettes offered
again.

The field stays a textarea of '#RRGGBB share%' lines, read by `parse_palette`, so the form
works without scripts; palette.js hides it and draws a picker that writes the same text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django import forms
from django.db.models import Max
from django.db.models.fields.json import KeyTransform
from django.forms.renderers import BaseRenderer, TemplatesSetting
from django.utils.safestring import SafeString

from studio.accounts.models import Team
from studio.dashscope.catalog import ModelSpec
from studio.generation.models import Job
from studio.generation.parsers import palette_text

Palette = list[dict[str, str]]

_HEX_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_RATIO_RE = re.compile(r"^[0-9]{1,3}(?:\.[0-9]{1,2})?%$")


def recent_palettes(team: Team, limit: int = 6) -> list[Palette]:
    """The team's palettes, each once, the most recently used first (one query)."""
    rows = (
        # A palette with a first colour: not a null or an empty list stored by hand.
        Job.objects.filter(team=team, parameters__color_palette__0__hex__isnull=False)
        .annotate(palette=KeyTransform("color_palette", "parameters"))
        .values("palette")  # grouped by the palette itself: the same colours, the same row
        .annotate(last_used=Max("created_at"))
        .order_by("-last_used")[:limit]
    )
    return [palette for row in rows if (palette := _well_formed(row["palette"])) is not None]


def _well_formed(value: Any) -> Palette | None:
    """The stored palette as the form writes it, or None for anything else: job parameters
    are JSON, and a row written another way must not break the form."""
    if not isinstance(value, list) or not value:
        return None
    palette = []
    for swatch in value:
        if not isinstance(swatch, dict):
            return None
        hex_, ratio = swatch.get("hex"), swatch.get("ratio")
        if not isinstance(hex_, str) or not isinstance(ratio, str):
            return None
        if not _HEX_RE.match(hex_) or not _RATIO_RE.match(ratio):
            return None
        palette.append({"hex": hex_.upper(), "ratio": ratio})
    return palette


# The widget's template is the project's, which the default form renderer (Django's own
# form templates only) cannot find.
_PROJECT_TEMPLATES = TemplatesSetting()


class PaletteWidget(forms.Textarea):
    """The palette's textarea, with what the picker drawn over it needs to know: how many
    colours the model takes and the palettes to offer again."""

    template_name = "generation/widgets/palette.html"

    def __init__(
        self,
        recent: Sequence[Palette] = (),
        *,
        colours: tuple[int, int] = (3, 10),
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs)
        self.recent = [list(palette) for palette in recent]
        self.colours = colours

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        low, high = self.colours
        context["widget"].update(
            {
                "min_colours": low,
                "max_colours": high,
                "recent": [_offer(palette) for palette in self.recent],
            }
        )
        return context

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        return super().render(name, value, attrs, renderer=_PROJECT_TEMPLATES)


def _offer(palette: Palette) -> dict[str, Any]:
    """A palette as the picker offers it: its swatches, its text to fill the picker with,
    and what a screen reader says of it."""
    return {
        # Each swatch as wide as its share of the palette.
        "swatches": [swatch | {"weight": swatch["ratio"].rstrip("%")} for swatch in palette],
        "text": palette_text(palette),
        "spoken": ", ".join(f"{swatch['hex']} {swatch['ratio']}" for swatch in palette),
    }


def palette_field(spec: ModelSpec, team: Team | None) -> forms.CharField:
    """The model's colour palette: the textarea `parse_palette` reads, shown as a picker
    offering the team's recent palettes."""
    low, high = spec.color_palette_items
    recent = recent_palettes(team) if team is not None else []
    return forms.CharField(
        required=False,
        label="Colour palette",
        widget=PaletteWidget(
            recent,
            colours=(low, high),
            attrs={"rows": 3, "placeholder": "#1F6FEB 40%\n#F5F1E8 35%\n#222222"},
        ),
        help_text=(
            f"{low} to {high} colours with their shares of the picture; colours left without "
            "a share split what is left equally. (Typed, one colour a line: #RRGGBB 40%.)"
        ),
    )

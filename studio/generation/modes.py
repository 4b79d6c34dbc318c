"""The generation forms' modes: a set of images (wan2.7's `enable_sequential`) and a
short illustrated piece of text and images (wan2.6-image's `enable_interleave`).

Each is a switch that redraws the form, since a mode changes what the form offers: a set
asks for up to twelve images and drops 4K; a piece takes at most one reference image, its
own sizes, one answer (n) holding up to `max_images` pictures. The limits of a piece are
`ModelSpec.interleaved()`'s, which the form and the edit page's images both follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.urls import reverse

from studio.dashscope.catalog import Kind, ModelSpec, Option, Range


def offers_piece(spec: ModelSpec) -> bool:
    """Whether the model writes mixed text and images: a short illustrated piece."""
    return spec.interleave is not None and spec.supports(Option.ENABLE_INTERLEAVE)


def piece_only(spec: ModelSpec, kind: Kind) -> bool:
    """Whether the model is offered for this kind of job only as mixed text and images."""
    return kind not in spec.kinds and offers_piece(spec)


def switched_on(value: object) -> bool:
    """A checkbox's value as posted or as kept for a redraw ("on", True) read as on."""
    return value not in (None, "", False, "false", "False", "off", "0")


def asks_for_piece(spec: ModelSpec, kind: Kind, values: Mapping[str, Any]) -> bool:
    """Whether a form's values (posted, or kept for a redraw) ask for a piece."""
    if not offers_piece(spec):
        return False
    return piece_only(spec, kind) or switched_on(values.get("enable_interleave"))


def mode_limits(spec: ModelSpec, kind: Kind, values: Mapping[str, Any]) -> ModelSpec:
    """The limits a request is held to: the mixed mode's (its reference images, sizes and
    n) when the form asks for a piece, else the model's own."""
    return spec.interleaved() if asks_for_piece(spec, kind, values) else spec


SET_FIRST_COUNT = 4
SET_COUNT_HELP = (
    "The most the set may hold: the model decides how many it makes, and only the images "
    "it makes are charged."
)
PALETTE_WITH_SET = (
    "A set of images cannot use a colour palette: the model takes a palette for single "
    "images only. Clear the palette, or turn off “Make a set of images”."
)


def set_field(spec: ModelSpec, kind: Kind) -> forms.BooleanField:
    """The switch between single images and a set; changing it redraws the form, whose
    number of images and sizes differ for a set."""
    return forms.BooleanField(
        required=False,
        label="Make a set of images",
        help_text=(
            "Several consistent images in one request: a storyboard, a product series, one "
            "character from the front, side and back."
        ),
        widget=forms.CheckboxInput(attrs=redraws(kind, "enable_sequential")),
    )


PIECE_LABEL = "Text and images: a short illustrated piece"
PIECE_HELP = (
    "The model writes a short text (a story, a recipe, a guide) and draws its pictures "
    "between the paragraphs. Takes one reference image at most, or none."
)
PIECE_ONLY_HELP = (
    "From a prompt alone this model writes only this: text with pictures between its "
    "paragraphs. To edit images with it, use “Edit images”."
)
PIECE_COUNT_HELP = (
    "The most pictures the piece may hold: the model decides how many it draws, and only "
    "the pictures it draws are charged."
)
PIECE_PROMPT_HELP = "Say what the piece tells and what its pictures show. "


def max_images_field(most: Range) -> forms.TypedChoiceField:
    """The most pictures a piece may hold: an upper bound, the model deciding."""
    return forms.TypedChoiceField(
        choices=[(i, str(i)) for i in range(most.min, most.max + 1)],
        coerce=int,
        initial=most.default,
        label="Pictures, at most",
        help_text=PIECE_COUNT_HELP,
    )


def piece_field(kind: Kind, *, locked: bool) -> forms.BooleanField:
    """The switch between the model's own mode and a piece of text and images; changing it
    redraws the form, whose reference images, sizes and count differ for a piece. Locked
    on (shown, not sent) where the model is offered for pieces only."""
    if locked:
        return forms.BooleanField(
            required=False,
            disabled=True,
            initial=True,
            label=PIECE_LABEL,
            help_text=PIECE_ONLY_HELP,
        )
    return forms.BooleanField(
        required=False,
        label=PIECE_LABEL,
        help_text=PIECE_HELP,
        widget=forms.CheckboxInput(attrs=redraws(kind, "enable_interleave")),
    )


def redraws(kind: Kind, name: str) -> dict[str, str]:
    """A switch's attributes that redraw the form for what it turns on or off."""
    return {
        "hx-post": reverse("edit" if kind == Kind.EDIT else "generate"),
        "hx-vals": f'{{"redraw": "{name}"}}',
        "hx-trigger": "change",
        "hx-target": "closest form",
        "hx-swap": "outerHTML",
    }

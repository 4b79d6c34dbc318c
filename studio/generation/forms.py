"""The generation forms: only the fields the chosen model takes, with its limits.

One form serves both kinds of job. Text to image and editing differ in the models offered,
the sizes (an edit's output takes the shape of the last input image) and a few options
(thinking mode is for text to image only); the reference images of an edit are handled by
the view, because they arrive one by one before the form is submitted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.urls import reverse

from studio.accounts.models import Team
from studio.dashscope.catalog import (
    SEED_MAX,
    Kind,
    ModelSpec,
    Option,
    Range,
    TextUnit,
    models_for,
)
from studio.dashscope.tokens import prompt_length
from studio.dashscope.validation import Problem, parse_size, prompt_too_long
from studio.generation.models import BrandKit
from studio.generation.modes import (
    PALETTE_WITH_SET,
    PIECE_PROMPT_HELP,
    SET_COUNT_HELP,
    SET_FIRST_COUNT,
    asks_for_piece,
    max_images_field,
    offers_piece,
    piece_field,
    piece_only,
    set_field,
    switched_on,
)
from studio.generation.palettes import palette_field
from studio.generation.parsers import parse_palette
from studio.generation.sizes import (
    LIKE_LAST_IMAGE,
    custom_size_help,
    default_size,
    size_choices,
    size_rule_attrs,
)


def offered_models(team: Team | None, kind: Kind) -> tuple[ModelSpec, ...]:
    """The catalog's models for this kind of job that the team may use. From a prompt
    alone, an editing model is offered too when it has a mode that needs no image (mixed
    text and images), for that mode only."""
    specs = models_for(kind)
    if kind == Kind.TEXT_TO_IMAGE:
        specs += tuple(spec for spec in models_for(Kind.EDIT) if piece_only(spec, kind))
    return tuple(spec for spec in specs if team is None or team.allows(spec.name))


def model_choices(kind: Kind, team: Team | None = None) -> list[tuple[str, str]]:
    return [(spec.name, spec.label) for spec in offered_models(team, kind)]


class PromptField(forms.CharField):
    """Text whose line breaks count once.

    Browsers send a line break as CRLF but count it as one character, as the provider does;
    normalising before the length check keeps the form's limit the one the counter shows.
    """

    def __init__(self, **kwargs: Any) -> None:
        # Sent as typed, spaces included: the count the designer sees is the count of what
        # the provider receives, and the server's check counts the same text.
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> str:
        # A str: its empty value is "", as no prompt field asks for None.
        return cast(str, super().to_python(value)).replace("\r\n", "\n")

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        # No maxlength: a browser counts it in UTF-16 units, so an emoji would count twice
        # and a paste be cut short. The counter and the check on sending count characters.
        attrs = super().widget_attrs(widget)
        attrs.pop("maxlength", None)
        if self.max_length is not None:
            attrs["data-max"] = str(self.max_length)
        return attrs


class GenerationForm(forms.Form):
    kit: BrandKit | None = None  # the brand kit the form carries, set by the view
    model = forms.ChoiceField(
        error_messages={"invalid_choice": "%(value)s is not a model your team may use."}
    )
    prompt = PromptField(widget=forms.Textarea(attrs={"rows": 5}))

    def __init__(
        self,
        spec: ModelSpec,
        *args: Any,
        kind: Kind = Kind.TEXT_TO_IMAGE,
        team: Team | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.kind = kind
        model_field = cast(forms.ChoiceField, self.fields["model"])  # as declared above
        model_field.choices = model_choices(kind, team)
        model_field.initial = spec.name
        values = self.data if self.is_bound else self.initial
        # A piece of mixed text and images has its own limits (spec.interleaved()).
        self.makes_piece = asks_for_piece(spec, kind, values)
        self.limits = spec.interleaved() if self.makes_piece else spec
        self.makes_set = self._asks_for_set(values)
        self._describe_prompt()
        # In this order on the page: what to avoid, a piece or not, the size, a set or
        # not, how many, then the options.
        if spec.supports(Option.NEGATIVE_PROMPT):
            self.fields["negative_prompt"] = _negative_prompt_field(spec)
        if offers_piece(spec):
            self._add_piece_switch()
        self._add_size_fields()
        if spec.n_sequential is not None and spec.supports(Option.ENABLE_SEQUENTIAL):
            self.fields["enable_sequential"] = set_field(spec, kind)
        self._add_count_field()
        self.fields.update(
            _option_fields(spec, kind, team, makes_set=self.makes_set, piece=self.makes_piece)
        )

    def _asks_for_set(self, values: Mapping[str, Any]) -> bool:
        """Whether the form is for a set of images: as sent, or as it is to be shown."""
        if self.spec.n_sequential is None or not self.spec.supports(Option.ENABLE_SEQUENTIAL):
            return False
        return switched_on(values.get("enable_sequential"))

    def _add_piece_switch(self) -> None:
        locked = piece_only(self.spec, self.kind)
        if locked:
            # Shown on, whatever a redraw kept: a disabled field shows its initial value.
            self.initial["enable_interleave"] = True
        self.fields["enable_interleave"] = piece_field(self.kind, locked=locked)

    def _add_count_field(self) -> None:
        """How many images: for a piece, the most pictures it may hold; else n."""
        if self.makes_piece and self.spec.interleave is not None:
            most = self.spec.interleave.max_images
            kept = str(self.initial.get("max_images", ""))
            if not self.is_bound and not (kept.isdigit() and int(kept) in most):
                self.initial.pop("max_images", None)  # left empty, or kept from elsewhere
            self.fields["max_images"] = max_images_field(most)
            return
        rule = self.n_rule
        self.fields["n"] = forms.TypedChoiceField(
            choices=[(i, str(i)) for i in range(rule.min, rule.max + 1)],
            coerce=int,
            initial=rule.min,
            label="At most" if self.makes_set else "Images",
            help_text=SET_COUNT_HELP if self.makes_set else "",
        )

    @property
    def n_rule(self) -> Range:
        """How many images a request may ask for: a set's upper bound, or the model's n."""
        if self.makes_set and self.spec.n_sequential is not None:
            return self.spec.n_sequential
        return self.limits.n

    @property
    def counts_at_most(self) -> bool:
        """Whether the number asked for is an upper bound (a set, a piece): the cost is
        said as "at most"."""
        return self.makes_set or self.makes_piece

    def images_wanted(self) -> int:
        """The images the request reserves as the form now stands, for the cost line."""
        try:
            return max(1, int(self["max_images" if self.makes_piece else "n"].value() or 1))
        except (TypeError, ValueError):
            return 1

    def _describe_prompt(self) -> None:
        """The prompt's limit in the model's unit, for the counter and the help text."""
        spec = self.spec
        prompt = self.fields["prompt"]
        prompt.widget.attrs.update(
            {"data-counted": "", "data-max": spec.prompt_max, "data-unit": spec.prompt_unit}
        )
        if spec.prompt_unit is TextUnit.TOKENS:
            prompt.widget.attrs["data-count-url"] = reverse("count-prompt")
        prompt.help_text = f"Up to {spec.prompt_max:,} {spec.prompt_unit}."
        if spec.prompt_unit is TextUnit.TOKENS:
            prompt.help_text += " A token is a word or part of one, as the model reads text."
        if self.makes_piece:
            prompt.help_text = PIECE_PROMPT_HELP + prompt.help_text
        elif self.kind == Kind.EDIT:
            prompt.help_text = (
                "Refer to the reference images as “image 1”, “image 2”… in their order below. "
                + prompt.help_text
            )

    def _add_size_fields(self) -> None:
        spec, kind = self.limits, self.kind
        choices = size_choices(spec, kind)
        if self.makes_set:
            # The provider makes a set at 2K at most: 4K is for one image from a prompt.
            choices = [c for c in choices if c[0] not in spec.size.text_to_image_only_tiers]
        if not self.is_bound and self.initial.get("size") not in dict(choices):
            # Kept from a mode or model whose sizes differ: this one's default instead.
            self.initial.pop("size", None)
        self.fields["size"] = forms.ChoiceField(
            choices=choices, initial=default_size(spec, kind), required=False
        )
        if not spec.size.fixed:
            self.fields["custom_size"] = forms.CharField(
                required=False,
                label="Or your own size",
                max_length=11,
                widget=forms.TextInput(
                    attrs={"placeholder": "width×height, e.g. 1600×900", **size_rule_attrs(spec)}
                ),
                help_text=custom_size_help(spec, kind),
            )

    # Said next to the number of images when a switch had to change it.
    n_note = ""

    def carry_n(self, chosen: object, *, set_begun: bool = False) -> None:
        """Keep the number of images chosen for another model, within what this one makes,
        and say so when it had to change. A set just begun starts at a few images: one
        image is not a set, and twelve would reserve a quota nobody meant to."""
        try:
            wanted = int(str(chosen))
        except ValueError:
            return
        if "n" not in self.fields:
            return  # a piece: one a request, its pictures counted by max_images
        rule = self.n_rule
        if set_begun and self.makes_set and wanted < 2:
            self.initial["n"] = min(SET_FIRST_COUNT, rule.max)
            return
        n = min(max(wanted, rule.min), rule.max)
        self.initial["n"] = n
        if n != wanted:
            most = f"at most {rule.max}" if wanted > rule.max else f"at least {rule.min}"
            self.n_note = (
                f"{self.spec.label} makes {most} image{'s' * (n != 1)} a request"
                f"{' without a set' if rule is self.spec.n and self.spec.n_sequential else ''}; "
                f"you chose {wanted}."
            )
            # Read with the field: a screen reader hears why the number is not the one set.
            self.fields["n"].widget.attrs["aria-describedby"] = self["n"].auto_id + "_note"

    # Written text takes the form's width; the model's settings share a grid beside it.
    WIDE_FIELDS = ("prompt", "negative_prompt", "color_palette")

    def wide_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.WIDE_FIELDS if name in self.fields]

    def option_fields(self) -> list[forms.BoundField]:
        skip = {"model", *self.WIDE_FIELDS}
        return [self[name] for name in self.fields if name not in skip]

    def clean_model(self) -> str:
        return self.spec.name

    def clean_prompt(self) -> str:
        prompt = self.cleaned_data["prompt"]
        length = prompt_length(self.spec, prompt)
        if length > self.spec.prompt_max:
            raise forms.ValidationError(prompt_too_long(self.spec, length))
        return prompt

    def clean_size(self) -> str:
        value = self.cleaned_data.get("size", "")
        if value == LIKE_LAST_IMAGE and self.kind != Kind.EDIT:
            return self.limits.size.default
        return value

    def clean_custom_size(self) -> str:
        value = self.cleaned_data.get("custom_size", "").strip().lower()
        if not value:
            return ""
        value = re.sub(r"\s+", "", value).replace("×", "*").replace("x", "*")
        if parse_size(value) is None:
            raise forms.ValidationError("Write the size as width×height, e.g. 1600×900.")
        return value

    def clean_color_palette(self) -> list[dict[str, str]] | None:
        text = self.cleaned_data.get("color_palette", "")
        if not text.strip():
            return None
        if self.makes_set:
            raise forms.ValidationError(PALETTE_WITH_SET)
        return parse_palette(text)

    def parameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        parameters: dict[str, Any] = {"n": data["n"]} if "n" in self.fields else {}
        if self.makes_piece:
            # One piece a request, holding at most max_images pictures.
            parameters |= {"enable_interleave": True, "max_images": data["max_images"], "n": 1}
        size = data.get("custom_size") or data.get("size")
        if size:
            parameters["size"] = size
        if self.makes_set:
            parameters["enable_sequential"] = True
        for name in ("seed", "prompt_extend", "thinking_mode", "watermark", "color_palette"):
            if name in self.fields and data.get(name) is not None:
                parameters[name] = data[name]
        return parameters

    def add_problems(self, problems: list[Problem]) -> list[tuple[int, str]]:
        """Show the provider's limits next to the field that broke them.

        Problems about one reference image (images[2], bbox_list[2]) are returned as the
        image's position in the request and the message, for the view to show on that
        image.
        """
        on_images = []
        for problem in problems:
            position = _image_position(problem.field)
            if position is not None:
                on_images.append((position, problem.message))
                continue
            name = problem.field.split("[")[0]
            if name == "size" and self.cleaned_data.get("custom_size"):
                name = "custom_size"
            self.add_error(name if name in self.fields else None, problem.message)
        return on_images


def _image_position(field: str) -> int | None:
    """The position of the reference image a provider problem's field names
    ("images[2]", "bbox_list[2]"), or None when it names no one image."""
    name, bracket, rest = field.partition("[")
    if name not in ("images", "bbox_list") or not bracket:
        return None
    return int(rest.rstrip("]"))


def _negative_prompt_field(spec: ModelSpec) -> PromptField:
    limit = spec.negative_prompt_max_chars or 500
    return PromptField(
        required=False,
        max_length=limit,
        label="Avoid",
        widget=forms.Textarea(attrs={"rows": 2, "data-counted": ""}),
        help_text=f"What the image should not show. Up to {limit:,} characters.",
    )


def _option_fields(
    spec: ModelSpec, kind: Kind, team: Team | None, *, makes_set: bool, piece: bool
) -> dict[str, forms.Field]:
    """The model's own options, in the order the form shows them."""
    fields: dict[str, forms.Field] = {}
    if spec.supports(Option.SEED):
        fields["seed"] = forms.IntegerField(
            required=False,
            min_value=0,
            max_value=SEED_MAX,
            help_text="Leave empty for a new picture each time.",
        )
    # The provider rewrites prompts for edits only, not for a piece of text and images.
    if spec.supports(Option.PROMPT_EXTEND) and not piece:
        fields["prompt_extend"] = forms.BooleanField(
            required=False,
            initial=spec.prompt_extend_default,
            label="Improve my prompt",
            help_text="Lets the model rewrite a short prompt; adds a few seconds.",
        )
    # Thinking applies to one image from a prompt alone: not to an edit, nor to a set.
    if spec.supports(Option.THINKING_MODE) and kind == Kind.TEXT_TO_IMAGE and not makes_set:
        fields["thinking_mode"] = forms.BooleanField(
            required=False,
            initial=spec.thinking_mode_default,
            label="Think first",
            help_text="The model plans the picture before drawing it.",
        )
    if spec.supports(Option.COLOR_PALETTE):
        fields["color_palette"] = palette_field(spec, team)
    if spec.supports(Option.WATERMARK):
        fields["watermark"] = forms.BooleanField(
            required=False, initial=False, label="Add the provider's watermark"
        )
    return fields

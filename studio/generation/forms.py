"""The generation forms: only the fields the chosen model takes, with its limits.

One form serves both kinds of job. Text to image and editing differ in the models offered,
the sizes (an edit's output takes the shape of the last input image) and a few options
(thinking mode is for text to image only); the reference images of an edit are handled by
the view, because they arrive one by one before the form is submitted.
"""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.urls import reverse

from studio.accounts.models import Team
from studio.dashscope.catalog import SEED_MAX, Kind, ModelSpec, Option, TextUnit, models_for
from studio.dashscope.tokens import prompt_length
from studio.dashscope.validation import Problem, parse_size, prompt_too_long
from studio.generation.parsers import parse_palette
from studio.generation.sizes import (
    LIKE_LAST_IMAGE,
    custom_size_help,
    default_size,
    size_choices,
    size_rule_attrs,
)


def offered_models(team: Team | None, kind: Kind) -> tuple[ModelSpec, ...]:
    """The catalog's models for this kind of job that the team may use."""
    return tuple(spec for spec in models_for(kind) if team is None or team.allows(spec.name))


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
        self._describe_prompt()
        # In this order on the page: what to avoid, the size, how many, then the options.
        if spec.supports(Option.NEGATIVE_PROMPT):
            self.fields["negative_prompt"] = _negative_prompt_field(spec)
        self._add_size_fields()
        self.fields["n"] = forms.TypedChoiceField(
            choices=[(i, str(i)) for i in range(spec.n.min, spec.n.max + 1)],
            coerce=int,
            initial=spec.n.min,
            label="Images",
        )
        self.fields.update(_option_fields(spec, kind))

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
        if self.kind == Kind.EDIT:
            prompt.help_text = (
                "Refer to the reference images as “image 1”, “image 2”… in their order below. "
                + prompt.help_text
            )

    def _add_size_fields(self) -> None:
        spec, kind = self.spec, self.kind
        self.fields["size"] = forms.ChoiceField(
            choices=size_choices(spec, kind), initial=default_size(spec, kind), required=False
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

    def carry_n(self, chosen: object) -> None:
        """Keep the number of images chosen for another model, within what this one makes,
        and say so when it had to change."""
        try:
            wanted = int(str(chosen))
        except ValueError:
            return
        rule = self.spec.n
        n = min(max(wanted, rule.min), rule.max)
        self.initial["n"] = n
        if n != wanted:
            most = f"at most {rule.max}" if wanted > rule.max else f"at least {rule.min}"
            self.n_note = (
                f"{self.spec.label} makes {most} image{'s' * (n != 1)} a request; "
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
            return self.spec.size.default
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
        return parse_palette(text)

    def parameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        parameters: dict[str, Any] = {"n": data["n"]}
        size = data.get("custom_size") or data.get("size")
        if size:
            parameters["size"] = size
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


def _option_fields(spec: ModelSpec, kind: Kind) -> dict[str, forms.Field]:
    """The model's own options, in the order the form shows them."""
    fields: dict[str, forms.Field] = {}
    if spec.supports(Option.SEED):
        fields["seed"] = forms.IntegerField(
            required=False,
            min_value=0,
            max_value=SEED_MAX,
            help_text="Leave empty for a new picture each time.",
        )
    if spec.supports(Option.PROMPT_EXTEND):
        fields["prompt_extend"] = forms.BooleanField(
            required=False,
            initial=spec.prompt_extend_default,
            label="Improve my prompt",
            help_text="Lets the model rewrite a short prompt; adds a few seconds.",
        )
    if spec.supports(Option.THINKING_MODE) and kind == Kind.TEXT_TO_IMAGE:
        fields["thinking_mode"] = forms.BooleanField(
            required=False,
            initial=spec.thinking_mode_default,
            label="Think first",
            help_text="The model plans the picture before drawing it.",
        )
    if spec.supports(Option.COLOR_PALETTE):
        fields["color_palette"] = _palette_field(spec)
    if spec.supports(Option.WATERMARK):
        fields["watermark"] = forms.BooleanField(
            required=False, initial=False, label="Add the provider's watermark"
        )
    return fields


def _palette_field(spec: ModelSpec) -> forms.CharField:
    low, high = spec.color_palette_items
    return forms.CharField(
        required=False,
        label="Colour palette",
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "#1F6FEB 40%\n#F5F1E8 35%\n#222222"}
        ),
        help_text=(
            f"{low} to {high} colours, one per line as #RRGGBB with an optional share; "
            "colours without a share split what is left equally."
        ),
    )

"""The form an owner keeps a brand kit with: each value checked against the kit's model,
as a job of that model would be, so a kit never applies a setting its model refuses."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms

from studio.accounts.models import Team
from studio.dashscope.catalog import MODELS, Kind, ModelSpec, Option, get_model
from studio.dashscope.types import GenerationRequest
from studio.dashscope.validation import check_request, parse_size
from studio.generation.kits import AUDITED_FIELDS
from studio.generation.models import SUBJECT, BrandKit
from studio.generation.palettes import palette_field
from studio.generation.parsers import palette_text, parse_palette

# The model whose palette rules a kit without a model is held to: the first that takes one.
PALETTE_MODEL = next(spec for spec in MODELS if spec.supports(Option.COLOR_PALETTE))


class KitForm(forms.ModelForm):
    model = forms.ChoiceField(required=False, label="Default model")
    size = forms.CharField(
        required=False,
        max_length=16,
        label="Default size",
        help_text="A size the model offers, such as 2K, or width×height such as 1664×928.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. 2K or 1664×928"}),
    )

    class Meta:
        model = BrandKit
        fields = list(AUDITED_FIELDS)  # what the form keeps is what the audit log compares
        labels = {
            "prompt_template": "Prompt",
            "prompt_suffix": "Always ends with",
            "negative_prompt": "Avoid",
            "watermark": "Add the provider's watermark",
        }
        help_texts = {
            "prompt_template": (
                f"Write {SUBJECT} where the designer's own words go, e.g. “A poster of "
                f"{SUBJECT} on a plain background”. Leave empty to keep her prompt as it is."
            ),
            "prompt_suffix": "Added at the end of every prompt, e.g. “, flat colours, no text”.",
        }
        widgets = {
            "prompt_template": forms.Textarea(attrs={"rows": 3}),
            "negative_prompt": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.team = team
        model_field = cast(forms.ChoiceField, self.fields["model"])
        model_field.choices = [("", "Whichever the form has")] + [
            (spec.name, spec.label) for spec in MODELS if team.allows(spec.name)
        ]
        # The palette picker of the form, over the same text; stored as the job stores it.
        self.fields["color_palette"] = palette_field(PALETTE_MODEL, team)
        self.fields["color_palette"].help_text = "For models that take one (Wan 2.7). " + str(
            self.fields["color_palette"].help_text
        )
        if not self.is_bound:
            # As the picker and the form write them, not as stored ("[]", "2048*2048").
            self.initial["color_palette"] = palette_text(self.instance.color_palette)
            self.initial["size"] = self.instance.size.replace("*", "×")

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        taken = BrandKit.objects.filter(team=self.team, name__iexact=name)
        if taken.exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(f"Your team already has a kit named “{name}”.")
        return name

    def clean_prompt_template(self) -> str:
        template = self.cleaned_data["prompt_template"].strip()
        if template and SUBJECT not in template:
            raise forms.ValidationError(
                f"Write {SUBJECT} where the designer's own words go, e.g. “A poster of {SUBJECT}”."
            )
        return template

    def clean_size(self) -> str:
        value = re.sub(r"\s+", "", self.cleaned_data.get("size", "")).upper()
        value = value.replace("×", "*").replace("X", "*")
        if value and not re.fullmatch(r"\dK", value) and parse_size(value) is None:
            raise forms.ValidationError(
                "Write a size such as 2K, or width×height such as 1664×928."
            )
        return value

    def clean_color_palette(self) -> list[dict[str, str]]:
        text = self.cleaned_data.get("color_palette") or ""
        return parse_palette(text) if str(text).strip() else []

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        spec = get_model(data["model"]) if data.get("model") else None
        if data.get("color_palette") and spec and not spec.supports(Option.COLOR_PALETTE):
            self.add_error(
                "color_palette",
                f"{spec.label} takes no colour palette; choose a model that does, such as "
                f"{PALETTE_MODEL.label}, or leave the palette empty.",
            )
        for field, message in _model_problems(spec or PALETTE_MODEL, data, sized=spec is not None):
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return data


def _model_problems(spec: ModelSpec, data: dict[str, Any], *, sized: bool) -> list[tuple[str, str]]:
    """What the model's rules say of the kit's size and palette, as a job of it would hear."""
    parameters: dict[str, Any] = {}
    if sized and data.get("size"):
        parameters["size"] = data["size"]
    if data.get("color_palette") and spec.supports(Option.COLOR_PALETTE):
        parameters["color_palette"] = data["color_palette"]
    if not parameters:
        return []
    request = GenerationRequest.build(model=spec.name, prompt="a kit", parameters=parameters)
    asynchronous = spec.async_endpoint is not None and Kind.TEXT_TO_IMAGE in spec.kinds
    problems = check_request(request, asynchronous=asynchronous)
    return [(p.field, p.message) for p in problems if p.field in ("size", "color_palette")]

"""The text-to-image form: only the fields the chosen model takes, with its limits."""

from __future__ import annotations

from typing import Any

from django import forms

from studio.dashscope.catalog import SEED_MAX, Kind, ModelSpec, Option, models_for
from studio.dashscope.validation import Problem, parse_size

ASPECTS = {
    (1, 1): "1:1",
    (16, 9): "16:9",
    (9, 16): "9:16",
    (4, 3): "4:3",
    (3, 4): "3:4",
    (7, 4): "7:4",
    (4, 7): "4:7",
    (37, 27): "4:3",
    (27, 37): "3:4",
    (3, 2): "3:2",
    (2, 3): "2:3",
}


def _aspect(width: int, height: int) -> str:
    best = min(ASPECTS, key=lambda a: abs(a[0] / a[1] - width / height))
    return ASPECTS[best]


def size_choices(spec: ModelSpec) -> list[tuple[str, str]]:
    """The sizes the form offers for a model: its fixed sizes, tiers or recommended ones."""
    rule = spec.size
    choices = []
    sizes = rule.fixed or rule.recommended
    for tier, side in rule.tiers.items():
        choices.append((tier, f"{tier} ({side}×{side} for text to image)"))
    for width, height in sizes:
        choices.append((f"{width}*{height}", f"{width}×{height} ({_aspect(width, height)})"))
    default = rule.default
    if default not in dict(choices):
        parsed = parse_size(default)
        label = f"{parsed[0]}×{parsed[1]}" if parsed else default
        choices.insert(0, (default, label))
    return choices


def model_choices() -> list[tuple[str, str]]:
    return [(spec.name, spec.label) for spec in models_for(Kind.TEXT_TO_IMAGE)]


class TextToImageForm(forms.Form):
    model = forms.ChoiceField(choices=model_choices)
    prompt = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}))

    def __init__(self, spec: ModelSpec, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spec = spec
        self.fields["model"].initial = spec.name
        self.fields["prompt"].max_length = spec.prompt_max_chars
        self.fields["prompt"].widget.attrs["maxlength"] = spec.prompt_max_chars
        self.fields["prompt"].help_text = f"Up to {spec.prompt_max_chars:,} characters."
        if spec.supports(Option.NEGATIVE_PROMPT):
            limit = spec.negative_prompt_max_chars or 500
            self.fields["negative_prompt"] = forms.CharField(
                required=False,
                max_length=limit,
                label="Avoid",
                widget=forms.Textarea(attrs={"rows": 2, "maxlength": limit}),
                help_text="What the image should not show.",
            )
        self.fields["size"] = forms.ChoiceField(
            choices=size_choices(spec), initial=spec.size.default
        )
        if not spec.size.fixed:
            self.fields["custom_size"] = forms.CharField(
                required=False,
                label="Or your own size",
                max_length=11,
                widget=forms.TextInput(attrs={"placeholder": "width×height, e.g. 1600×900"}),
                help_text=_custom_help(spec),
            )
        n = spec.n
        self.fields["n"] = forms.TypedChoiceField(
            choices=[(i, str(i)) for i in range(n.min, n.max + 1)],
            coerce=int,
            initial=n.min,
            label="Images",
        )
        if spec.supports(Option.SEED):
            self.fields["seed"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=SEED_MAX,
                help_text="Leave empty for a new picture each time.",
            )
        if spec.supports(Option.PROMPT_EXTEND):
            self.fields["prompt_extend"] = forms.BooleanField(
                required=False,
                initial=spec.prompt_extend_default,
                label="Improve my prompt",
                help_text="Lets the model rewrite a short prompt; adds a few seconds.",
            )
        if spec.supports(Option.THINKING_MODE):
            self.fields["thinking_mode"] = forms.BooleanField(
                required=False,
                initial=spec.thinking_mode_default,
                label="Think first",
                help_text="The model plans the picture before drawing it.",
            )
        if spec.supports(Option.WATERMARK):
            self.fields["watermark"] = forms.BooleanField(
                required=False, initial=False, label="Add the provider's watermark"
            )

    def clean_custom_size(self) -> str:
        value = self.cleaned_data.get("custom_size", "").strip().lower()
        if not value:
            return ""
        value = value.replace("×", "*").replace("x", "*").replace(" ", "")
        if parse_size(value) is None:
            raise forms.ValidationError("Write the size as width×height, e.g. 1600×900.")
        return value

    def parameters(self) -> dict[str, Any]:
        data = self.cleaned_data
        parameters: dict[str, Any] = {
            "size": data.get("custom_size") or data["size"],
            "n": data["n"],
        }
        for name in ("seed", "prompt_extend", "thinking_mode", "watermark"):
            if name in self.fields and data.get(name) is not None:
                parameters[name] = data[name]
        return parameters

    def add_problems(self, problems: list[Problem]) -> None:
        """Show the provider's limits next to the field that broke them."""
        for problem in problems:
            name = problem.field.split("[")[0]
            if name == "size" and self.cleaned_data.get("custom_size"):
                name = "custom_size"
            self.add_error(name if name in self.fields else None, problem.message)


def _custom_help(spec: ModelSpec) -> str:
    rule = spec.size
    low = rule.min_pixels**0.5
    high = rule.max_pixels_for(has_images=False) ** 0.5
    text = f"Between {low:.0f}×{low:.0f} and {high:.0f}×{high:.0f} pixels in total"
    if rule.aspect:
        text += f", aspect ratio from {rule.aspect}"
    return text + "."

"""The generation forms: only the fields the chosen model takes, with its limits.

One form serves both kinds of job. Text to image and editing differ in the models offered,
the sizes (an edit's output takes the shape of the last input image) and a few options
(thinking mode is for text to image only); the reference images of an edit are handled by
the view, because they arrive one by one before the form is submitted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.urls import reverse

from studio.accounts.models import Membership, Team
from studio.dashscope.catalog import SEED_MAX, Kind, ModelSpec, Option, TextUnit, models_for
from studio.dashscope.tokens import prompt_length
from studio.dashscope.types import Box
from studio.dashscope.validation import Problem, parse_size, pixels_text, prompt_too_long

if TYPE_CHECKING:
    from studio.generation.models import Job
    from studio.generation.services import InputUpload

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
    (5, 4): "5:4",
    (4, 5): "4:5",
}

# Left empty, the size is not sent: an edit then takes the provider's default area in the
# shape of the last input image.
LIKE_LAST_IMAGE = ""


def _aspect(width: int, height: int) -> str:
    best = min(ASPECTS, key=lambda a: abs(a[0] / a[1] - width / height))
    return ASPECTS[best]


def size_choices(spec: ModelSpec, kind: Kind = Kind.TEXT_TO_IMAGE) -> list[tuple[str, str]]:
    """The sizes the form offers for a model: its fixed sizes, tiers or recommended ones."""
    rule = spec.size
    choices = []
    editing = kind == Kind.EDIT
    for tier, side in rule.tiers.items():
        if editing and tier in rule.text_to_image_only_tiers:
            continue
        shape = "shaped like the last image" if editing else f"{side}×{side} for text to image"
        choices.append((tier, f"{tier} ({shape})"))
    if editing and not rule.tiers:
        default = parse_size(rule.default)
        # Short enough for a phone's width: a select is as wide as its longest choice.
        area = f", ~{default[0]}×{default[1]}" if default else ""
        choices.append((LIKE_LAST_IMAGE, f"Like the last image{area}"))
    for width, height in rule.fixed or _presets(spec, editing=editing):
        choices.append((f"{width}*{height}", f"{width}×{height} ({_aspect(width, height)})"))
    default = rule.default
    if not editing and default not in dict(choices):
        parsed = parse_size(default)
        label = f"{parsed[0]}×{parsed[1]}" if parsed else default
        choices.insert(0, (default, label))
    return choices


PRESET_ASPECTS = ((1, 1), (16, 9), (9, 16), (4, 3), (3, 4), (3, 2), (2, 3))


def _fits(spec: ModelSpec, width: int, height: int, *, editing: bool) -> bool:
    rule = spec.size
    pixels = width * height
    if not rule.min_pixels <= pixels <= rule.max_pixels_for(has_images=editing):
        return False
    if rule.max_side and max(width, height) > rule.max_side:
        return False
    if rule.min_side and min(width, height) < rule.min_side:
        return False
    return rule.aspect is None or rule.aspect.allows(width, height)


def _presets(spec: ModelSpec, *, editing: bool) -> list[tuple[int, int]]:
    """Sizes to offer: the documented recommendations the studio sends (some documents
    recommend sizes below the stricter of two published minimums), and, where few remain
    and the model has no tiers, the largest size of each common aspect that fits."""
    rule = spec.size
    presets = [s for s in rule.recommended if _fits(spec, *s, editing=editing)]
    if rule.tiers or len(presets) >= 5:
        return presets
    area = rule.max_pixels_for(has_images=editing)
    for a, b in PRESET_ASPECTS:
        if any(_aspect(*s) == _aspect(a, b) for s in presets):
            continue
        # Computed landscape-first, so a portrait preset is its landscape twin turned.
        long_, short = max(a, b), min(a, b)
        width = int((area * long_ / short) ** 0.5) // 16 * 16
        height = int(width * short / long_) // 16 * 16
        size = (width, height) if a >= b else (height, width)
        if _fits(spec, *size, editing=editing):
            presets.append(size)
    return presets


def default_size(spec: ModelSpec, kind: Kind) -> str:
    if kind == Kind.EDIT and not spec.size.tiers:
        return LIKE_LAST_IMAGE
    return spec.size.default


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
        return super().to_python(value).replace("\r\n", "\n")

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
        self.fields["model"].choices = model_choices(kind, team)
        self.fields["model"].initial = spec.name
        prompt = self.fields["prompt"]
        prompt.widget.attrs.update(
            {"data-counted": "", "data-max": spec.prompt_max, "data-unit": spec.prompt_unit}
        )
        if spec.prompt_unit is TextUnit.TOKENS:
            prompt.widget.attrs["data-count-url"] = reverse("count-prompt")
        prompt.help_text = f"Up to {spec.prompt_max:,} {spec.prompt_unit}."
        if spec.prompt_unit is TextUnit.TOKENS:
            prompt.help_text += " A token is a word or part of one, as the model reads text."
        if kind == Kind.EDIT:
            prompt.help_text = (
                "Refer to the reference images as “image 1”, “image 2”… in their order below. "
                + prompt.help_text
            )
        if spec.supports(Option.NEGATIVE_PROMPT):
            limit = spec.negative_prompt_max_chars or 500
            self.fields["negative_prompt"] = PromptField(
                required=False,
                max_length=limit,
                label="Avoid",
                widget=forms.Textarea(attrs={"rows": 2, "data-counted": ""}),
                help_text=f"What the image should not show. Up to {limit:,} characters.",
            )
        self.fields["size"] = forms.ChoiceField(
            choices=size_choices(spec, kind), initial=default_size(spec, kind), required=False
        )
        if not spec.size.fixed:
            self.fields["custom_size"] = forms.CharField(
                required=False,
                label="Or your own size",
                max_length=11,
                widget=forms.TextInput(
                    attrs={"placeholder": "width×height, e.g. 1600×900", **_size_rule_attrs(spec)}
                ),
                help_text=_custom_help(spec, kind),
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
        if spec.supports(Option.THINKING_MODE) and kind == Kind.TEXT_TO_IMAGE:
            self.fields["thinking_mode"] = forms.BooleanField(
                required=False,
                initial=spec.thinking_mode_default,
                label="Think first",
                help_text="The model plans the picture before drawing it.",
            )
        if spec.supports(Option.COLOR_PALETTE):
            low, high = spec.color_palette_items
            self.fields["color_palette"] = forms.CharField(
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
        if spec.supports(Option.WATERMARK):
            self.fields["watermark"] = forms.BooleanField(
                required=False, initial=False, label="Add the provider's watermark"
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

    def submit(self, membership: Membership, inputs: Sequence[InputUpload] = ()) -> Job:
        """Create the job this valid form describes; JobRefused says why it cannot be."""
        from studio.generation.services import create_job

        return create_job(
            membership=membership,
            model=self.spec.name,
            prompt=self.cleaned_data["prompt"],
            negative_prompt=self.cleaned_data.get("negative_prompt", ""),
            parameters=self.parameters(),
            inputs=inputs,
        )

    def add_problems(self, problems: list[Problem]) -> list[Problem]:
        """Show the provider's limits next to the field that broke them.

        Problems about one reference image (images[2], bbox_list[2]) are returned for the
        view to show on that image.
        """
        left = []
        for problem in problems:
            name = problem.field.split("[")[0]
            if name in ("images", "bbox_list") and "[" in problem.field:
                left.append(problem)
                continue
            if name == "size" and self.cleaned_data.get("custom_size"):
                name = "custom_size"
            self.add_error(name if name in self.fields else None, problem.message)
        return left


_SWATCH_RE = re.compile(r"^(#[0-9A-Fa-f]{6})(?:\s+([0-9]{1,3}(?:\.[0-9]{1,2})?)\s*%?)?$")


def parse_palette(text: str) -> list[dict[str, str]]:
    """'#RRGGBB [share%]' lines as the provider's swatches, shares adding to 100.00%."""
    lines = [line.strip() for line in re.split(r"[\n,;]+", text) if line.strip()]
    swatches: list[tuple[str, Decimal | None]] = []
    for number, line in enumerate(lines, start=1):
        match = _SWATCH_RE.match(line)
        if not match:
            raise forms.ValidationError(
                f"Colour {number} (“{line[:20]}”) must be written #RRGGBB, optionally "
                "followed by its share, e.g. #1F6FEB 40%."
            )
        share = Decimal(match[2]) if match[2] else None
        swatches.append((match[1].upper(), share))
    given = sum((s for _, s in swatches if s is not None), Decimal(0))
    missing = [i for i, (_, s) in enumerate(swatches) if s is None]
    if missing:
        left = Decimal(100) - given
        if left <= 0:
            raise forms.ValidationError(
                f"The shares given already add up to {given}%; leave none for the others."
            )
        each = (left / len(missing)).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        for i in missing:
            swatches[i] = (swatches[i][0], each)
        # The last colour without a share takes the rounding remainder: exactly 100.00%.
        last = missing[-1]
        swatches[last] = (swatches[last][0], each + left - each * len(missing))
    return [{"hex": hex_, "ratio": f"{share:.2f}%"} for hex_, share in swatches]


def palette_text(palette: list[dict[str, str]] | None) -> str:
    return "\n".join(f"{c['hex']} {c['ratio']}" for c in palette or [])


_BOX_RE = re.compile(r"^\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*$")


def parse_boxes(text: str) -> list[Box]:
    """'x1,y1,x2,y2; x1,y1,x2,y2' as boxes; ValueError with a designer's message."""
    boxes: list[Box] = []
    for number, part in enumerate((p for p in text.split(";") if p.strip()), start=1):
        match = _BOX_RE.match(part)
        if not match:
            raise ValueError(
                f"Region {number} must be four whole numbers x1,y1,x2,y2 (left, top, right, "
                "bottom, in pixels)."
            )
        x1, y1, x2, y2 = (int(v) for v in match.groups())
        boxes.append((x1, y1, x2, y2))
    return boxes


def boxes_text(boxes: list[Box] | list[list[int]]) -> str:
    return "; ".join(",".join(str(v) for v in box) for box in boxes)


def _size_rule_attrs(spec: ModelSpec) -> dict[str, Any]:
    """The custom-size rule as data attributes, for the check made as the size is typed."""
    rule = spec.size
    high, high_edit = rule.max_pixels_for(has_images=False), rule.max_pixels
    attrs: dict[str, Any] = {
        "data-min-pixels": rule.min_pixels,
        "data-max-pixels": high,
        "data-max-pixels-edit": high_edit,
        # The bounds in the server's words, so the live check and a refusal agree.
        "data-model-label": spec.label,
        "data-pixels-range": f"between {pixels_text(rule.min_pixels)} and {pixels_text(high)}",
        "data-pixels-range-edit": (
            f"between {pixels_text(rule.min_pixels)} and {pixels_text(high_edit)}"
        ),
    }
    if rule.min_side:
        attrs["data-min-side"] = rule.min_side
    if rule.max_side:
        attrs["data-max-side"] = rule.max_side
    if rule.aspect:
        attrs["data-aspect-low"] = rule.aspect.low
        attrs["data-aspect-high"] = rule.aspect.high
    return attrs


def _custom_help(spec: ModelSpec, kind: Kind) -> str:
    rule = spec.size
    low = rule.min_pixels**0.5
    high = rule.max_pixels_for(has_images=kind == Kind.EDIT) ** 0.5
    text = f"Between {low:.0f}×{low:.0f} and {high:.0f}×{high:.0f} pixels in total"
    if rule.max_side:
        text += f", each side {rule.min_side or 1:,} to {rule.max_side:,}"
    if rule.aspect:
        text += f", aspect ratio from {rule.aspect}"
    return text + "."

"""The sizes the generation form offers for a model, and the rule a custom size must keep.

A model's fixed sizes, tiers or recommended sizes become the form's choices (with the
largest size of each common aspect where the documents recommend few); the custom-size
rule is written out as help text and as data attributes for the check made while typing.
"""

from __future__ import annotations

from typing import Any

from studio.dashscope.catalog import Kind, ModelSpec
from studio.dashscope.validation import parse_size, pixels_text

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
        choices.append((LIKE_LAST_IMAGE, _like_the_image(spec)))
    for width, height in rule.fixed or _presets(spec, editing=editing):
        choices.append((f"{width}*{height}", f"{width}×{height} ({_aspect(width, height)})"))
    default = rule.default
    if not editing and default not in dict(choices):
        parsed = parse_size(default)
        label = f"{parsed[0]}×{parsed[1]}" if parsed else default
        choices.insert(0, (default, label))
    return choices


def _like_the_image(spec: ModelSpec) -> str:
    """The choice that leaves the size to the provider: the last image's shape, or (where
    the image is optional, as in a piece of text and images) the default without one."""
    shape = parse_size(spec.size.default)
    side = f"{shape[0]}×{shape[1]}" if shape else ""
    # Short enough for a phone's width: a select is as wide as its longest choice.
    if spec.images is not None and spec.images.count[0] == 0 and side:
        return f"Like the image, or {side}"
    return f"Like the last image, ~{side}" if side else "Like the last image"


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


def size_rule_attrs(spec: ModelSpec) -> dict[str, Any]:
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


def custom_size_help(spec: ModelSpec, kind: Kind) -> str:
    rule = spec.size
    low = rule.min_pixels**0.5
    high = rule.max_pixels_for(has_images=kind == Kind.EDIT) ** 0.5
    text = f"Between {low:.0f}×{low:.0f} and {high:.0f}×{high:.0f} pixels in total"
    if rule.max_side:
        text += f", each side {rule.min_side or 1:,} to {rule.max_side:,}"
    if rule.aspect:
        text += f", aspect ratio from {rule.aspect}"
    return text + "."

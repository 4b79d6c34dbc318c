"""Boxes and colour palettes as a designer writes them, read into what the provider takes.

Shared by the generation forms, views and staging and by the gallery, so none of them
reaches into another for a parser. Each is written back as text to fill a form again, and
boxes are moved onto the same picture at another size.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from django import forms

from studio.dashscope.types import Box

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


def scale_boxes(boxes: list[Box], source: tuple[int, int], target: tuple[int, int]) -> list[Box]:
    """Boxes drawn on an image of `source` size, moved onto the same picture at `target`."""
    if source == target:
        return list(boxes)
    sx, sy = target[0] / source[0], target[1] / source[1]
    scaled = []
    for x1, y1, x2, y2 in boxes:
        box = (
            max(0, round(x1 * sx)),
            max(0, round(y1 * sy)),
            min(target[0], round(x2 * sx)),
            min(target[1], round(y2 * sy)),
        )
        scaled.append(box)
    return scaled

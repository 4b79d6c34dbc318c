"""`parameters.size`: what a model refuses ("W*H" or a tier), and what size it makes."""

from __future__ import annotations

import math
import re

from studio.dashscope.emulator.limits import ModelRules, SizeRule
from studio.dashscope.emulator.request import Generation

_SIZE_RE = re.compile(r"^([1-9][0-9]{0,4})\*([1-9][0-9]{0,4})$")


def parse_size(value: str) -> tuple[int, int] | None:
    match = _SIZE_RE.match(value)
    return (int(match[1]), int(match[2])) if match else None


def _square(pixels: int) -> str:
    side = math.isqrt(pixels)
    return f"{side}×{side}" if side * side == pixels else f"{pixels:,} pixels"


def check_size(model: ModelRules, request: Generation) -> list[str]:
    rule, value = model.size, request.size
    if value is None:
        return []
    if rule.fixed:
        if parse_size(value) not in rule.fixed:
            allowed = ", ".join(f"{w}*{h}" for w, h in rule.fixed)
            return [f"{model.name} makes only these sizes: {allowed}."]
        return []
    if value in rule.tiers:
        if value in rule.text_to_image_only_tiers and (request.images or request.sequential):
            return [
                f"{value} is only for text-to-image without input images or a sequence; "
                "use 2K or less."
            ]
        return []
    parsed = parse_size(value)
    if parsed is None:
        tiers = " or ".join(rule.tiers)
        custom = "W*H (for example 1280*1280)"
        return [f"{value!r} is not a size; use {f'{tiers}, or {custom}' if tiers else custom}."]
    return _custom_size_problems(model, rule, parsed, request)


def _custom_size_problems(
    model: ModelRules, rule: SizeRule, size: tuple[int, int], request: Generation
) -> list[str]:
    width, height = size
    pixels, shape = width * height, f"{width}×{height}"
    # A sequence is limited as editing is: 2K at most ([D-W27] via protocol §6).
    high = rule.ceiling(has_images=bool(request.images) or request.sequential)
    problems = []
    if not rule.min_pixels <= pixels <= high:
        problems.append(
            f"{shape} is {pixels:,} pixels; {model.name} makes between "
            f"{_square(rule.min_pixels)} and {_square(high)} in total."
        )
    if rule.min_side and min(size) < rule.min_side:
        problems.append(f"{shape}: each side must be at least {rule.min_side} pixels.")
    if rule.max_side and max(size) > rule.max_side:
        problems.append(f"{shape}: each side must be at most {rule.max_side} pixels.")
    if rule.aspect is not None and not rule.aspect.allows(width, height):
        problems.append(f"{shape}: the aspect ratio must be between {rule.aspect}.")
    return problems


# -- what comes out -------------------------------------------------------------------------


def output_size(model: ModelRules, request: Generation) -> tuple[int, int]:
    """The width and height the service makes for a request it accepted."""
    rule = model.size
    value = request.size or rule.default
    last = request.images[-1].facts if request.images else None
    follow = rule.follows_last_image and last is not None
    if value in rule.tiers:
        area = rule.tiers[value] ** 2
    else:
        parsed = parse_size(value)
        if parsed is None:
            raise ValueError(f"Not a size: {value!r}")
        if request.size is not None or not follow:
            return _snap(parsed, rule.snap)
        area = parsed[0] * parsed[1]  # a default W*H gives the area; the image its shape
    ratio = 1.0
    if follow and last is not None:
        ratio = last.width / last.height
        if rule.aspect is not None:
            ratio = rule.aspect.clamp(ratio)
    width, height = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
    return _snap((width, height), rule.snap)


def _snap(size: tuple[int, int], step: int) -> tuple[int, int]:
    width, height = size
    if step == 1:
        return width, height
    return max(step, round(width / step) * step), max(step, round(height / step) * step)


def interleave_size(rule: SizeRule, request: Generation) -> tuple[int, int]:
    """The size of the images of the mixed text-and-image mode ([D-W26] via protocol §6):
    the size asked for, or the input image's brought within the pixel range, or the
    default without one; then snapped to the step, never outside the range (strict on
    output, as a real answer would be)."""
    last = request.images[-1].facts if request.images else None
    if request.size is not None or last is None:
        parsed = parse_size(request.size or rule.default)
        if parsed is None:
            raise ValueError(f"Not a size: {request.size!r}")
        width, height = parsed
    else:
        area = min(max(last.pixels, rule.min_pixels), rule.max_pixels)
        ratio = last.width / last.height
        width, height = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
    return _snap_within((width, height), rule)


def _snap_within(size: tuple[int, int], rule: SizeRule) -> tuple[int, int]:
    step = rule.snap
    width, height = _snap(size, step)
    if width * height > rule.max_pixels:
        width, height = (max(step, side // step * step) for side in size)
    elif width * height < rule.min_pixels:
        width, height = (-(-side // step) * step for side in size)
    return width, height

"""What the service refuses with 400 InvalidParameter, and why, in the refusal's own words.

`check()` gathers every reason a request breaks its model's rules: unsupported options,
prompt lengths (in characters, or in Qwen tokens for the Qwen models), input images, size
(`sizes.py`), n, seed, `bbox_list` regions and `color_palette`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace
from typing import Protocol

from studio.dashscope.emulator.limits import (
    MB,
    MIB,
    SEED_MAX,
    ImageRule,
    InterleaveRule,
    ModelRules,
    Option,
    Unit,
)
from studio.dashscope.emulator.request import Generation, ImageFacts
from studio.dashscope.emulator.sizes import check_size

# -- counting text --------------------------------------------------------------------------


class _Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


@functools.cache
def qwen_tokenizer() -> _Tokenizer:
    """The Qwen tokenizer the official SDK ships (its qwen.tiktoken vocabulary), loaded once:
    the Qwen text-to-image models limit prompts in its tokens ([D-QI])."""
    import dashscope

    return dashscope.get_tokenizer("qwen-image")


def text_length(text: str, unit: Unit) -> int:
    if unit is Unit.TOKENS:
        return len(qwen_tokenizer().encode(text))
    return len(text)


def _units(count: int, unit: Unit) -> str:
    return f"{count:,} {unit.value.removesuffix('s') if count == 1 else unit.value}"


# -- the checks: what the service refuses with 400 InvalidParameter ------------------------

_HEX_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_RATIO_RE = re.compile(r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)%$")


def check(model: ModelRules, request: Generation, *, asynchronous: bool) -> list[str]:
    """Every reason the service would refuse the request; empty when it takes it."""
    mode = interleave_mode(model, request)
    if mode is not None:
        shaped = _check_interleave(model, mode, request, asynchronous=asynchronous)
    else:
        shaped = [
            *_check_images(model, request),
            *check_size(model, request),
            *_check_n(model, request, asynchronous=asynchronous),
        ]
    return [
        *_check_unsupported(model, request),
        *_check_prompt(model, request),
        *shaped,
        *_check_seed(model, request),
        *_check_boxes(model, request),
        *_check_palette(model, request),
    ]


def _check_unsupported(model: ModelRules, request: Generation) -> list[str]:
    if not model.refuses_unsupported:
        return []
    problems = [f"{model.name} does not support {name}." for name in request.unsupported]
    if request.sequential and request.bbox_list is not None:
        problems.append("bbox_list cannot be combined with enable_sequential.")  # protocol §6
    if request.sequential and request.color_palette is not None:
        problems.append("color_palette cannot be combined with enable_sequential.")  # [D-W27]
    return problems


def _check_prompt(model: ModelRules, request: Generation) -> list[str]:
    problems = []
    if not request.prompt.strip():
        problems.append("The prompt is required and cannot be empty.")
    else:
        length = text_length(request.prompt, model.prompt.unit)
        if length > model.prompt.max:
            problems.append(
                f"The prompt is {_units(length, model.prompt.unit)}; {model.name} takes at "
                f"most {_units(model.prompt.max, model.prompt.unit)}."
            )
    negative, limit = request.negative_prompt, model.negative_prompt
    if negative and limit is not None:
        length = text_length(negative, limit.unit)
        if length > limit.max:
            problems.append(
                f"The negative prompt is {_units(length, limit.unit)}; {model.name} takes at "
                f"most {_units(limit.max, limit.unit)}."
            )
    return problems


def _megabytes(size: int) -> str:
    return f"{size // MIB} MB" if size % MIB == 0 else f"{size / MB:g} MB"


def _check_images(model: ModelRules, request: Generation) -> list[str]:
    rule, count = model.images, len(request.images)
    if rule is None:
        return [f"{model.name} does not take input images."] if count else []
    low, high = rule.count
    if count < low:
        need = "an input image" if low == 1 else f"at least {low} input images"
        return [f"{model.name} needs {need}."]
    if count > high:
        return [f"{model.name} takes at most {high} input images; got {count}."]
    return [
        problem
        for position, image in enumerate(request.images, start=1)
        for problem in _image_problems(model.name, rule, position, image.facts)
    ]


def _image_problems(name: str, rule: ImageRule, position: int, facts: ImageFacts) -> list[str]:
    label, shape = f"Image {position}", f"{facts.width}×{facts.height}"
    problems = []
    if facts.format not in rule.formats:
        problems.append(f"{label} is {facts.format}; use JPEG, PNG, BMP or WEBP.")
    if facts.has_alpha and not rule.alpha:
        problems.append(f"{label} has transparency (an alpha channel), which is not accepted.")
    if min(facts.width, facts.height) < rule.min_side:
        problems.append(f"{label} is {shape}; each side must be at least {rule.min_side} pixels.")
    if max(facts.width, facts.height) > rule.max_side:
        problems.append(f"{label} is {shape}; each side must be at most {rule.max_side} pixels.")
    if rule.aspect is not None and not rule.aspect.allows(facts.width, facts.height):
        problems.append(f"{label} is {shape}; its aspect ratio must be between {rule.aspect}.")
    if facts.bytes > rule.max_bytes:
        problems.append(
            f"{label} is {facts.bytes:,} bytes; {name} takes files up to "
            f"{_megabytes(rule.max_bytes)} ({rule.max_bytes:,} bytes)."
        )
    return problems


def _check_n(model: ModelRules, request: Generation, *, asynchronous: bool) -> list[str]:
    if request.n is None:
        return []
    allowed = model.n_range(asynchronous=asynchronous, sequential=request.sequential)
    if request.n in allowed:
        return []
    if allowed.low == allowed.high:
        return [f"{model.name} makes exactly {allowed.low} image per request; n was {request.n}."]
    return [f"{model.name} makes {allowed.low} to {allowed.high} images per request."]


def interleave_mode(model: ModelRules, request: Generation) -> InterleaveRule | None:
    """The model's mixed text-and-image rules, when the request turns that mode on."""
    return model.interleave if request.interleaved else None


def _check_interleave(
    model: ModelRules, mode: InterleaveRule, request: Generation, *, asynchronous: bool
) -> list[str]:
    """The mixed mode's own limits: images, size, n and max_images ([D-W26] via §6)."""
    problems = []
    if asynchronous:
        # "interleave only via SSE" on the sync endpoint, and a task has no stream: the
        # documents show no task result of this mode, so the emulator does not make one up.
        problems.append("enable_interleave streams from the sync endpoint only.")
    if request.stream is False:
        problems.append("enable_interleave needs parameters.stream true.")  # [D-W26]
    low, high = mode.images
    if not low <= len(request.images) <= high:
        problems.append(
            f"{model.name} takes {low} to {high} input images with enable_interleave; "
            f"got {len(request.images)}."
        )
    elif model.images is not None:
        for position, image in enumerate(request.images, start=1):
            problems += _image_problems(model.name, model.images, position, image.facts)
    problems += check_size(replace(model, size=mode.size), request)
    if request.n is not None and request.n not in mode.n:
        problems.append(f"n must be {mode.n.low} with enable_interleave; n was {request.n}.")
    if request.max_images is not None and request.max_images not in mode.max_images:
        span = mode.max_images
        problems.append(f"max_images must be from {span.low} to {span.high}.")
    return problems


def images_requested(model: ModelRules, request: Generation, *, asynchronous: bool) -> int:
    """How many images a request makes: its n, or the model's default."""
    if request.n is not None:
        return request.n
    return model.n_range(asynchronous=asynchronous, sequential=request.sequential).default


def _check_seed(model: ModelRules, request: Generation) -> list[str]:
    seed = request.seed
    if seed is None or not model.takes(Option.SEED):
        return []
    if not 0 <= seed <= SEED_MAX:
        return [f"The seed must be a whole number from 0 to {SEED_MAX:,}."]
    return []


def _check_boxes(model: ModelRules, request: Generation) -> list[str]:
    boxes = request.bbox_list
    if boxes is None or not model.takes(Option.BBOX_LIST):
        return []
    if len(boxes) != len(request.images):  # S2:822
        return [
            f"bbox_list gives regions for {len(boxes)} images but there are "
            f"{len(request.images)} input images; give one list per image."
        ]
    problems = []
    for position, (image, image_boxes) in enumerate(zip(request.images, boxes, strict=True), 1):
        if len(image_boxes) > model.max_boxes_per_image:  # S2:826
            problems.append(
                f"Image {position} has {len(image_boxes)} regions; at most "
                f"{model.max_boxes_per_image} per image."
            )
            continue
        for number, box in enumerate(image_boxes, start=1):
            message = _box_problem(box, image.facts)
            if message:
                problems.append(f"Image {position}, region {number}: {message}")
    return problems


def _box_problem(box: object, facts: ImageFacts) -> str | None:
    # S2:825: [x1, y1, x2, y2], top-left and bottom-right, absolute pixels of the image.
    if (
        not isinstance(box, (list, tuple))
        or len(box) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
    ):
        return "a region is four whole numbers [x1, y1, x2, y2]."
    x1, y1, x2, y2 = box
    if x1 < 0 or y1 < 0:
        return "coordinates cannot be negative."
    if x2 <= x1 or y2 <= y1:
        return "the second corner must be below and to the right of the first."
    if x2 > facts.width or y2 > facts.height:
        return f"it reaches outside the {facts.width}×{facts.height} image."
    return None


def _check_palette(model: ModelRules, request: Generation) -> list[str]:
    palette = request.color_palette
    if palette is None or not model.takes(Option.COLOR_PALETTE):
        return []
    low, high = model.palette_colours
    if not low <= len(palette) <= high:
        return [f"color_palette has {len(palette)} colours; it takes {low} to {high}."]
    total = 0.0
    for number, swatch in enumerate(palette, start=1):
        if not _HEX_RE.match(swatch.hex):
            return [f"color_palette colour {number}: hex must be written #RRGGBB."]
        if not _RATIO_RE.match(swatch.ratio):
            return [f"color_palette colour {number}: ratio must be written like 25.00%."]
        total += float(swatch.ratio.rstrip("%"))
    if abs(total - 100.0) > 0.005:
        return [f"color_palette ratios add up to {total:.2f}%, not 100.00%."]
    return []

"""Every limit the provider enforces, checked against the catalog before anything is sent.

The client runs these checks before sending. The emulator keeps rules of its own, written
from the seed documents (emulator/rules.py), so a wrong belief here is refused there.
Messages are written for a designer: they name the limit and the value that broke it.
"""

from __future__ import annotations

import math
import re

from studio.dashscope.catalog import (
    MB,
    SEED_MAX,
    ImageInputRule,
    ModelSpec,
    Option,
    UnknownModel,
    get_model,
    megabytes,
)
from studio.dashscope.images import ImageInfo
from studio.dashscope.interleave import check_interleave
from studio.dashscope.problems import Problem
from studio.dashscope.tokens import prompt_length, unit_name
from studio.dashscope.types import GenerationRequest

_SIZE_RE = re.compile(r"^([1-9][0-9]{1,4})\*([1-9][0-9]{1,4})$")
_HEX_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_RATIO_RE = re.compile(r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)%$")


def parse_size(value: str) -> tuple[int, int] | None:
    match = _SIZE_RE.match(value)
    if not match:
        return None
    return int(match[1]), int(match[2])


def pixels_text(pixels: int) -> str:
    """A pixel count as people read a size: 1280×1280 where it is a square's, else the
    number (the form's live check says it the same way)."""
    side = math.isqrt(pixels)
    if side * side == pixels:
        return f"{side}×{side}"
    return f"{pixels:,} pixels"


def _sequential(request: GenerationRequest) -> bool:
    return bool(request.enable_sequential)


def check_request(
    request: GenerationRequest, *, asynchronous: bool, streaming: bool = False
) -> list[Problem]:
    """All the problems with a request for its model; empty when it may be sent.
    `streaming`: it is sent as a stream, which mixed text and images must be."""
    try:
        spec = get_model(request.model)
    except UnknownModel:
        return [Problem("model", f"{request.model!r} is not a model the studio knows.")]
    problems: list[Problem] = []
    if spec.endpoint(asynchronous=asynchronous) is None:
        way = "in the background" if asynchronous else "synchronously"
        problems.append(Problem("model", f"{spec.label} cannot be called {way}."))
    problems += _check_options(spec, request)
    interleaved = bool(request.enable_interleave) and spec.interleave is not None
    if interleaved:
        problems += check_interleave(spec, request, streams=streaming and not asynchronous)
        spec = spec.interleaved()
    problems += _check_prompt(spec, request)
    problems += _check_images(spec, request)
    problems += _check_size(spec, request)
    if not interleaved:
        problems += _check_n(spec, request)  # the mixed mode's n is check_interleave's
    problems += _check_seed(spec, request)
    problems += _check_boxes(spec, request)
    problems += _check_palette(spec, request)
    thinking = request.thinking_mode is not None and spec.supports(Option.THINKING_MODE)
    if thinking and (request.images or _sequential(request)):
        problems.append(
            Problem(
                "thinking_mode",
                "Thinking mode applies only to text-to-image without input images, "
                "and not to a set of images.",
            )
        )
    return problems


def _check_options(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    problems = []
    for option in Option:
        if getattr(request, option.value) not in (None, "") and not spec.supports(option):
            problems.append(Problem(option.value, f"{spec.label} does not take {option.value}."))
    if request.max_images is not None and spec.interleave and not request.enable_interleave:
        problems.append(Problem("max_images", "max_images is only for mixed text and images."))
    return problems


def _check_prompt(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    problems = []
    if not request.prompt or not request.prompt.strip():
        problems.append(Problem("prompt", "A prompt is required."))
    elif (length := prompt_length(spec, request.prompt)) > spec.prompt_max:
        problems.append(Problem("prompt", prompt_too_long(spec, length)))
    limit = spec.negative_prompt_max_chars
    negative = request.negative_prompt
    if negative and limit is not None and len(negative) > limit:
        problems.append(
            Problem(
                "negative_prompt",
                f"The negative prompt is {len(negative):,} characters; {spec.label} takes "
                f"at most {limit:,}.",
            )
        )
    return problems


def prompt_too_long(spec: ModelSpec, length: int) -> str:
    """The message for a prompt over its model's limit, in the limit's unit: the same
    words from the form, the client and the emulator's refusal alike."""
    return (
        f"The prompt is {length:,} {unit_name(spec, length)}; {spec.label} takes at most "
        f"{spec.prompt_max:,} {unit_name(spec, spec.prompt_max)}."
    )


def _check_images(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    rule = spec.images
    if rule is None:
        if request.images:
            return [Problem("images", f"{spec.label} does not take input images.")]
        return []
    low, high = rule.count
    count = len(request.images)
    if count < low:
        need = "an input image" if low == 1 else f"at least {low} input images"
        return [Problem("images", f"{spec.label} needs {need}.")]
    if count > high:
        noun = "input image" if high == 1 else "input images"
        return [Problem("images", f"{spec.label} takes at most {high} {noun}; got {count}.")]
    problems = []
    for position, image in enumerate(request.images, start=1):
        if image.info is None:
            continue  # a URL: the provider checks it when it downloads it
        problems += _image_problems(rule, position, image.info)
    return problems


def _image_problems(rule: ImageInputRule, position: int, info: ImageInfo) -> list[Problem]:
    """What is wrong with one inline input image: its format, alpha, sides and bytes."""
    where = f"images[{position}]"
    label = f"Image {position}"
    measured = f"{label} is {info.width}×{info.height}"
    problems = []
    if info.format not in rule.formats:
        problems.append(Problem(where, f"{label} is {info.format}; use JPEG, PNG, BMP or WEBP."))
    if info.has_alpha and not rule.alpha:
        problems.append(Problem(where, f"{label} has transparency, which is not accepted."))
    short, long_ = min(info.width, info.height), max(info.width, info.height)
    if short < rule.min_side:
        problems.append(
            Problem(where, f"{measured}; each side must be at least {rule.min_side} pixels.")
        )
    if long_ > rule.max_side:
        problems.append(
            Problem(where, f"{measured}; each side must be at most {rule.max_side} pixels.")
        )
    if rule.aspect is not None and not rule.aspect.allows(info.width, info.height):
        problems.append(
            Problem(where, f"{measured}; its aspect ratio must be between {rule.aspect}.")
        )
    if info.bytes > rule.max_bytes:
        problems.append(
            Problem(
                where,
                f"{label} is {info.bytes / MB:.1f} MB; the limit is {megabytes(rule.max_bytes)}.",
            )
        )
    return problems


def _check_size(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    rule = spec.size
    value = request.size
    if value is None:
        return []
    # A sequence is limited as editing is: 2K at most.
    edits = bool(request.images) or _sequential(request)
    if rule.fixed:
        allowed = ", ".join(f"{w}*{h}" for w, h in rule.fixed)
        if parse_size(value) not in rule.fixed:
            return [Problem("size", f"{spec.label} makes only these sizes: {allowed}.")]
        return []
    if value in rule.tiers:
        if value in rule.text_to_image_only_tiers and edits:
            return [
                Problem(
                    "size",
                    f"{value} is only for text-to-image without input images, not for a set "
                    "of images; use 2K or less.",
                )
            ]
        return []
    parsed = parse_size(value)
    if parsed is None:
        tiers = " or ".join(rule.tiers)
        custom = "W*H (for example 1280*1280)"
        expected = f"{tiers}, or {custom}" if tiers else custom
        return [Problem("size", f"{value!r} is not a size; use {expected}.")]
    return _custom_size_problems(spec, parsed, edits=edits)


def _custom_size_problems(spec: ModelSpec, size: tuple[int, int], *, edits: bool) -> list[Problem]:
    """What is wrong with a W*H size: its pixel count, its sides and its aspect ratio."""
    rule = spec.size
    width, height = size
    pixels = width * height
    low, high = rule.min_pixels, rule.max_pixels_for(has_images=edits)
    problems = []
    if not low <= pixels <= high:
        problems.append(
            Problem(
                "size",
                f"{width}×{height} is {pixels:,} pixels; {spec.label} makes between "
                f"{pixels_text(low)} and {pixels_text(high)} in total.",
            )
        )
    if rule.min_side and min(width, height) < rule.min_side:
        problems.append(
            Problem("size", f"{width}×{height}: each side must be at least {rule.min_side} pixels.")
        )
    if rule.max_side and max(width, height) > rule.max_side:
        problems.append(
            Problem("size", f"{width}×{height}: each side must be at most {rule.max_side} pixels.")
        )
    if rule.aspect is not None and not rule.aspect.allows(width, height):
        problems.append(
            Problem("size", f"{width}×{height}: the aspect ratio must be between {rule.aspect}.")
        )
    return problems


def _check_n(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    if request.n is None:
        return []
    allowed = spec.n_sequential if _sequential(request) and spec.n_sequential else spec.n
    if isinstance(request.n, bool) or request.n not in allowed:
        if allowed.min == allowed.max:
            return [Problem("n", f"{spec.label} makes exactly {allowed.min} image per request.")]
        return [
            Problem("n", f"{spec.label} makes {allowed.min} to {allowed.max} images per request.")
        ]
    return []


def _check_seed(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    seed = request.seed
    if seed is None or not spec.supports(Option.SEED):
        return []
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        return [Problem("seed", f"The seed must be a whole number from 0 to {SEED_MAX:,}.")]
    return []


def _check_boxes(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    boxes = request.bbox_list
    if boxes is None or not spec.supports(Option.BBOX_LIST):
        return []
    if _sequential(request):
        return [
            Problem(
                "bbox_list",
                "Regions cannot be drawn for a set of images; turn off the set or clear "
                "the regions.",
            )
        ]
    if len(boxes) != len(request.images):
        return [
            Problem(
                "bbox_list",
                f"Regions are given for {len(boxes)} images but there are "
                f"{len(request.images)} input images.",
            )
        ]
    problems = []
    for position, (image, image_boxes) in enumerate(
        zip(request.images, boxes, strict=True), start=1
    ):
        where = f"bbox_list[{position}]"
        if len(image_boxes) > spec.max_boxes_per_image:
            problems.append(
                Problem(
                    where,
                    f"Image {position} has {len(image_boxes)} regions; at most "
                    f"{spec.max_boxes_per_image} per image.",
                )
            )
            continue
        for number, box in enumerate(image_boxes, start=1):
            message = _box_problem(
                box,
                image.info.width if image.info else None,
                image.info.height if image.info else None,
            )
            if message:
                problems.append(Problem(where, f"Image {position}, region {number}: {message}"))
    return problems


def _box_problem(box: object, width: int | None, height: int | None) -> str | None:
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
    if width is not None and height is not None and (x2 > width or y2 > height):
        return f"it reaches outside the {width}×{height} image."
    return None


def _check_palette(spec: ModelSpec, request: GenerationRequest) -> list[Problem]:
    palette = request.color_palette
    if palette is None or not spec.supports(Option.COLOR_PALETTE):
        return []
    if _sequential(request):
        return [Problem("color_palette", "A set of images cannot use a colour palette.")]
    low, high = spec.color_palette_items
    if not low <= len(palette) <= high:
        return [Problem("color_palette", f"A palette has {low} to {high} colours.")]
    total = 0.0
    for number, swatch in enumerate(palette, start=1):
        if not _HEX_RE.match(swatch.hex):
            return [Problem("color_palette", f"Colour {number} must be written #RRGGBB.")]
        if not _RATIO_RE.match(swatch.ratio):
            return [
                Problem("color_palette", f"Colour {number}'s share must be written like 25.00%.")
            ]
        total += float(swatch.ratio.rstrip("%"))
    if abs(total - 100.0) > 0.005:
        return [Problem("color_palette", f"The shares add up to {total:.2f}%, not 100.00%.")]
    return []


def output_size(request: GenerationRequest) -> tuple[int, int]:
    """The width and height the provider will make for a valid request."""
    spec = get_model(request.model)
    rule = spec.size
    value = request.size or rule.default
    last = request.images[-1].info if request.images else None
    if value in rule.tiers:
        area = rule.tiers[value] ** 2
    else:
        parsed = parse_size(value)
        assert parsed is not None, value
        if request.size is not None or not (rule.follows_last_image and last):
            return _snap(parsed, rule.snap)
        area = parsed[0] * parsed[1]
    ratio = 1.0
    if rule.follows_last_image and last is not None:
        ratio = last.width / last.height
        if rule.aspect is not None:
            ratio = rule.aspect.clamp(ratio)
    width = round(math.sqrt(area * ratio))
    height = round(math.sqrt(area / ratio))
    return _snap((width, height), rule.snap)


def _snap(size: tuple[int, int], step: int) -> tuple[int, int]:
    if step == 1:
        return size
    return tuple(max(step, round(side / step) * step) for side in size)  # type: ignore[return-value]


def images_requested(request: GenerationRequest) -> int:
    """How many images a request asks for: what it may cost."""
    spec = get_model(request.model)
    if request.enable_interleave and spec.interleave is not None:
        # The model decides how many pictures, up to max_images: cost the most.
        return request.max_images or spec.interleave.max_images.default
    if request.n is not None:
        return request.n
    if _sequential(request) and spec.n_sequential:
        return spec.n_sequential.default
    return spec.n.default

"""Turning an uploaded file into an input image the provider will accept.

What can be fixed without changing what the picture shows is fixed, and the designer is
told: EXIF rotation applied, transparency flattened onto white, metadata dropped, an
oversized image scaled down. What cannot be fixed is refused with the reason: not an
image, too small, an aspect ratio out of range. Every stored input is re-encoded, so no
byte of the upload (a trailing script, a GPS tag) survives.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from studio.dashscope.catalog import ImageInputRule, megabytes
from studio.dashscope.images import MIME_TYPES, UnreadableImage, probe_image

JPEG_QUALITY = 92


class ImageRefused(ValueError):
    """An upload that cannot be used; the message is for the designer."""


@dataclass(frozen=True)
class NormalisedImage:
    data: bytes
    format: str  # JPEG or PNG
    width: int
    height: int
    sha256: str
    adjustments: list[str] = field(default_factory=list)

    @property
    def mime(self) -> str:
        return MIME_TYPES[self.format]

    @property
    def extension(self) -> str:
        return "jpg" if self.format == "JPEG" else "png"


def _encode(image: Image.Image, fmt: str) -> bytes:
    output = io.BytesIO()
    if fmt == "JPEG":
        image.save(output, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        image.save(output, format="PNG", optimize=False, compress_level=6)
    return output.getvalue()


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """`size` times `scale`, the long side rounded down and the short side up: the aspect
    ratio never grows, so an image accepted at the edge of the range stays inside it."""
    long_, short = max(size), min(size)
    new_long = max(1, math.floor(long_ * scale))
    new_short = min(new_long, max(1, math.ceil(short * scale)))  # a square stays square
    return (new_long, new_short) if size[0] >= size[1] else (new_short, new_long)


def normalise(data: bytes, rule: ImageInputRule) -> NormalisedImage:
    try:
        info = probe_image(data)  # format from magic bytes, pixel cap from the header
    except UnreadableImage as exc:
        raise ImageRefused(f"This file cannot be used: {exc}.") from None
    adjustments: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[info.format]) as opened:
                opened.load()
                if opened.getexif().get(0x0112, 1) != 1:  # the EXIF orientation tag
                    adjustments.append("rotated as its camera recorded")
                image = ImageOps.exif_transpose(opened)
    except Exception:
        raise ImageRefused("This image is damaged and cannot be read.") from None
    if info.has_alpha or image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        if info.has_alpha and rgba.getextrema()[3][0] < 255:
            adjustments.append("transparency flattened onto white")
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        image = white
    elif image.mode != "RGB":
        if image.mode.startswith("I") and (image.mode != "I" or image.getextrema()[1] > 255):
            # 16-bit greyscale: brought to 8 bits first, as converting clips all above 255
            # (nearly the whole picture) to white.
            image = image.point(lambda value: value / 256).convert("L")
        image = image.convert("RGB")  # CMYK, greyscale: the provider wants RGB

    width, height = image.size
    problem = refusal(width, height, rule)
    if problem:
        raise ImageRefused(problem)
    if max(width, height) > rule.max_side:
        scale = rule.max_side / max(width, height)
        image = image.resize(_scaled(image.size, scale), Image.Resampling.LANCZOS)
        adjustments.append(f"scaled down from {width}×{height} to {image.width}×{image.height}")

    # Photos stay JPEG; drawings, screenshots and anything lossless stay lossless.
    fmt = "JPEG" if info.format == "JPEG" else "PNG"
    encoded = _encode(image, fmt)
    if len(encoded) > rule.max_bytes and fmt == "PNG":
        fmt, encoded = "JPEG", _encode(image, "JPEG")
        adjustments.append("saved as JPEG to fit the file size limit")
    while len(encoded) > rule.max_bytes:
        image = image.resize(_scaled(image.size, 0.85), Image.Resampling.LANCZOS)
        encoded = _encode(image, fmt)
        adjustments.append(
            f"scaled down to {image.width}×{image.height} to fit {megabytes(rule.max_bytes)}"
        )
        if min(image.size) < rule.min_side:
            raise ImageRefused("This image is too detailed to fit the file size limit.")
    return NormalisedImage(
        data=encoded,
        format=fmt,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        adjustments=_unique(adjustments),
    )


def _unique(items: list[str]) -> list[str]:
    # Keep the last of repeated "scaled down to fit" notes: it names the final size.
    seen: dict[str, str] = {}
    for item in items:
        seen[item.split(" to ")[0] if item.startswith("scaled down to") else item] = item
    return list(seen.values())


def refusal(width: int, height: int, rule: ImageInputRule) -> str | None:
    """Why an already normalised image cannot be used with a model's rule, if it cannot."""
    if min(width, height) < rule.min_side:
        return f"This image is {width}×{height}; each side must be at least {rule.min_side} pixels."
    if rule.aspect is not None and not rule.aspect.allows(width, height):
        return f"This image is {width}×{height}; its aspect ratio must be between {rule.aspect}."
    if max(width, height) > rule.max_side:
        scale = rule.max_side / max(width, height)
        if min(width, height) * scale < rule.min_side:
            return (
                f"This image is {width}×{height}: scaled to fit {rule.max_side} pixels its "
                f"short side would be under {rule.min_side}."
            )
    return None


def needs_refit(width: int, height: int, size: int, rule: ImageInputRule) -> bool:
    """Whether an image of these pixels and bytes must be scaled down for the rule."""
    return max(width, height) > rule.max_side or size > rule.max_bytes


def refit(image: NormalisedImage, rule: ImageInputRule) -> NormalisedImage:
    """An image normalised for one model, made to fit another's (smaller) limits.

    Unchanged when it already fits, so nothing is re-encoded twice for nothing.
    """
    if not needs_refit(image.width, image.height, len(image.data), rule):
        return image
    again = normalise(image.data, rule)
    return NormalisedImage(
        data=again.data,
        format=again.format,
        width=again.width,
        height=again.height,
        sha256=again.sha256,
        adjustments=_unique([*image.adjustments, *again.adjustments]),
    )


def scale_boxes(
    boxes: list[tuple[int, int, int, int]], source: tuple[int, int], target: tuple[int, int]
) -> list[tuple[int, int, int, int]]:
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

"""Turning an uploaded file into an input image the provider will accept.

What can be fixed without changing what the picture shows is fixed, and the designer is
told: EXIF rotation applied, transparency flattened onto white, metadata dropped, an
oversized image scaled down. What cannot be fixed is refused with the reason: not an
image, too small, an aspect ratio out of range. Every stored input is re-encoded, so no
byte of the upload (a trailing script, a GPS tag) survives.

The designer's format is kept wherever the model's limits allow: a PNG stays PNG, a WEBP
stays WEBP (lossless or lossy, as it came), a JPEG stays JPEG. A BMP becomes PNG: the same
pixels, losslessly, in a file a fraction of the size (BMP is uncompressed, so a 2,600-pixel
square is already over 20 MB), and one the studio can show on the card (it serves JPEG, PNG
and WEBP only). A file over the model's byte limit is fitted the least costly way first:
compressed harder (no pixel changes), then scaled down by as little as it takes, and only
when staying lossless would cost more than half its pixels is a lossless image saved lossy,
as JPEG (a WEBP as lossy WEBP). Each of these steps is noted, with the file's size before
and after, for the card to show before anything is sent.
"""

from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field, replace
from typing import cast

from PIL import Image, ImageOps

from studio.dashscope.catalog import MB, ImageInputRule, megabytes
from studio.dashscope.images import MIME_TYPES, UnreadableImage, probe_image

JPEG_QUALITY = 92
WEBP_QUALITY = 92  # lossy WEBP, for a lossy WEBP upload or as a lossless one's last resort
# Scaling keeps a lossless image lossless while it keeps at least half its pixels; a file
# that would need more taken is saved lossy at full size instead, which keeps more of it.
MIN_LOSSLESS_SCALE = 1 / math.sqrt(2)
# zlib's strongest level saves some 5-15 % on pictures over the default, for about three
# times the time: worth trying only on a file that much over the limit.
HARDER_REACH = 1.15
# What Image.getextrema() gives: a (low, high) pair per band, or one pair for one band.
BandsExtrema = tuple[tuple[int, int], ...]
BandExtrema = tuple[float, float]
# Scaling aims this far under the limit, so that one encoding usually lands inside it.
SCALE_MARGIN = 0.98
# A fit within this share of the limit is taken as the least scaling needed; closer would
# cost another encoding for a few pixels.
CLOSE_ENOUGH = 0.9
# Encodings tried per fit: pictures whose bytes do not follow their pixels get this many.
SCALE_TRIES = 8
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


class ImageRefused(ValueError):
    """An upload that cannot be used; the message is for the designer."""


@dataclass(frozen=True)
class NormalisedImage:
    data: bytes
    format: str  # JPEG, PNG or WEBP: what `data` is
    width: int
    height: int
    sha256: str
    adjustments: list[str] = field(default_factory=list)  # for the designer, in order

    @property
    def mime(self) -> str:
        return MIME_TYPES[self.format]

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


@dataclass(frozen=True)
class _Encoding:
    format: str  # JPEG, PNG or WEBP
    lossless: bool
    # zlib's strongest level, for PNG only: WEBP's strongest effort takes ten times as long
    # as its default and saves well under one percent.
    harder: bool = False

    @property
    def name(self) -> str:
        return self.format if self.lossless or self.format == "JPEG" else "lossy WEBP"


def _encode(image: Image.Image, encoding: _Encoding) -> bytes:
    output = io.BytesIO()
    if encoding.format == "JPEG":
        image.save(output, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    elif encoding.format == "WEBP" and encoding.lossless:
        image.save(output, format="WEBP", lossless=True)
    elif encoding.format == "WEBP":
        image.save(output, format="WEBP", quality=WEBP_QUALITY)
    else:
        level = 9 if encoding.harder else 6
        image.save(output, format="PNG", optimize=False, compress_level=level)
    return output.getvalue()


def _quality(encoding: _Encoding) -> int:
    return JPEG_QUALITY if encoding.format == "JPEG" else WEBP_QUALITY


def size_text(size: int) -> str:
    """A file size as the limits are written (MB of 10^6 bytes), cut rather than rounded:
    a file that fits 20 MB never reads 20.0 MB."""
    if size < MB // 10:
        return f"{max(1, size // 1000)} KB"
    return f"{math.floor(size / MB * 10) / 10:.1f} MB"


def _sizes(before: int, after: int) -> str:
    return f"{size_text(before)} → {size_text(after)}"


def _is_lossless_webp(data: bytes) -> bool:
    """Whether a WEBP file holds a lossless picture: its first image chunk says."""
    position = 12  # after "RIFF", the size and "WEBP"
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        if kind == b"VP8L":
            return True
        if kind == b"VP8 ":
            return False
        length = int.from_bytes(data[position + 4 : position + 8], "little")
        position += 8 + length + (length & 1)  # chunks are padded to an even length
    return False


def _scaled(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """`size` times `scale`, the long side rounded down and the short side up: the aspect
    ratio never grows, so an image accepted at the edge of the range stays inside it."""
    long_, short = max(size), min(size)
    new_long = max(1, math.floor(long_ * scale))
    new_short = min(new_long, max(1, math.ceil(short * scale)))  # a square stays square
    return (new_long, new_short) if size[0] >= size[1] else (new_short, new_long)


def _scale_to_fit(
    image: Image.Image,
    encoded: int,
    encoding: _Encoding,
    rule: ImageInputRule,
    least_scale: float,
) -> tuple[Image.Image, bytes] | None:
    """`image` scaled down by about the least that brings its file under the limit.

    A file's size follows its pixel count, so each try scales by the square root of how far
    off the nearest known size was; as downscaling smooths a picture (a JPEG of it shrinks
    faster than its pixels), a fit well under the limit is pushed back up towards it. None
    when even `least_scale` of its sides, or the model's smallest side, does not fit.
    """
    over, over_bytes = 1.0, encoded  # the smallest scale known not to fit, and its size
    fit: tuple[float, Image.Image, bytes] | None = None  # the largest known to fit
    for _ in range(SCALE_TRIES):
        if fit is None:
            estimate = over * math.sqrt(rule.max_bytes / over_bytes) * SCALE_MARGIN
            scale = max(least_scale, estimate)  # the least scale is tried, not guessed
        elif len(fit[2]) >= rule.max_bytes * CLOSE_ENOUGH:
            break
        else:
            estimate = fit[0] * math.sqrt(rule.max_bytes / len(fit[2])) * SCALE_MARGIN
            scale = min(estimate, (fit[0] + over) / 2)
        size = _scaled(image.size, scale)
        if min(size) < rule.min_side or (fit is not None and size == fit[1].size):
            break
        smaller = image.resize(size, Image.Resampling.LANCZOS)
        data = _encode(smaller, encoding)
        if len(data) <= rule.max_bytes:
            fit = (scale, smaller, data)
        elif fit is None and scale <= least_scale:
            break
        else:
            over, over_bytes = scale, len(data)
    return (fit[1], fit[2]) if fit is not None else None


def normalise(data: bytes, rule: ImageInputRule) -> NormalisedImage:
    try:
        info = probe_image(data)  # format from magic bytes, pixel cap from the header
    except UnreadableImage as exc:
        raise ImageRefused(f"This file cannot be used: {exc}.") from None
    adjustments: list[str] = []
    image = _as_rgb(_opened(data, info.format, adjustments), info.has_alpha, adjustments)
    width, height = image.size
    problem = refusal(width, height, rule)
    if problem:
        raise ImageRefused(problem)
    if max(width, height) > rule.max_side:
        scale = rule.max_side / max(width, height)
        image = image.resize(_scaled(image.size, scale), Image.Resampling.LANCZOS)
        adjustments.append(
            f"scaled down from {width}×{height} to {image.width}×{image.height}, "
            f"as sides may be at most {rule.max_side} pixels"
        )
    encoding = _kept_encoding(info.format, data, rule)
    encoded = _encode(image, encoding)
    # The size the designer last read on the card: the upload's, unless the format changed.
    shown = _note_format(info.format, encoding, len(data), len(encoded), adjustments)
    if len(encoded) > rule.max_bytes:
        image, encoded, encoding, notes = _fit(image, encoded, encoding, rule, shown)
        adjustments += notes
    elif shown > rule.max_bytes and image.size == (width, height):
        # The upload was over the limit and saving it again was enough: still said, as
        # the designer may wonder why a file over the limit went through.
        how = (
            "compressed again, not a pixel changed"
            if encoding.lossless
            else f"saved again as {encoding.name} (quality {_quality(encoding)})"
        )
        adjustments.append(
            f"{how}, to fit {megabytes(rule.max_bytes)}; {_sizes(shown, len(encoded))}"
        )
    return NormalisedImage(
        data=encoded,
        format=encoding.format,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
        adjustments=_unique(adjustments),
    )


def _opened(data: bytes, source: str, adjustments: list[str]) -> Image.Image:
    """The decoded picture, turned as its camera recorded; refused if it cannot be read."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[source]) as opened:
                opened.load()
                if opened.getexif().get(0x0112, 1) != 1:  # the EXIF orientation tag
                    adjustments.append("rotated as its camera recorded")
                return ImageOps.exif_transpose(opened)
    except Exception:
        raise ImageRefused("This image is damaged and cannot be read.") from None


def _as_rgb(image: Image.Image, has_alpha: bool, adjustments: list[str]) -> Image.Image:
    """The picture in 8-bit RGB, as the provider wants it: transparency onto white."""
    if has_alpha or image.mode in ("RGBA", "LA", "PA", "P"):
        rgba = image.convert("RGBA")
        if has_alpha and cast(BandsExtrema, rgba.getextrema())[3][0] < 255:
            # One note, two sentences: the card ends each note with a full stop.
            adjustments.append(
                "transparency flattened onto white. The models do not accept transparency"
            )
        white = Image.new("RGB", rgba.size, (255, 255, 255))
        white.paste(rgba, mask=rgba.getchannel("A"))
        return white
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") and (
        image.mode != "I" or cast(BandExtrema, image.getextrema())[1] > 255
    ):
        # 16-bit greyscale: brought to 8 bits first, as converting clips all above 255
        # (nearly the whole picture) to white.
        image = image.point(lambda value: value / 256).convert("L")
        adjustments.append("16-bit tones brought to 8 bits")
    elif image.mode == "CMYK":
        adjustments.append("CMYK colours converted to RGB")
    return image.convert("RGB")  # CMYK, greyscale: the provider wants RGB


def _note_format(
    source: str, encoding: _Encoding, before: int, after: int, adjustments: list[str]
) -> int:
    """Say so when the upload was saved in another format; the file size shown since."""
    if source == "BMP" and encoding.format == "PNG":
        adjustments.append(
            "saved as PNG: the same pixels, compressed without loss (BMP is not "
            f"compressed at all); {_sizes(before, after)}"
        )
        return after
    if source != encoding.format:
        adjustments.append(
            f"saved as {encoding.name}, as the model does not take {source}; "
            f"{_sizes(before, after)}"
        )
        return after
    return before


def _kept_encoding(source: str, data: bytes, rule: ImageInputRule) -> _Encoding:
    """The upload's own format where the model takes it; BMP becomes PNG (see above)."""
    if source == "JPEG":
        encoding = _Encoding("JPEG", lossless=False)
    elif source == "WEBP":
        encoding = _Encoding("WEBP", lossless=_is_lossless_webp(data))
    else:
        encoding = _Encoding("PNG", lossless=True)
    if encoding.format in rule.formats:
        return encoding
    # Every model takes all four today; a rule that narrows them gets a lossless file
    # where it can.
    if "PNG" in rule.formats:
        return _Encoding("PNG", lossless=True)
    return _Encoding("JPEG", lossless=False)


def _fit(
    image: Image.Image, encoded: bytes, encoding: _Encoding, rule: ImageInputRule, shown: int
) -> tuple[Image.Image, bytes, _Encoding, list[str]]:
    """The image made to fit the byte limit the least costly way, and what that took."""
    limit = megabytes(rule.max_bytes)
    notes: list[str] = []
    if encoding.lossless:
        if encoding.format == "PNG" and len(encoded) <= rule.max_bytes * HARDER_REACH:
            harder = replace(encoding, harder=True)
            again = _encode(image, harder)
            if len(again) <= rule.max_bytes:
                notes.append(
                    f"compressed harder to fit {limit}, not a pixel changed; "
                    f"{_sizes(shown, len(again))}"
                )
                return image, again, harder, notes
            # Not enough: scaling goes on at the default level, as each try at the
            # strongest would take about three times as long for a few percent.
        fitted = _scale_to_fit(image, len(encoded), encoding, rule, MIN_LOSSLESS_SCALE)
        if fitted is not None:
            smaller, encoded = fitted
            notes.append(
                f"scaled down from {image.width}×{image.height} to {smaller.width}×"
                f"{smaller.height} to fit {limit} and stay {encoding.format}, without "
                f"compression loss; {_sizes(shown, len(encoded))}"
            )
            return smaller, encoded, encoding, notes
        # The last resort: at full size a lossy file keeps more of the picture than a
        # lossless one with under half its pixels.
        webp = encoding.format == "WEBP"
        lossy = _Encoding("WEBP" if webp else "JPEG", lossless=False)
        encoded_lossy = _encode(image, lossy)
        notes.append(
            f"saved as {lossy.name} (quality {_quality(lossy)}), the last resort to fit {limit}: "
            f"to stay {'lossless' if webp else 'PNG'} it would have lost over half its pixels; "
            f"{_sizes(shown, len(encoded_lossy))}"
        )
        shown, encoded, encoding = len(encoded_lossy), encoded_lossy, lossy
        if len(encoded) <= rule.max_bytes:
            return image, encoded, encoding, notes
    fitted = _scale_to_fit(image, len(encoded), encoding, rule, 0.0)
    if fitted is None:
        raise ImageRefused("This image is too detailed to fit the file size limit.")
    smaller, encoded = fitted
    # The quality is named once: here, unless the last resort above has named it.
    saved = "" if notes else f" and saved as {encoding.name} (quality {_quality(encoding)})"
    notes.append(
        f"scaled down from {image.width}×{image.height} to {smaller.width}×{smaller.height}"
        f"{saved} to fit {limit}; {_sizes(shown, len(encoded))}"
    )
    return smaller, encoded, encoding, notes


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


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

"""Reading what an image is from its bytes, without trusting names or declared types."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from studio.dashscope.catalog import ACCEPTED_IMAGE_FORMATS

MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "BMP": "image/bmp", "WEBP": "image/webp"}
FORMATS_BY_MIME = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/png": "PNG",
    "image/bmp": "BMP",
    "image/webp": "WEBP",
}
# 8000 x 8000 is the largest input any model takes; anything bigger is refused from its
# header, before a single pixel is decoded.
MAX_PIXELS = 8000 * 8000

_MAGIC_NAMES = (
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"<svg", "SVG"),
    (b"<?xml", "SVG or XML"),
)


class UnreadableImage(ValueError):
    """The bytes are not an image the provider accepts; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    format: str  # one of ACCEPTED_IMAGE_FORMATS
    width: int
    height: int
    bytes: int
    has_alpha: bool
    sha256: str

    @property
    def mime(self) -> str:
        return MIME_TYPES[self.format]

    @property
    def pixels(self) -> int:
        return self.width * self.height


def _describe_unknown(data: bytes) -> str:
    head = data[:16].lstrip()
    for magic, name in _MAGIC_NAMES:
        if head.startswith(magic):
            return f"{name} files are not accepted; use JPEG, PNG, BMP or WEBP"
    if head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF files are not accepted; use JPEG, PNG, BMP or WEBP"
    return "this file is not a JPEG, PNG, BMP or WEBP image"


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        return True
    return "transparency" in image.info


def probe_image(data: bytes) -> ImageInfo:
    """What the image is, read from its header only; raises UnreadableImage."""
    if not data:
        raise UnreadableImage("the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(ACCEPTED_IMAGE_FORMATS)) as image:
                width, height = image.size
                # A camera's JPEG with a second picture inside (MPO) is a JPEG all the
                # same: its first picture is the photo.
                fmt = "JPEG" if image.format == "MPO" else image.format or ""
                alpha = _has_alpha(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableImage("the image has too many pixels to open safely") from None
    except Exception:
        raise UnreadableImage(_describe_unknown(data)) from None
    if width * height > MAX_PIXELS:
        raise UnreadableImage(
            f"the image is {width}×{height}, larger than 8000×8000 pixels, the largest "
            "any model accepts"
        )
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        bytes=len(data),
        has_alpha=alpha,
        sha256=hashlib.sha256(data).hexdigest(),
    )

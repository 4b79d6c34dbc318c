"""Result storage: a downloaded image verified, stored under its job and index with its
thumbnail, and its row written; a retry replaces its own file and row."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from studio.generation.models import GeneratedImage, Job

# One logger for the whole worker, as operators filter its lines by that name.
logger = logging.getLogger("studio.generation.worker")

THUMBNAIL_SIDE = 512
MAX_RESULT_PIXELS = 4096 * 4096 * 2
# Where results and their thumbnails are stored, by job and index: a retry replaces its own.
RESULTS_DIR = "results"
THUMBS_DIR = "thumbs"
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


class InvalidResult(ValueError):
    pass


class StorageUnavailable(Exception):
    """The media storage could not save a result: unavailable, full, refusing."""


def thumbnail_name(job_id: object, index: int) -> str:
    return f"{THUMBS_DIR}/{job_id}/{index}.webp"


@dataclass(frozen=True)
class DecodedResult:
    extension: str
    size: tuple[int, int]
    thumbnail: bytes


def decode_result(data: bytes) -> DecodedResult:
    """Decode a result as the studio takes them (PNG, JPEG or WebP, within the pixel cap,
    complete) and make its thumbnail; InvalidResult says what it was instead."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_EXTENSIONS)) as image:
                if image.width * image.height > MAX_RESULT_PIXELS:
                    raise InvalidResult("too many pixels")
                image.load()  # a truncated file fails here, before anything is stored
                extension, size = _EXTENSIONS[image.format or "PNG"], image.size
                return DecodedResult(extension, size, thumbnail_webp(image))
    except InvalidResult:
        raise
    except Exception as exc:
        raise InvalidResult(type(exc).__name__) from None


def store_result(job: Job, index: int, data: bytes) -> GeneratedImage:
    """Verify a downloaded image and store it with its thumbnail; file first, then the row."""
    decoded = decode_result(data)
    ext = decoded.extension
    try:
        name = default_storage.save(f"{RESULTS_DIR}/{job.pk}/{index}.{ext}", ContentFile(data))
        thumb_name = default_storage.save(
            thumbnail_name(job.pk, index), ContentFile(decoded.thumbnail)
        )
    except Exception as exc:
        # Whatever the backend raises (OSError from a full disk, a bucket's errors): a fault
        # an operator fixes, which holds the job instead of crashing its step.
        logger.warning("Storing image %d of job %s failed", index + 1, job.pk, exc_info=True)
        raise StorageUnavailable(type(exc).__name__) from exc
    image_row, _ = GeneratedImage.objects.update_or_create(
        job=job,
        index=index,
        defaults={
            "team_id": job.team_id,
            "image": name,
            "thumbnail": thumb_name,
            "mime": f"image/{'jpeg' if ext == 'jpg' else ext}",
            "width": decoded.size[0],
            "height": decoded.size[1],
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )
    return image_row


def thumbnail_webp(image: Image.Image) -> bytes:
    """The gallery's thumbnail of a loaded image, which is shrunk in place."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")  # palette and 16-bit images shrink badly as they are
    # Halving by box averaging before the final resample: half the time, no visible loss
    # at gallery size. The conversion is then made on the small image.
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), reducing_gap=1.0)
    output = io.BytesIO()
    image.convert("RGB").save(output, format="WEBP", quality=80, method=2)
    return output.getvalue()

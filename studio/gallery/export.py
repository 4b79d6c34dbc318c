"""The selection as one zip: the originals and a manifest of what made each.

Held in memory while small and on disk beyond that (200 originals can be a gigabyte); the
view streams it from there.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import zipfile
from typing import IO, Any

from django.utils import timezone

from studio.accounts.models import Team
from studio.generation.models import GeneratedImage

ZIP_IN_MEMORY_BYTES = 16 * 1024 * 1024
logger = logging.getLogger(__name__)


def zip_of(images: list[GeneratedImage]) -> IO[bytes]:
    """The zip, read back from its start; the caller closes it (a FileResponse does, once
    sent)."""
    buffer = tempfile.SpooledTemporaryFile(max_size=ZIP_IN_MEMORY_BYTES)  # noqa: SIM115
    manifest = []
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for number, image in enumerate(images, start=1):
            name = _add_original(archive, image, _file_name(number, image))
            manifest.append(manifest_entry(image, name))
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    buffer.seek(0)
    return buffer


def zip_name(team: Team) -> str:
    """The zip's file name: the team and when it was made."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    return f"{team.slug}-{stamp}.zip"


def _file_name(number: int, image: GeneratedImage) -> str:
    job = image.job
    ext = image.mime.split("/")[-1].replace("jpeg", "jpg")
    return f"{number:03d}-{job.model}-{str(job.pk)[:8]}-{image.index + 1}.{ext}"


def _add_original(archive: zipfile.ZipFile, image: GeneratedImage, name: str) -> str:
    """Copy the image's original into the zip as `name`; "" if the media store lost it."""
    try:
        # Already compressed: stored as is, copied a piece at a time.
        with image.image.open("rb") as file, archive.open(name, "w") as member:
            shutil.copyfileobj(file, member)
    except OSError:
        # Said in the manifest rather than failing the whole download.
        logger.error("Image %s is missing from the media store", image.pk)
        return ""
    return name


def manifest_entry(image: GeneratedImage, name: str) -> dict[str, Any]:
    """What the manifest says of one image: its file in the zip ("" if missing) and what
    made it."""
    job = image.job
    return {
        "file": name or None,
        "missing": not name,
        "model": job.model,
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "parameters": job.parameters,
        "author": job.author.get_username(),
        "created_at": image.created_at.isoformat(),
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "review_state": image.review_state,
    }

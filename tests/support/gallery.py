"""The gallery in a real browser: a finished job's image as the gallery shows it, and
waiting for images to be drawn."""

from __future__ import annotations

from typing import Any

from PIL import Image

from studio.accounts.models import Membership
from studio.audit.models import Activity
from studio.generation.models import GeneratedImage
from tests.support.browser import finished_job


def stored_image(
    member: Membership,
    prompt: str,
    color: tuple[int, int, int],
    minutes_ago: int,
    size: tuple[int, int] = (640, 640),
    model: str = "wan2.6-t2i",
) -> GeneratedImage:
    """A finished job's image with its original and thumbnail on disk, as the gallery shows
    it, and the feed's line for the job."""
    job = finished_job(
        member,
        prompt,
        size=size,
        minutes_ago=minutes_ago,
        model=model,
        picture=lambda _: Image.new("RGB", size, color),
    )
    image = job.images.get()
    Activity.job_finished(job, [image.pk])
    return image


def loaded(page: Any, images: Any) -> None:
    for n in range(images.count()):
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=images.nth(n).element_handle()
        )

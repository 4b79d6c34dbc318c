"""Large reference images in a real browser: the designer's format is kept where the model
takes the file, and what fitting it cost is on its card before anything is sent."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studio.dashscope.catalog import MB
from studio.generation.models import StagedImage
from tests.support.browser import received, screenshot
from tests.support.inputs import add_images, card

pytestmark = [pytest.mark.django_db(transaction=True)]

MODEL = "wan2.7-image-pro"  # takes files up to 20 MB


def noise(side: int) -> Image.Image:
    """A square no compressor can shrink, so its file is as large as its pixels: 3 bytes each."""
    return Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    output = io.BytesIO()
    image.save(output, format=fmt, **options)
    return output.getvalue()


def open_edit(page: Any) -> None:
    page.goto(f"/edit/?model={MODEL}")
    assert page.locator("#edit-form").get_attribute("data-model") == MODEL


def received_so_far(worker: Any) -> list[dict[str, Any]]:
    # The emulator serves the whole session and writes its log from its first request.
    return received(worker, MODEL) if worker.log_path.exists() else []


def send(page: Any, worker: Any, earlier: int) -> list[dict[str, Any]]:
    """Submit the edit; the images the provider received, as its log describes them.

    `earlier` is how many requests other tests had sent: none more may have gone before
    the designer sends this one.
    """
    assert len(received_so_far(worker)) == earlier
    page.fill("textarea[name=prompt]", "Make the colours of image 1 warmer")
    page.get_by_role("button", name="Edit", exact=True).click()
    deadline = time.monotonic() + 60
    while len(bodies := received_so_far(worker)) == earlier and time.monotonic() < deadline:
        time.sleep(0.25)
    assert len(bodies) == earlier + 1, "nothing reached the provider"
    return list(inline_images(bodies[-1]))


def inline_images(value: Any) -> Any:
    if isinstance(value, dict):
        if "inline_image" in value:
            yield value
        for item in value.values():
            yield from inline_images(item)
    elif isinstance(value, list):
        for item in value:
            yield from inline_images(item)


def as_sent(staged: StagedImage, fmt: str) -> dict[str, Any]:
    return {
        "inline_image": fmt,
        "width": staged.width,
        "height": staged.height,
        "bytes": staged.bytes,
        "sha256": staged.sha256,
    }


def on_disk(folder: Path, name: str, data: bytes) -> Path:
    # Given as a path, the browser reads the file itself: tens of megabytes handed over as
    # a buffer take several seconds longer.
    path = folder / name
    path.write_bytes(data)
    return path


def test_a_30_mb_png_stays_png_and_its_card_says_what_fitting_it_cost(page, worker, tmp_path):
    upload = encoded(noise(3170), "PNG")
    assert 30 * MB < len(upload) < 31 * MB
    earlier = len(received_so_far(worker))
    open_edit(page)
    add_images(page, on_disk(tmp_path, "poster.png", upload))

    staged = StagedImage.objects.get()
    assert staged.mime == "image/png" and staged.bytes <= 20 * MB
    text = card(page, 1).inner_text()
    said = re.search(
        r"Scaled down from 3170×3170 to (\d+)×(\d+) to fit 20 MB and stay PNG, without "
        r"compression loss; 30\.1 MB → (\d+\.\d) MB\.",
        text,
    )
    assert said, text
    assert (int(said[1]), int(said[2])) == (staged.width, staged.height)
    # Scaled by about the least needed: the file comes close to the 20 MB it had to fit.
    assert 18.0 <= float(said[3]) <= 20.0
    assert "JPEG" not in text
    screenshot(page, "edit-30mb-png-card")

    assert send(page, worker, earlier) == [as_sent(staged, "PNG")]


@pytest.mark.parametrize(
    ("fmt", "mime", "options"),
    [("PNG", "image/png", {}), ("WEBP", "image/webp", {"lossless": True})],
)
def test_a_15_mb_file_goes_to_wan27_in_its_own_format_with_every_pixel(
    page, worker, tmp_path, fmt, mime, options
):
    picture = noise(2236)
    upload = encoded(picture, fmt, **options)
    assert 14.9 * MB < len(upload) < 16 * MB
    earlier = len(received_so_far(worker))
    open_edit(page)
    add_images(page, on_disk(tmp_path, f"texture.{fmt.lower()}", upload))

    staged = StagedImage.objects.get()
    assert (staged.mime, staged.width, staged.height) == (mime, 2236, 2236)
    assert card(page, 1).locator(".input-notes").count() == 0  # nothing done, nothing said
    with Image.open(io.BytesIO(staged.read())) as kept:
        assert kept.format == fmt and kept.convert("RGB").tobytes() == picture.tobytes()

    assert send(page, worker, earlier) == [as_sent(staged, fmt)]

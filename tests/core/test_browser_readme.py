"""The README's two pictures: Generate with results in place, and the gallery.

Taken at 1440×900 as a designer sees the window (not the whole page), from a team with a
few finished jobs, one still in line, and a board; copied to docs/screenshots/ by hand
when the pages change.
"""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

from studio.gallery.models import Board
from studio.generation.models import GeneratedImage
from tests.support.browser import ARTIFACTS, finished_job
from tests.support.factories import create_job_row

# Prompt, model, size and two colours of a gradient: stand-ins for what the models make.
WORK = [
    ("A lighthouse at dusk, oil painting", "wan2.6-t2i", (1280, 1280), "#2b3a67", "#f4a259"),
    (
        "Ceramic vase on a linen table, soft window light",
        "qwen-image-max",
        (1664, 928),
        "#d8c3a5",
        "#8e8d8a",
    ),
    (
        "Poster: night market in the rain, neon reflections",
        "wan2.7-image-pro",
        (928, 1664),
        "#0f0c29",
        "#e94560",
    ),
    (
        "Product shot of a brass desk lamp, studio background",
        "wan2.6-t2i",
        (1280, 960),
        "#f7f3e3",
        "#b08d57",
    ),
    (
        "A fox in a snowy birch forest, watercolour",
        "qwen-image-plus",
        (1280, 1280),
        "#e3f2fd",
        "#5c7c8a",
    ),
    ("Isometric tiny city block at sunrise", "wan2.7-image", (1664, 928), "#ffcf9d", "#4f6d7a"),
]


def picture(size: tuple[int, int], top: str, bottom: str) -> bytes:
    width, height = size
    image = Image.new("RGB", size, top)
    draw = ImageDraw.Draw(image)
    a = Image.new("RGB", (1, 1), top).getpixel((0, 0))
    b = Image.new("RGB", (1, 1), bottom).getpixel((0, 0))
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line(
            [(0, y), (width, y)], fill=tuple(round(a[i] + (b[i] - a[i]) * t) for i in range(3))
        )
    r = min(width, height) // 5
    draw.ellipse([width // 2 - r, height // 2 - r, width // 2 + r, height // 2 + r], fill=b)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def finished(
    member, prompt: str, model: str, size, top: str, bottom: str, minutes: int
) -> GeneratedImage:
    job = finished_job(
        member,
        prompt,
        size=size,
        minutes_ago=minutes,
        model=model,
        picture=lambda _: Image.open(io.BytesIO(picture(size, top, bottom))),
    )
    return job.images.get()


def test_the_readme_pictures(page, designer_member):
    made = [finished(designer_member, *work, minutes=10 * (n + 1)) for n, work in enumerate(WORK)]
    board = Board.objects.create(team=designer_member.team, name="Spring campaign")
    board.images.add(*made[:3])
    create_job_row(
        designer_member,
        model="wan2.6-t2i",
        prompt="A lighthouse at dawn, oil painting, wide",
        parameters={"size": "1696*960", "n": 2},
        images_requested=2,
    )
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    page.goto("/generate/")
    page.fill("textarea[name=prompt]", "A lighthouse at dawn, oil painting, wide")
    page.locator(".result-entry [data-tile=waiting]").first.wait_for()
    page.locator(".result-entry img[data-tile=image]").first.wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(folder / "readme-generate.png"))

    page.goto("/gallery/")
    page.locator(".gallery-card img").last.wait_for()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(folder / "readme-gallery.png"))
    assert page.locator(".gallery-card").count() == len(WORK)

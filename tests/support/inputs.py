"""Reference images on the Edit form in a real browser: pictures to add, the card of each,
and regions drawn on it by mouse."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw


def picture(width: int, height: int, *, fmt: str = "PNG", alpha: bool = False, **save) -> bytes:
    """A picture with a marked top-left corner, so a wrong rotation would show."""
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, (width, height), (70, 130, 180, 120) if alpha else (70, 130, 180))
    draw = ImageDraw.Draw(image)
    draw.rectangle(
        (0, 0, width // 4, height // 4), fill=(240, 200, 40, 255) if alpha else (240, 200, 40)
    )
    output = io.BytesIO()
    image.save(output, format=fmt, **save)
    return output.getvalue()


def file(name: str, data: bytes, mime: str) -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


def add_images(page: Any, *files: dict[str, Any]) -> None:
    before = page.locator("[data-input-cards] > li").count()
    page.set_input_files("input[name=files]", list(files))
    page.wait_for_function(
        "n => document.querySelectorAll('[data-input-cards] > li:not(.input-loading)').length >= n",
        arg=before + len(files),
    )


def card(page: Any, number: int) -> Any:
    return page.locator("[data-input]").nth(number - 1)


def draw_box(page: Any, number: int, box: tuple[int, int, int, int]) -> None:
    """Draw a region by mouse on image `number`, given in the normalised image's pixels."""
    item = card(page, number)
    if not item.locator("[data-stage] img").is_visible():
        item.locator("[data-open]").click()  # its thumbnail opens it large
    width = int(item.get_attribute("data-width"))
    height = int(item.get_attribute("data-height"))
    item.locator("[data-stage] img").scroll_into_view_if_needed()
    rect = item.locator("[data-stage] img").bounding_box()
    x1, y1, x2, y2 = box

    def screen(x: int, y: int) -> tuple[float, float]:
        return rect["x"] + x / width * rect["width"], rect["y"] + y / height * rect["height"]

    page.mouse.move(*screen(x1, y1))
    page.mouse.down()
    page.mouse.move(*screen((x1 + x2) // 2, (y1 + y2) // 2), steps=4)
    page.mouse.move(*screen(x2, y2), steps=4)
    page.mouse.up()


def boxes_of(page: Any, number: int) -> list[list[int]]:
    text = card(page, number).locator("[data-boxes]").input_value()
    return [[int(v) for v in part.split(",")] for part in text.split(";") if part.strip()]


def close_to(got: list[int], want: tuple[int, ...], tolerance: int = 2) -> bool:
    return len(got) == len(want) and all(
        abs(g - w) <= tolerance for g, w in zip(got, want, strict=True)
    )

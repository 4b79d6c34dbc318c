"""The emulator's result images: real PNGs that show what was asked.

A text-to-image result is a colour field with the prompt written on it. An edit result lays
the input images out in a grid, each labelled "Image N", with every region of `bbox_list`
outlined and numbered where it was drawn, and the prompt below. So a person can see that
regions landed where they were drawn, and a test can check pixels at `box_on_canvas()`.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont, ImageOps

from studio.dashscope.emulator.request import Box

BOX_COLOUR = (255, 0, 255)  # magenta: rare in photos, easy to find in a test
PROMPT_BAND = 0.22  # share of the height kept for the prompt on edit results


@dataclass(frozen=True)
class Sketch:
    """An input image, shrunk to its cell, with its regions in its own original pixels.

    Kept as JPEG bytes: tasks live for a day, and raw pixels would hold megabytes each.
    """

    jpeg: bytes
    original_size: tuple[int, int]
    boxes: tuple[Box, ...]


@dataclass(frozen=True)
class RenderPlan:
    width: int
    height: int
    prompt: str
    model: str
    index: int  # 0-based position among the request's images
    count: int
    seed: int | None
    sketches: tuple[Sketch, ...] = ()


@dataclass(frozen=True)
class Placement:
    left: int
    top: int
    scale: float  # canvas pixels per original pixel


def cells(count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The grid cells (left, top, cell width, cell height) that inputs are laid out in."""
    area_height = int(height * (1 - PROMPT_BAND))
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_w, cell_h = width // columns, area_height // rows
    return [((i % columns) * cell_w, (i // columns) * cell_h, cell_w, cell_h) for i in range(count)]


def placements(sizes: list[tuple[int, int]], width: int, height: int) -> list[Placement]:
    """Where each original image sits on the canvas, fitted and centred in its cell."""
    result = []
    for (w, h), (left, top, cell_w, cell_h) in zip(
        sizes, cells(len(sizes), width, height), strict=True
    ):
        margin = max(4, min(cell_w, cell_h) // 40)
        scale = min((cell_w - 2 * margin) / w, (cell_h - 2 * margin) / h)
        result.append(
            Placement(
                left=left + (cell_w - round(w * scale)) // 2,
                top=top + (cell_h - round(h * scale)) // 2,
                scale=scale,
            )
        )
    return result


def box_on_canvas(placement: Placement, box: Box) -> Box:
    x1, y1, x2, y2 = box
    s = placement.scale
    return (
        placement.left + round(x1 * s),
        placement.top + round(y1 * s),
        placement.left + round(x2 * s),
        placement.top + round(y2 * s),
    )


def sketch(data: bytes, boxes: tuple[Box, ...], cell: tuple[int, int]) -> Sketch:
    """Decode an input image once, at the size it will be drawn."""
    with Image.open(io.BytesIO(data)) as opened:
        original_size = opened.size
        opened.draft("RGB", cell)  # JPEG decodes straight at a smaller scale
        image = opened.convert("RGB")
    image.thumbnail(cell)
    output = io.BytesIO()
    image.save(output, format="JPEG", quality=90)
    return Sketch(jpeg=output.getvalue(), original_size=original_size, boxes=boxes)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(10, size))


def _wrap(
    draw: ImageDraw.ImageDraw,
    text: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    width: int,
    max_lines: int,
) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if draw.textlength(candidate, font=font) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
        if len(lines) == max_lines:
            break
    if line and len(lines) < max_lines:
        lines.append(line)
    if len(lines) == max_lines and " ".join(lines) != " ".join(text.split()):
        lines[-1] = lines[-1].rstrip(".") + " …"
    return lines


def _background(plan: RenderPlan) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{plan.prompt}|{plan.seed}|{plan.index}".encode()).digest()
    # Muted colours keep the text and the magenta boxes readable.
    return (60 + digest[0] % 120, 60 + digest[1] % 120, 60 + digest[2] % 120)


def render_png(plan: RenderPlan) -> bytes:
    canvas = Image.new("RGB", (plan.width, plan.height), _background(plan))
    draw = ImageDraw.Draw(canvas)
    unit = max(plan.width, plan.height) / 100
    if plan.sketches:
        _draw_inputs(canvas, draw, plan, unit)
        text_top = int(plan.height * (1 - PROMPT_BAND))
    else:
        text_top = int(plan.height * 0.2)
    font = _font(int(unit * 2.6))
    margin = int(unit * 3)
    lines = _wrap(draw, plan.prompt, font, plan.width - 2 * margin, max_lines=8)
    line_height = int(unit * 3.2)
    for number, line in enumerate(lines):
        draw.text(
            (margin, text_top + margin // 2 + number * line_height),
            line,
            fill=(255, 255, 255),
            font=font,
        )
    caption = f"{plan.model} · {plan.width}x{plan.height} · image {plan.index + 1} of {plan.count}"
    if plan.seed is not None:
        caption += f" · seed {plan.seed + plan.index}"
    draw.text(
        (margin, plan.height - int(unit * 2.5)),
        caption,
        fill=(235, 235, 235),
        font=_font(int(unit * 1.4)),
    )
    output = io.BytesIO()
    canvas.save(output, format="PNG", compress_level=1)
    return output.getvalue()


def _draw_inputs(
    canvas: Image.Image, draw: ImageDraw.ImageDraw, plan: RenderPlan, unit: float
) -> None:
    sizes = [s.original_size for s in plan.sketches]
    label_font = _font(int(unit * 1.8))
    line = max(3, round(unit * 0.4))
    for number, (item, place) in enumerate(
        zip(plan.sketches, placements(sizes, plan.width, plan.height), strict=True), start=1
    ):
        w, h = item.original_size
        with Image.open(io.BytesIO(item.jpeg)) as shrunk:
            shrunk.load()
        fitted = ImageOps.contain(
            shrunk, (max(1, round(w * place.scale)), max(1, round(h * place.scale)))
        )
        canvas.paste(fitted, (place.left, place.top))
        draw.text(
            (place.left + line, place.top + line),
            f"Image {number}",
            fill=(255, 255, 255),
            font=label_font,
            stroke_width=2,
            stroke_fill=(0, 0, 0),
        )
        for box_number, box in enumerate(item.boxes, start=1):
            x1, y1, x2, y2 = box_on_canvas(place, box)
            draw.rectangle((x1, y1, x2, y2), outline=BOX_COLOUR, width=line)
            tag = f"{number}.{box_number}"
            tag_w = draw.textlength(tag, font=label_font) + 2 * line
            draw.rectangle((x1, max(0, y1 - unit * 2.4), x1 + tag_w, y1), fill=BOX_COLOUR)
            draw.text((x1 + line, max(0, y1 - unit * 2.4)), tag, fill=(0, 0, 0), font=label_font)

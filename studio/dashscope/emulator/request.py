"""A generation request as the service reads it: the prompt, the input images, the options."""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in the image's own pixels, origin top-left


@dataclass(frozen=True)
class ImageFacts:
    """What an input image is, read from its bytes."""

    format: str
    width: int
    height: int
    bytes: int
    has_alpha: bool
    sha256: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class InputImage:
    data: bytes
    facts: ImageFacts


@dataclass(frozen=True)
class Swatch:
    hex: str
    ratio: str


@dataclass(frozen=True)
class Generation:
    """One request as read off the wire: None is a parameter that was not sent."""

    model: str  # as sent: a name or a dated snapshot
    prompt: str
    negative_prompt: str | None = None
    images: tuple[InputImage, ...] = ()
    size: str | None = None
    n: int | None = None
    seed: int | None = None
    watermark: bool | None = None
    prompt_extend: bool | None = None
    thinking_mode: bool | None = None
    enable_sequential: bool | None = None
    bbox_list: tuple[tuple[object, ...], ...] | None = None
    color_palette: tuple[Swatch, ...] | None = None
    enable_interleave: bool | None = None
    max_images: int | None = None
    stream: bool | None = None  # parameters.stream as sent; the SSE header is the switch
    # Options sent that the model does not take: ignored, or refused under
    # Reading.UNSUPPORTED_REFUSED.
    unsupported: tuple[str, ...] = ()

    @property
    def sequential(self) -> bool:
        return bool(self.enable_sequential)

    @property
    def interleaved(self) -> bool:
        return bool(self.enable_interleave)

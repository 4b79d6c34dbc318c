"""The types the emulator's rules are written in: endpoints, body and result shapes, and limits.

What a model takes is a `ModelRules` made of these (a `Span` of n, a `SizeRule`, an
`ImageRule`, `TextLimit`s); the tables themselves are `qwen_models.py` and `wan_models.py`,
each value with the line of the seed document it comes from (see `rules.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

MB = 1000 * 1000
MIB = 1024 * 1024
SEED_MAX = 2_147_483_647  # [D-QI] via protocol §6: seed in [0, 2147483647]
IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")  # S2:718-720 (JPG is JPEG)


# -- endpoints ------------------------------------------------------------------------------


class BodyStyle(StrEnum):
    MESSAGES = "messages"  # input.messages[0].content = [{"text"}, {"image"}, ...]: S2:848
    PROMPT = "prompt"  # input.prompt (+ input.negative_prompt): [D-T2I] via protocol §4.2
    PROMPT_IMAGES = "prompt+images"  # input.prompt + input.images: S2:849


class Endpoint(StrEnum):
    """Paths under the `/api/v1` base."""

    MULTIMODAL_GENERATION = "/services/aigc/multimodal-generation/generation"  # S0:303, S2:255
    IMAGE_GENERATION = "/services/aigc/image-generation/generation"  # S0:561, S2:537 (async)
    TEXT2IMAGE = "/services/aigc/text2image/image-synthesis"  # [D-T2I][D-QI] via protocol §3
    IMAGE2IMAGE = "/services/aigc/image2image/image-synthesis"  # [D-W25] via protocol §3

    @property
    def body_style(self) -> BodyStyle:
        return _BODY_STYLES[self]

    @property
    def is_async(self) -> bool:
        # Every path but the sync one needs `X-DashScope-Async: enable`: S0:553, S2:540.
        return self is not Endpoint.MULTIMODAL_GENERATION


_BODY_STYLES = {
    Endpoint.MULTIMODAL_GENERATION: BodyStyle.MESSAGES,
    Endpoint.IMAGE_GENERATION: BodyStyle.MESSAGES,
    Endpoint.TEXT2IMAGE: BodyStyle.PROMPT,
    Endpoint.IMAGE2IMAGE: BodyStyle.PROMPT_IMAGES,
}


class ResultShape(StrEnum):
    """How a model lays out its images in a messages-protocol answer."""

    QWEN = "qwen"  # one choice, content items without "type"; usage width/height: S0:185-203
    ONE_CHOICE = "one-choice"  # wan2.7: one choice of n typed items: S2:287, [D-W27]
    CHOICE_PER_IMAGE = "choice-per-image"  # wan2.6: a choice per image: [D-W26] via §5.1


class Unit(StrEnum):
    """What a text limit counts."""

    CHARACTERS = "characters"  # S2:770 "文字"
    TOKENS = "tokens"  # Qwen tokenizer tokens: [D-QI] via protocol §6 and §10.5


class Option(StrEnum):
    """Request parameters beyond prompt, size and n that only some models take."""

    NEGATIVE_PROMPT = "negative_prompt"
    PROMPT_EXTEND = "prompt_extend"
    WATERMARK = "watermark"
    SEED = "seed"
    BBOX_LIST = "bbox_list"
    THINKING_MODE = "thinking_mode"
    ENABLE_SEQUENTIAL = "enable_sequential"
    COLOR_PALETTE = "color_palette"
    ENABLE_INTERLEAVE = "enable_interleave"  # wan2.6-image: [D-W26] via protocol §6
    MAX_IMAGES = "max_images"  # wan2.6-image, interleaved mode only: [D-W26] via §6


# -- the rule types -------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """Whole numbers from `low` to `high` inclusive, and the value when none is sent."""

    low: int
    high: int
    default: int

    def __contains__(self, value: object) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
        )


@dataclass(frozen=True)
class Aspect:
    """Allowed width/height ratios, inclusive: Aspect(1, 8) is 1:8 up to 8:1."""

    low: int
    high: int

    def allows(self, width: int, height: int) -> bool:
        # Cross-multiplied in whole numbers: 240x1920 is exactly 1:8 and passes.
        return width * self.high >= height * self.low and width * self.low <= height * self.high

    def clamp(self, ratio: float) -> float:
        return min(max(ratio, self.low / self.high), self.high / self.low)

    def __str__(self) -> str:
        return f"{self.low}:{self.high} and {self.high}:{self.low}"


@dataclass(frozen=True)
class TextLimit:
    max: int
    unit: Unit = Unit.CHARACTERS


@dataclass(frozen=True)
class ImageRule:
    """What input images a model takes."""

    count: tuple[int, int]  # (least, most)
    min_side: int
    max_side: int
    max_bytes: int
    aspect: Aspect | None  # None: unrestricted
    formats: tuple[str, ...] = IMAGE_FORMATS
    alpha: bool = False  # S2:718: PNG "alpha channel not supported", read as refused


@dataclass(frozen=True)
class SizeRule:
    """What `parameters.size` may be ("W*H": S0:622), and what comes out."""

    default: str
    fixed: tuple[tuple[int, int], ...] = ()  # when set, only these sizes
    tiers: dict[str, int] = field(default_factory=dict)  # tier -> side of its square area
    text_to_image_only_tiers: frozenset[str] = frozenset()
    min_pixels: int = 0
    max_pixels: int = 0
    max_pixels_text_to_image: int = 0  # a larger ceiling without input images, if any
    min_side: int = 0  # 0: not limited beyond the pixels and the aspect
    max_side: int = 0
    aspect: Aspect | None = None
    snap: int = 1  # output sides are rounded to a multiple of this
    follows_last_image: bool = False  # with input images, output takes the last one's aspect

    def ceiling(self, *, has_images: bool) -> int:
        if not has_images and self.max_pixels_text_to_image:
            return self.max_pixels_text_to_image
        return self.max_pixels


@dataclass(frozen=True)
class InterleaveRule:
    """A model's mixed text-and-image mode: its own image count, size, n and max_images."""

    images: tuple[int, int]  # (least, most) input images
    size: SizeRule
    n: Span
    max_images: Span  # an upper bound: the model decides how many it makes


@dataclass(frozen=True)
class ModelRules:
    name: str
    sync_endpoint: Endpoint | None
    async_endpoint: Endpoint | None
    prompt: TextLimit
    size: SizeRule
    n: Span
    result_shape: ResultShape
    negative_prompt: TextLimit | None = None  # None: not taken
    images: ImageRule | None = None  # None: text only
    n_async: Span | None = None  # a different n on the async path, if any
    n_sequential: Span | None = None
    options: frozenset[Option] = frozenset()
    max_boxes_per_image: int = 0
    palette_colours: tuple[int, int] = (3, 10)
    aliases: tuple[str, ...] = ()  # dated snapshots the provider also answers to
    refuses_unsupported: bool = False  # Reading.UNSUPPORTED_REFUSED
    interleave: InterleaveRule | None = None  # None: no mixed text-and-image mode

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in (self.sync_endpoint, self.async_endpoint) if e is not None)

    def takes(self, option: Option) -> bool:
        return option in self.options

    def n_range(self, *, asynchronous: bool, sequential: bool) -> Span:
        if sequential and self.n_sequential is not None:
            return self.n_sequential
        if asynchronous and self.n_async is not None:
            return self.n_async
        return self.n


# Every model takes these two.
COMMON_OPTIONS = frozenset({Option.WATERMARK, Option.SEED})  # S0:323, S2:275; seed [D-QI] §6

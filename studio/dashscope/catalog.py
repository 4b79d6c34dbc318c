"""The DashScope image models the studio can use, as data.

One entry per model of the provider's documents. The forms and the client's pre-flight
validation read this table; nothing else in the studio should hard-code a limit. The
emulator does not: it keeps its own table (emulator/rules.py), and a test compares the two.

Where the provider's documents disagree, the studio holds itself to the reading every
version accepts; docs/provider.md says which, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

MB = 1000 * 1000  # the documents' "10 MB" may mean either: the studio sends what fits both
MIB = 1024 * 1024


def megabytes(size: int) -> str:
    """A limit as the documents write it: 10 MB for 10,000,000 bytes and for 10 MiB."""
    return f"{size // MIB if size % MIB == 0 else round(size / MB)} MB"


class Endpoint(StrEnum):
    """Paths under the `/api/v1` base."""

    MULTIMODAL_GENERATION = "/services/aigc/multimodal-generation/generation"  # sync
    IMAGE_GENERATION = "/services/aigc/image-generation/generation"  # async
    TEXT2IMAGE = "/services/aigc/text2image/image-synthesis"  # async, legacy
    IMAGE2IMAGE = "/services/aigc/image2image/image-synthesis"  # async, legacy

    @property
    def body_style(self) -> BodyStyle:
        return _BODY_STYLES[self]

    @property
    def is_async(self) -> bool:
        return self is not Endpoint.MULTIMODAL_GENERATION


class BodyStyle(StrEnum):
    MESSAGES = "messages"  # input.messages[0].content = [{"text"}, {"image"}, ...]
    PROMPT = "prompt"  # input.prompt (+ input.negative_prompt)
    PROMPT_IMAGES = "prompt+images"  # input.prompt + input.images


_BODY_STYLES = {
    Endpoint.MULTIMODAL_GENERATION: BodyStyle.MESSAGES,
    Endpoint.IMAGE_GENERATION: BodyStyle.MESSAGES,
    Endpoint.TEXT2IMAGE: BodyStyle.PROMPT,
    Endpoint.IMAGE2IMAGE: BodyStyle.PROMPT_IMAGES,
}


class TextUnit(StrEnum):
    """What a text limit counts: the Qwen models count tokens of their own tokenizer."""

    CHARACTERS = "characters"
    TOKENS = "tokens"


class Kind(StrEnum):
    TEXT_TO_IMAGE = "text-to-image"
    EDIT = "edit"


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
    ENABLE_INTERLEAVE = "enable_interleave"  # mixed text and images, streamed
    MAX_IMAGES = "max_images"  # at most this many images in mixed text and images


class ResultShape(StrEnum):
    """How a model lays out its images in a messages-protocol result."""

    QWEN = "qwen"  # one choice, n content items without "type"; usage has width/height
    ONE_CHOICE = "one-choice"  # wan2.7: one choice, n {"image", "type": "image"} items
    CHOICE_PER_IMAGE = "choice-per-image"  # wan2.6: n choices of one image each


SEED_MAX = 2_147_483_647
ACCEPTED_IMAGE_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")


@dataclass(frozen=True)
class Range:
    min: int
    max: int
    default: int

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and self.min <= value <= self.max


@dataclass(frozen=True)
class AspectRange:
    """Allowed width/height ratios, inclusive: (1, 8) means 1:8 up to 8:1."""

    low: int
    high: int

    def allows(self, width: int, height: int) -> bool:
        # Integer cross-multiplication: 240x1920 is exactly 1:8 and must pass.
        return width * self.high >= height * self.low and width * self.low <= height * self.high

    def clamp(self, ratio: float) -> float:
        return min(max(ratio, self.low / self.high), self.high / self.low)

    def __str__(self) -> str:
        return f"{self.low}:{self.high} to {self.high}:{self.low}"


@dataclass(frozen=True)
class ImageInputRule:
    count: tuple[int, int]  # (min, max) input images in editing mode
    min_side: int
    max_side: int
    max_bytes: int  # what the studio sends at most
    aspect: AspectRange | None  # None: unrestricted
    formats: tuple[str, ...] = ACCEPTED_IMAGE_FORMATS
    alpha: bool = False  # PNG with an alpha channel is not accepted by any model


@dataclass(frozen=True)
class SizeRule:
    """What `parameters.size` may be, and what comes out.

    A size is either a tier name ("1K", "2K", "4K"), a fixed "W*H" from `fixed`, or a
    custom "W*H" within the pixel and aspect ranges.
    """

    default: str
    fixed: tuple[tuple[int, int], ...] = ()  # when set, only these sizes
    tiers: dict[str, int] = field(default_factory=dict)  # tier -> side of the square area
    text_to_image_only_tiers: frozenset[str] = frozenset()
    min_pixels: int = 0
    max_pixels: int = 0
    max_pixels_text_to_image: int = 0  # a larger ceiling without input images, if any
    min_side: int = 0  # each of width and height, when the documents limit it
    max_side: int = 0
    aspect: AspectRange | None = None
    recommended: tuple[tuple[int, int], ...] = ()  # presets the forms offer
    snap: int = 1  # output sides are rounded to a multiple of this
    follows_last_image: bool = False  # with input images, output takes the last one's aspect

    def max_pixels_for(self, *, has_images: bool) -> int:
        if not has_images and self.max_pixels_text_to_image:
            return self.max_pixels_text_to_image
        return self.max_pixels


@dataclass(frozen=True)
class InterleaveRule:
    """A model's mixed text-and-image mode: streamed from the sync endpoint only, with
    its own input images, size and n; `max_images` bounds the pictures the model adds."""

    images: tuple[int, int]  # (min, max) input images
    size: SizeRule
    n: Range
    max_images: Range


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str  # "qwen-image" or "wan"
    kinds: frozenset[Kind]
    label: str
    hint: str  # one line a designer reads in the model picker
    sync_endpoint: Endpoint | None
    async_endpoint: Endpoint | None
    prompt_max: int  # in prompt_unit
    size: SizeRule
    n: Range
    result_shape: ResultShape
    negative_prompt_max_chars: int | None = None
    prompt_unit: TextUnit = TextUnit.CHARACTERS
    images: ImageInputRule | None = None  # None: text only
    n_sequential: Range | None = None
    options: frozenset[Option] = frozenset()
    prompt_extend_default: bool = True
    thinking_mode_default: bool = True
    max_boxes_per_image: int = 0
    color_palette_items: tuple[int, int] = (3, 10)
    aliases: tuple[str, ...] = ()  # dated snapshots the provider also answers to
    interleave: InterleaveRule | None = None  # None: no mixed text-and-image mode

    def endpoint(self, *, asynchronous: bool) -> Endpoint | None:
        return self.async_endpoint if asynchronous else self.sync_endpoint

    def supports(self, option: Option) -> bool:
        return option in self.options

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in (self.sync_endpoint, self.async_endpoint) if e is not None)

    @property
    def requires_images(self) -> bool:
        return self.images is not None and self.images.count[0] > 0

    def interleaved(self) -> ModelSpec:
        """The spec as its mixed text-and-image mode limits it: that mode's input image
        count, size and n in place of editing's."""
        mode = self.interleave
        if mode is None:
            raise ValueError(f"{self.name} has no mixed text-and-image mode.")
        images = replace(self.images, count=mode.images) if self.images else None
        label = f"{self.label} (text and images)"
        return replace(self, label=label, images=images, size=mode.size, n=mode.n, interleave=None)


_COMMON = frozenset({Option.WATERMARK, Option.SEED})
_QWEN_OPTIONS = _COMMON | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}
_WAN26_OPTIONS = _COMMON | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}
_WAN26_IMAGE_OPTIONS = _WAN26_OPTIONS | {Option.ENABLE_INTERLEAVE, Option.MAX_IMAGES}
_WAN27_OPTIONS = _COMMON | {
    Option.BBOX_LIST,
    Option.THINKING_MODE,
    Option.ENABLE_SEQUENTIAL,
    Option.COLOR_PALETTE,
}

_QWEN2_SIZE = SizeRule(
    default="2048*2048",
    min_pixels=512 * 512,
    max_pixels=2048 * 2048,
    recommended=((2688, 1536), (1536, 2688), (2048, 2048), (2368, 1728), (1728, 2368)),
)
_QWEN_FIXED_SIZE = SizeRule(
    default="1664*928",
    fixed=((1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664)),
)
# wan2.6-t2i and wan2.5-t2i-preview: seed 000 says both "total pixels 1280*1280 to
# 1440*1440" (S0:107) and, for Wan V2 models from 2.0 on, "each side 512 to 1440, total at
# most 1440*1440" (S0:648). The studio sends only sizes both readings accept; the seed's
# common sizes below 1280*1280 (1024*1024, 1440*810, ...) are therefore not offered.
# docs/provider.md records the decision.
_WAN_T2I_SIZE = SizeRule(
    default="1280*1280",
    min_pixels=1280 * 1280,
    max_pixels=1440 * 1440,
    min_side=512,
    max_side=1440,
    aspect=AspectRange(1, 4),
    recommended=((1280, 1280), (1440, 1152), (1152, 1440), (1440, 1440)),
)
_WAN27_IMAGES = ImageInputRule(
    count=(0, 9),
    min_side=240,
    max_side=8000,
    max_bytes=20 * MB,  # S2:728's 20 MB in the smaller sense of MB, which fits either
    aspect=AspectRange(1, 8),
)


def _wan27(name: str, *, pro: bool) -> ModelSpec:
    tiers = {"1K": 1024, "2K": 2048}
    if pro:
        tiers["4K"] = 4096
    return ModelSpec(
        name=name,
        family="wan",
        kinds=frozenset({Kind.TEXT_TO_IMAGE, Kind.EDIT}),
        label="Wan 2.7 Image Pro" if pro else "Wan 2.7 Image",
        hint=(
            "Precise edits of up to 9 images with regions; 4K text-to-image."
            if pro
            else "Precise edits of up to 9 images with regions, faster and cheaper."
        ),
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=Endpoint.IMAGE_GENERATION,
        prompt_max=5000,
        images=_WAN27_IMAGES,
        size=SizeRule(
            default="2K",
            tiers=tiers,
            text_to_image_only_tiers=frozenset({"4K"}) if pro else frozenset(),
            min_pixels=768 * 768,
            max_pixels=2048 * 2048,
            max_pixels_text_to_image=4096 * 4096 if pro else 0,
            aspect=AspectRange(1, 8),
            follows_last_image=True,
        ),
        n=Range(1, 4, 1),
        n_sequential=Range(1, 12, 12),
        result_shape=ResultShape.ONE_CHOICE,
        options=_WAN27_OPTIONS,
        max_boxes_per_image=2,
    )


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="qwen-image-2.0-pro",
        family="qwen-image",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Qwen-Image 2.0 Pro",
        hint="Best at text in images: posters, slides, signage; any size up to 2048².",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=None,
        prompt_max=1300,  # tokens, as the provider counts ([D-QI]; the seeds are silent)
        negative_prompt_max_chars=500,
        prompt_unit=TextUnit.TOKENS,
        size=_QWEN2_SIZE,
        n=Range(1, 6, 1),
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-2.0-pro-2026-04-22", "qwen-image-2.0-pro-2026-03-03"),
    ),
    ModelSpec(
        name="qwen-image-2.0",
        family="qwen-image",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Qwen-Image 2.0",
        hint="Clear text rendering and custom sizes, faster than Pro.",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=None,
        prompt_max=1300,
        negative_prompt_max_chars=500,
        prompt_unit=TextUnit.TOKENS,
        size=_QWEN2_SIZE,
        n=Range(1, 6, 1),
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-2.0-2026-03-03",),
    ),
    ModelSpec(
        name="qwen-image-max",
        family="qwen-image",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Qwen-Image Max",
        hint="Rich Chinese and English text in five fixed sizes.",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=None,
        prompt_max=800,
        negative_prompt_max_chars=500,
        prompt_unit=TextUnit.TOKENS,
        size=_QWEN_FIXED_SIZE,
        n=Range(1, 1, 1),
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-max-2025-12-30",),
    ),
    ModelSpec(
        name="qwen-image-plus",
        family="qwen-image",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Qwen-Image Plus",
        hint="Text-heavy layouts in five fixed sizes; also runs in the background.",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=Endpoint.TEXT2IMAGE,
        prompt_max=800,
        negative_prompt_max_chars=500,
        prompt_unit=TextUnit.TOKENS,
        size=_QWEN_FIXED_SIZE,
        n=Range(1, 1, 1),
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-plus-2026-01-09",),
    ),
    ModelSpec(
        name="qwen-image",
        family="qwen-image",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Qwen-Image",
        hint="The original Qwen-Image: text rendering in five fixed sizes.",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=Endpoint.TEXT2IMAGE,
        prompt_max=800,
        negative_prompt_max_chars=500,
        prompt_unit=TextUnit.TOKENS,
        size=_QWEN_FIXED_SIZE,
        n=Range(1, 1, 1),
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
    ),
    ModelSpec(
        name="wan2.6-t2i",
        family="wan",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Wan 2.6",
        hint="Photorealistic scenes and portraits; good text; up to 4 images at once.",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=Endpoint.IMAGE_GENERATION,
        prompt_max=2100,
        negative_prompt_max_chars=500,
        size=_WAN_T2I_SIZE,
        n=Range(1, 4, 4),
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN26_OPTIONS,
    ),
    ModelSpec(
        name="wan2.5-t2i-preview",
        family="wan",
        kinds=frozenset({Kind.TEXT_TO_IMAGE}),
        label="Wan 2.5 (preview)",
        hint="Photorealistic images and artistic styles; background only.",
        sync_endpoint=None,
        async_endpoint=Endpoint.TEXT2IMAGE,
        prompt_max=2000,
        negative_prompt_max_chars=500,
        size=_WAN_T2I_SIZE,
        n=Range(1, 4, 4),
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN26_OPTIONS,
    ),
    _wan27("wan2.7-image-pro", pro=True),
    _wan27("wan2.7-image", pro=False),
    ModelSpec(
        name="wan2.6-image",
        family="wan",
        kinds=frozenset({Kind.EDIT}),
        label="Wan 2.6 Image",
        hint="Stylised edits from up to 4 references; can write text into the image.",
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,
        async_endpoint=Endpoint.IMAGE_GENERATION,
        prompt_max=2000,
        negative_prompt_max_chars=500,
        images=ImageInputRule(
            count=(1, 4),
            min_side=240,
            max_side=8000,
            max_bytes=10 * MB,
            aspect=None,
        ),
        size=SizeRule(
            default="1K",
            tiers={"1K": 1280, "2K": 2048},
            min_pixels=768 * 768,
            max_pixels=2048 * 2048,
            aspect=AspectRange(1, 4),
            snap=16,
            follows_last_image=True,
        ),
        n=Range(1, 4, 4),
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN26_IMAGE_OPTIONS,
        # Mixed text and images ([D-W26]): 0 or 1 input image, W*H only, total pixels
        # 768² to 1280²; without a size the input's (within that range) or 1280*1280;
        # sides snapped to 16; n must be 1; max_images 1 to 5, default 5, an upper bound.
        interleave=InterleaveRule(
            images=(0, 1),
            size=SizeRule(
                default="1280*1280",
                min_pixels=768 * 768,
                max_pixels=1280 * 1280,
                snap=16,
                follows_last_image=True,
            ),
            n=Range(1, 1, 1),
            max_images=Range(1, 5, 5),
        ),
    ),
    ModelSpec(
        name="wan2.5-i2i-preview",
        family="wan",
        kinds=frozenset({Kind.EDIT}),
        label="Wan 2.5 Edit (preview)",
        hint="Simple edits and blending of up to 3 images; background only.",
        sync_endpoint=None,
        async_endpoint=Endpoint.IMAGE2IMAGE,
        prompt_max=2000,
        negative_prompt_max_chars=500,
        images=ImageInputRule(
            count=(1, 3),
            min_side=384,
            max_side=5000,
            max_bytes=10 * MB,
            aspect=AspectRange(1, 4),
        ),
        size=SizeRule(
            default="1280*1280",
            min_pixels=768 * 768,
            max_pixels=1280 * 1280,
            aspect=AspectRange(1, 4),
            follows_last_image=True,
        ),
        n=Range(1, 4, 4),
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN26_OPTIONS,
    ),
)

CATALOG: dict[str, ModelSpec] = {spec.name: spec for spec in MODELS}
_BY_ALIAS: dict[str, ModelSpec] = {
    alias: spec for spec in MODELS for alias in (spec.name, *spec.aliases)
}


class UnknownModel(KeyError):
    pass


def get_model(name: str) -> ModelSpec:
    """The spec for a model name or one of its dated snapshot names."""
    try:
        return _BY_ALIAS[name]
    except KeyError:
        raise UnknownModel(name) from None


def models_for(kind: Kind) -> tuple[ModelSpec, ...]:
    return tuple(spec for spec in MODELS if kind in spec.kinds)

"""The emulator's own reading of the provider: models, endpoints, limits and outputs.

Written from the provider's documents, not from the studio's catalog or its validation, so
that a wrong belief of the client about the provider shows up as a refusal or a surprise
here instead of passing every test. Nothing in this package may import
`studio.dashscope.catalog` or `studio.dashscope.validation` (a test checks).

Each rule carries its source:
- `S0:624` is line 624 of seed 000, the provider's Text-to-Image guide (Japanese);
  `S1` is the same guide in Chinese, `S2` the Wan image-editing guide (Japanese).
- Where the seeds are silent, a bracketed tag names the official reference that says it,
  as the protocol reference cites it: [D-QI] Qwen text-to-image API, [D-T2I] Wan
  text-to-image V2 API, [D-W25] / [D-W26] / [D-W27] Wan 2.5 / 2.6 / 2.7 image API,
  [D-EDIT-zh] the Chinese image-editing guide with its full size table; "protocol §6" is
  the section of the protocol reference that quotes it.

Where the documents contradict each other, the table holds the emulator's default reading
and `Reading` names the other one, which a flag selects (docs/provider.md). The default is
the widest reading the provider's own documents (the seeds and the official references)
give; a reading found only in third-party copies is never the default.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

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


# -- readings of the documents' contradictions ----------------------------------------------


class Reading(StrEnum):
    """A reading of a contradiction the emulator plays instead of its default one."""

    # S0:107 and S0:648 together (and the official aspect range): what every reading
    # accepts, instead of the widest documented range [768², 1440²].
    WAN_T2I_SIZE_STRICT = "wan-t2i-size-strict"
    # "MB" as 10^6 bytes, and wan2.7 files at 10 MB as other copies say, instead of
    # 20 MB (S2:728) and MB as 2^20.
    FILE_SIZE_STRICT = "file-size-strict"
    # qwen-image-plus and qwen-image make 1 to 4 images on the async path, as third-party
    # copies say, instead of exactly one ([D-QI]).
    QWEN_ASYNC_N_UP_TO_4 = "qwen-async-n-1-4"
    # A parameter a model "does not support" (S2:780, S2:799, S2:820), or a combination
    # documented as not allowed, is refused instead of ignored.
    UNSUPPORTED_REFUSED = "unsupported-refused"
    # S0:600: the prompt and negative prompt in `input` on the messages endpoints too.
    PROMPT_IN_INPUT = "prompt-in-input"
    # qwen-image-max/plus make 1328*1328 when no size is sent (older copies) instead of
    # 1664*928 (S0:638).
    QWEN_DEFAULT_SQUARE = "qwen-default-1328"
    # wan2.7 "2K" makes about 1024² pixels, as S2:301's answer (1488*704) shows, instead of
    # about 2048² (S2:116, S2:600).
    WAN27_2K_AS_1K = "wan27-2k-as-1k"


# What `--seed-reading strict` selects: every reading that refuses more than the default.
STRICT = frozenset(
    {
        Reading.WAN_T2I_SIZE_STRICT,
        Reading.FILE_SIZE_STRICT,
        Reading.UNSUPPORTED_REFUSED,
    }
)
_PRESETS = {"lenient": frozenset[Reading](), "strict": STRICT}


def parse_readings(text: str | Iterable[str]) -> frozenset[Reading]:
    """`strict`, `lenient`, or reading names, comma-separated (`strict,wan27-2k-as-1k`)."""
    chunks = [text] if isinstance(text, str) else list(text)
    parts = [part for chunk in chunks for part in chunk.split(",")]
    readings: set[Reading] = set()
    for part in (p.strip().lower() for p in parts):
        if not part:
            continue
        if part in _PRESETS:
            readings |= _PRESETS[part]
            continue
        try:
            readings.add(Reading(part))
        except ValueError:
            names = ", ".join([*_PRESETS, *(r.value for r in Reading)])
            raise ValueError(f"Unknown seed reading {part!r}: use one of {names}.") from None
    return frozenset(readings)


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


# -- the table ------------------------------------------------------------------------------

_COMMON = frozenset({Option.WATERMARK, Option.SEED})  # S0:323, S2:275; seed [D-QI] §6
# negative_prompt: S0:600, S0:321; prompt_extend: S0:610
_QWEN_OPTIONS = _COMMON | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}
_WAN_T2I_OPTIONS = _COMMON | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}  # S0:583, S0:610
_WAN27_OPTIONS = _COMMON | {  # bbox_list: S2:820; the rest [D-W27] via protocol §6
    Option.BBOX_LIST,
    Option.THINKING_MODE,
    Option.ENABLE_SEQUENTIAL,
    Option.COLOR_PALETTE,
}
# negative_prompt S2:781-782; prompt_extend S2:800-801
_WAN_EDIT_OPTIONS = _COMMON | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}

_QWEN_NEGATIVE = TextLimit(500)  # [D-QI] via protocol §6; the seeds are silent
_WAN_NEGATIVE = TextLimit(500)  # S2:781-782; t2i: [D-T2I] via protocol §6

_QWEN2_SIZE = SizeRule(
    default="2048*2048",  # S0:624
    min_pixels=512 * 512,  # S0:624, S0:107: total pixels 512*512 to 2048*2048
    max_pixels=2048 * 2048,
)
_QWEN_FIXED_SIZE = SizeRule(
    default="1664*928",  # S0:638 (the older 1328*1328: Reading.QWEN_DEFAULT_SQUARE)
    fixed=((1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664)),  # S0:636-646
)
# The widest documented reading ([D-T2I] EN via protocol §10.1): total [768², 1440²],
# aspect 1:4 to 4:1, sides not limited beyond that. Reading.WAN_T2I_SIZE_STRICT narrows it.
_WAN_T2I_SIZE = SizeRule(
    default="1280*1280",  # [D-T2I] via protocol §10.1; every S0 sample sends it (S0:584)
    min_pixels=768 * 768,
    max_pixels=1440 * 1440,  # S0:107 and S0:648 agree on the ceiling
    aspect=Aspect(1, 4),
)
_WAN_T2I_SIZE_STRICT = replace(
    _WAN_T2I_SIZE,
    min_pixels=1280 * 1280,  # S0:107
    min_side=512,  # S0:648
    max_side=1440,  # S0:648
)
_WAN27_IMAGES = ImageRule(
    count=(0, 9),  # S2:713 (0: text-to-image)
    min_side=240,  # S2:723
    max_side=8000,  # S2:723
    max_bytes=20 * MIB,  # S2:728 "≤ 20 MB", MB read as the larger 2^20
    aspect=Aspect(1, 8),  # S2:733
)


def _wan27(name: str, *, pro: bool) -> ModelRules:
    tiers = {"1K": 1024, "2K": 2048}  # [D-W27] via protocol §6 (S2:811 is cut off)
    if pro:
        tiers["4K"] = 4096  # S2:813: wan2.7-image-pro only, text-to-image only
    return ModelRules(
        name=name,
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S2:255
        async_endpoint=Endpoint.IMAGE_GENERATION,  # S2:537
        prompt=TextLimit(5000),  # S2:770
        negative_prompt=None,  # S2:780: not supported
        images=_WAN27_IMAGES,
        size=SizeRule(
            default="2K",  # [D-W27] via protocol §6; every S2 sample sends 2K
            tiers=tiers,
            text_to_image_only_tiers=frozenset({"4K"}) if pro else frozenset(),  # S2:813, S2:70
            min_pixels=768 * 768,  # [D-W27] via protocol §6 (S2:812's ranges are lost)
            max_pixels=2048 * 2048,  # S2:70: editing and sequences at most 2K
            max_pixels_text_to_image=4096 * 4096 if pro else 0,  # [D-W27] via protocol §6
            aspect=Aspect(1, 8),  # [D-W27] via protocol §6
            follows_last_image=True,  # [D-W27]; S2:116 and S2:600 keep paint.webp's aspect
        ),
        n=Span(1, 4, 1),  # [D-W27] via protocol §6 (S2:274 sends 1)
        n_sequential=Span(1, 12, 12),  # [D-W27] via protocol §6 (S2:614 describes it)
        result_shape=ResultShape.ONE_CHOICE,
        options=_WAN27_OPTIONS,
        max_boxes_per_image=2,  # S2:826
        palette_colours=(3, 10),  # [D-W27] via protocol §6
    )


MODELS: tuple[ModelRules, ...] = (
    ModelRules(
        name="qwen-image-2.0-pro",  # S0:103
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:121, S0:303
        async_endpoint=None,  # S0:121: only plus and qwen-image also run async
        prompt=TextLimit(1300, Unit.TOKENS),  # [D-QI] via protocol §6; S0:314 sends 439
        negative_prompt=_QWEN_NEGATIVE,
        size=_QWEN2_SIZE,
        n=Span(1, 6, 1),  # [D-QI] via protocol §6; the seeds are silent
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-2.0-pro-2026-04-22", "qwen-image-2.0-pro-2026-03-03"),  # [D-QI]
    ),
    ModelRules(
        name="qwen-image-2.0",  # S0:107 "qwen-image-2.0 series"
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:121
        async_endpoint=None,
        prompt=TextLimit(1300, Unit.TOKENS),  # [D-QI] via protocol §6
        negative_prompt=_QWEN_NEGATIVE,
        size=_QWEN2_SIZE,
        n=Span(1, 6, 1),  # [D-QI]
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-2.0-2026-03-03",),  # [D-QI]
    ),
    ModelRules(
        name="qwen-image-max",  # S0:109
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:121
        async_endpoint=None,
        prompt=TextLimit(800, Unit.TOKENS),  # [D-QI] via protocol §6
        negative_prompt=_QWEN_NEGATIVE,
        size=_QWEN_FIXED_SIZE,
        n=Span(1, 1, 1),  # [D-QI] via protocol §6: fixed 1, anything else an error
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-max-2025-12-30",),  # [D-QI]
    ),
    ModelRules(
        name="qwen-image-plus",  # S0:109
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:121
        async_endpoint=Endpoint.TEXT2IMAGE,  # S0:121 says async; path [D-QI] via §3
        prompt=TextLimit(800, Unit.TOKENS),  # [D-QI] via protocol §6
        negative_prompt=_QWEN_NEGATIVE,
        size=_QWEN_FIXED_SIZE,
        # [D-QI]: exactly one, on either path (third-party copies: QWEN_ASYNC_N_UP_TO_4).
        n=Span(1, 1, 1),
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
        aliases=("qwen-image-plus-2026-01-09",),  # [D-QI]
    ),
    ModelRules(
        name="qwen-image",  # S0:121
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:121
        async_endpoint=Endpoint.TEXT2IMAGE,  # S0:121; path [D-QI] via protocol §3
        prompt=TextLimit(800, Unit.TOKENS),  # [D-QI] via protocol §6
        negative_prompt=_QWEN_NEGATIVE,
        # The seeds give qwen-image no size list; [D-QI] makes it qwen-image-plus's.
        size=_QWEN_FIXED_SIZE,
        n=Span(1, 1, 1),  # [D-QI], on either path, as qwen-image-plus
        result_shape=ResultShape.QWEN,
        options=_QWEN_OPTIONS,
    ),
    ModelRules(
        name="wan2.6-t2i",  # S0:105
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S0:123; path [D-T2I] via §3
        async_endpoint=Endpoint.IMAGE_GENERATION,  # S0:561
        prompt=TextLimit(2100),  # [D-T2I] via protocol §6
        negative_prompt=_WAN_NEGATIVE,
        size=_WAN_T2I_SIZE,
        n=Span(1, 4, 4),  # [D-T2I] via protocol §6 (S0:582 sends 1)
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_T2I_OPTIONS,
    ),
    ModelRules(
        name="wan2.5-t2i-preview",  # S0:105
        sync_endpoint=None,  # S0:123: only wan2.6-t2i also runs sync
        async_endpoint=Endpoint.TEXT2IMAGE,  # [D-T2I] via protocol §3
        prompt=TextLimit(2000),  # [D-T2I] via protocol §6
        negative_prompt=_WAN_NEGATIVE,
        size=_WAN_T2I_SIZE,
        n=Span(1, 4, 4),  # [D-T2I] via protocol §6
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_T2I_OPTIONS,
    ),
    _wan27("wan2.7-image-pro", pro=True),  # S2:708
    _wan27("wan2.7-image", pro=False),  # S2:708
    ModelRules(
        name="wan2.6-image",  # S2:709
        sync_endpoint=Endpoint.MULTIMODAL_GENERATION,  # S2:841; paths [D-W26] via §3
        async_endpoint=Endpoint.IMAGE_GENERATION,  # S2:841
        prompt=TextLimit(2000),  # S2:771
        negative_prompt=_WAN_NEGATIVE,  # S2:781
        images=ImageRule(
            count=(1, 4),  # S2:714, editing (the interleaved mode is not emulated)
            min_side=240,  # S2:724
            max_side=8000,  # S2:724
            max_bytes=10 * MIB,  # S2:729 "≤ 10 MB", MB read as the larger 2^20
            aspect=None,  # S2:734: unrestricted
        ),
        size=SizeRule(
            default="1K",  # [D-W26] via protocol §6 (S2:814 is cut off)
            tiers={"1K": 1280, "2K": 2048},  # [D-EDIT-zh]: 1K is about 1280² here
            min_pixels=768 * 768,  # [D-W26] via protocol §6
            max_pixels=2048 * 2048,
            aspect=Aspect(1, 4),  # [D-W26] via protocol §6
            snap=16,  # S2:815-816
            follows_last_image=True,  # S2:814 "refer to the input image's aspect ratio"
        ),
        n=Span(1, 4, 4),  # [D-W26] via protocol §6
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_EDIT_OPTIONS,  # S2:820: no bbox_list
    ),
    ModelRules(
        name="wan2.5-i2i-preview",  # S2:710
        sync_endpoint=None,  # S2:845: async only
        async_endpoint=Endpoint.IMAGE2IMAGE,  # S2:607 another endpoint; [D-W25] via §3
        prompt=TextLimit(2000),  # S2:777
        negative_prompt=_WAN_NEGATIVE,  # S2:782
        images=ImageRule(
            count=(1, 3),  # S2:715
            min_side=384,  # S2:725
            max_side=5000,  # S2:725
            max_bytes=10 * MIB,  # S2:730, MB read as the larger 2^20
            aspect=Aspect(1, 4),  # S2:735
        ),
        size=SizeRule(
            default="1280*1280",  # [D-EDIT-zh][D-W25] via protocol §6: ≈1280², last aspect
            min_pixels=768 * 768,  # [D-EDIT-zh] via protocol §6 and §10.2
            max_pixels=1280 * 1280,
            aspect=Aspect(1, 4),
            follows_last_image=True,
        ),
        n=Span(1, 4, 4),  # copies of [D-W25] via protocol §6
        result_shape=ResultShape.CHOICE_PER_IMAGE,
        options=_WAN_EDIT_OPTIONS,
    ),
)

_BY_NAME: dict[str, ModelRules] = {
    name: model for model in MODELS for name in (model.name, *model.aliases)
}


# Which models each contradiction is about.
_WAN_T2I = frozenset({"wan2.6-t2i", "wan2.5-t2i-preview"})
_QWEN_FIXED_SIZES = frozenset({"qwen-image-max", "qwen-image-plus", "qwen-image"})
_WAN27 = frozenset({"wan2.7-image-pro", "wan2.7-image"})
_QWEN_ASYNC = frozenset({"qwen-image-plus", "qwen-image"})


def _strict_wan_t2i_size(model: ModelRules) -> ModelRules:
    if model.name not in _WAN_T2I:
        return model
    return replace(model, size=_WAN_T2I_SIZE_STRICT)


def _strict_file_size(model: ModelRules) -> ModelRules:
    if model.images is None:
        return model
    # MB in the smaller sense: 20,000,000 bytes for wan2.7 (S2:728), 10,000,000 for others.
    documented = 20 if model.name.startswith("wan2.7") else 10
    return replace(model, images=replace(model.images, max_bytes=documented * MB))


def _qwen_async_n_up_to_4(model: ModelRules) -> ModelRules:
    if model.name not in _QWEN_ASYNC or model.async_endpoint is None:
        return model
    return replace(model, n_async=Span(1, 4, 1))  # protocol §10.4


def _refuse_unsupported(model: ModelRules) -> ModelRules:
    return replace(model, refuses_unsupported=True)


def _qwen_default_square(model: ModelRules) -> ModelRules:
    if model.name not in _QWEN_FIXED_SIZES:
        return model
    return replace(model, size=replace(model.size, default="1328*1328"))


def _wan27_2k_as_1k(model: ModelRules) -> ModelRules:
    if model.name not in _WAN27:
        return model
    tiers = dict(model.size.tiers) | {"2K": 1024}
    return replace(model, size=replace(model.size, tiers=tiers))


_ALTERNATIVES: dict[Reading, Callable[[ModelRules], ModelRules]] = {
    Reading.WAN_T2I_SIZE_STRICT: _strict_wan_t2i_size,
    Reading.FILE_SIZE_STRICT: _strict_file_size,
    Reading.QWEN_ASYNC_N_UP_TO_4: _qwen_async_n_up_to_4,
    Reading.UNSUPPORTED_REFUSED: _refuse_unsupported,
    Reading.QWEN_DEFAULT_SQUARE: _qwen_default_square,
    Reading.WAN27_2K_AS_1K: _wan27_2k_as_1k,
}


def model_rules(name: str, readings: Iterable[Reading] = ()) -> ModelRules | None:
    """The rules for a model name or a dated snapshot of it, under the readings chosen;
    None for a model the provider does not have."""
    model = _BY_NAME.get(name)
    if model is None:
        return None
    for reading in sorted(readings):
        if reading in _ALTERNATIVES:
            model = _ALTERNATIVES[reading](model)
    return model


# -- a request as the service reads it ------------------------------------------------------

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
    # Options sent that the model does not take: ignored, or refused under
    # Reading.UNSUPPORTED_REFUSED.
    unsupported: tuple[str, ...] = ()

    @property
    def sequential(self) -> bool:
        return bool(self.enable_sequential)


# -- counting text --------------------------------------------------------------------------


class _Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


@functools.cache
def qwen_tokenizer() -> _Tokenizer:
    """The Qwen tokenizer the official SDK ships (its qwen.tiktoken vocabulary), loaded once:
    the Qwen text-to-image models limit prompts in its tokens ([D-QI])."""
    import dashscope

    return dashscope.get_tokenizer("qwen-image")


def text_length(text: str, unit: Unit) -> int:
    if unit is Unit.TOKENS:
        return len(qwen_tokenizer().encode(text))
    return len(text)


def _units(count: int, unit: Unit) -> str:
    return f"{count:,} {unit.value.removesuffix('s') if count == 1 else unit.value}"


# -- the checks: what the service refuses with 400 InvalidParameter ------------------------

_SIZE_RE = re.compile(r"^([1-9][0-9]{0,4})\*([1-9][0-9]{0,4})$")
_HEX_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_RATIO_RE = re.compile(r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)%$")


def parse_size(value: str) -> tuple[int, int] | None:
    match = _SIZE_RE.match(value)
    return (int(match[1]), int(match[2])) if match else None


def check(model: ModelRules, request: Generation, *, asynchronous: bool) -> list[str]:
    """Every reason the service would refuse the request; empty when it takes it."""
    return [
        *_check_unsupported(model, request),
        *_check_prompt(model, request),
        *_check_images(model, request),
        *_check_size(model, request),
        *_check_n(model, request, asynchronous=asynchronous),
        *_check_seed(model, request),
        *_check_boxes(model, request),
        *_check_palette(model, request),
    ]


def _check_unsupported(model: ModelRules, request: Generation) -> list[str]:
    if not model.refuses_unsupported:
        return []
    problems = [f"{model.name} does not support {name}." for name in request.unsupported]
    if request.sequential and request.bbox_list is not None:
        problems.append("bbox_list cannot be combined with enable_sequential.")  # protocol §6
    if request.sequential and request.color_palette is not None:
        problems.append("color_palette cannot be combined with enable_sequential.")  # [D-W27]
    return problems


def _check_prompt(model: ModelRules, request: Generation) -> list[str]:
    problems = []
    if not request.prompt.strip():
        problems.append("The prompt is required and cannot be empty.")
    else:
        length = text_length(request.prompt, model.prompt.unit)
        if length > model.prompt.max:
            problems.append(
                f"The prompt is {_units(length, model.prompt.unit)}; {model.name} takes at "
                f"most {_units(model.prompt.max, model.prompt.unit)}."
            )
    negative, limit = request.negative_prompt, model.negative_prompt
    if negative and limit is not None:
        length = text_length(negative, limit.unit)
        if length > limit.max:
            problems.append(
                f"The negative prompt is {_units(length, limit.unit)}; {model.name} takes at "
                f"most {_units(limit.max, limit.unit)}."
            )
    return problems


def _megabytes(size: int) -> str:
    return f"{size // MIB} MB" if size % MIB == 0 else f"{size / MB:g} MB"


def _check_images(model: ModelRules, request: Generation) -> list[str]:
    rule, count = model.images, len(request.images)
    if rule is None:
        return [f"{model.name} does not take input images."] if count else []
    low, high = rule.count
    if count < low:
        need = "an input image" if low == 1 else f"at least {low} input images"
        return [f"{model.name} needs {need}."]
    if count > high:
        return [f"{model.name} takes at most {high} input images; got {count}."]
    return [
        problem
        for position, image in enumerate(request.images, start=1)
        for problem in _image_problems(model.name, rule, position, image.facts)
    ]


def _image_problems(name: str, rule: ImageRule, position: int, facts: ImageFacts) -> list[str]:
    label, shape = f"Image {position}", f"{facts.width}×{facts.height}"
    problems = []
    if facts.format not in rule.formats:
        problems.append(f"{label} is {facts.format}; use JPEG, PNG, BMP or WEBP.")
    if facts.has_alpha and not rule.alpha:
        problems.append(f"{label} has transparency (an alpha channel), which is not accepted.")
    if min(facts.width, facts.height) < rule.min_side:
        problems.append(f"{label} is {shape}; each side must be at least {rule.min_side} pixels.")
    if max(facts.width, facts.height) > rule.max_side:
        problems.append(f"{label} is {shape}; each side must be at most {rule.max_side} pixels.")
    if rule.aspect is not None and not rule.aspect.allows(facts.width, facts.height):
        problems.append(f"{label} is {shape}; its aspect ratio must be between {rule.aspect}.")
    if facts.bytes > rule.max_bytes:
        problems.append(
            f"{label} is {facts.bytes:,} bytes; {name} takes files up to "
            f"{_megabytes(rule.max_bytes)} ({rule.max_bytes:,} bytes)."
        )
    return problems


def _square(pixels: int) -> str:
    side = math.isqrt(pixels)
    return f"{side}×{side}" if side * side == pixels else f"{pixels:,} pixels"


def _check_size(model: ModelRules, request: Generation) -> list[str]:
    rule, value = model.size, request.size
    if value is None:
        return []
    if rule.fixed:
        if parse_size(value) not in rule.fixed:
            allowed = ", ".join(f"{w}*{h}" for w, h in rule.fixed)
            return [f"{model.name} makes only these sizes: {allowed}."]
        return []
    if value in rule.tiers:
        if value in rule.text_to_image_only_tiers and (request.images or request.sequential):
            return [
                f"{value} is only for text-to-image without input images or a sequence; "
                "use 2K or less."
            ]
        return []
    parsed = parse_size(value)
    if parsed is None:
        tiers = " or ".join(rule.tiers)
        custom = "W*H (for example 1280*1280)"
        return [f"{value!r} is not a size; use {f'{tiers}, or {custom}' if tiers else custom}."]
    return _custom_size_problems(model, rule, parsed, request)


def _custom_size_problems(
    model: ModelRules, rule: SizeRule, size: tuple[int, int], request: Generation
) -> list[str]:
    width, height = size
    pixels, shape = width * height, f"{width}×{height}"
    # A sequence is limited as editing is: 2K at most ([D-W27] via protocol §6).
    high = rule.ceiling(has_images=bool(request.images) or request.sequential)
    problems = []
    if not rule.min_pixels <= pixels <= high:
        problems.append(
            f"{shape} is {pixels:,} pixels; {model.name} makes between "
            f"{_square(rule.min_pixels)} and {_square(high)} in total."
        )
    if rule.min_side and min(size) < rule.min_side:
        problems.append(f"{shape}: each side must be at least {rule.min_side} pixels.")
    if rule.max_side and max(size) > rule.max_side:
        problems.append(f"{shape}: each side must be at most {rule.max_side} pixels.")
    if rule.aspect is not None and not rule.aspect.allows(width, height):
        problems.append(f"{shape}: the aspect ratio must be between {rule.aspect}.")
    return problems


def _check_n(model: ModelRules, request: Generation, *, asynchronous: bool) -> list[str]:
    if request.n is None:
        return []
    allowed = model.n_range(asynchronous=asynchronous, sequential=request.sequential)
    if request.n in allowed:
        return []
    if allowed.low == allowed.high:
        return [f"{model.name} makes exactly {allowed.low} image per request; n was {request.n}."]
    return [f"{model.name} makes {allowed.low} to {allowed.high} images per request."]


def _check_seed(model: ModelRules, request: Generation) -> list[str]:
    seed = request.seed
    if seed is None or not model.takes(Option.SEED):
        return []
    if not 0 <= seed <= SEED_MAX:
        return [f"The seed must be a whole number from 0 to {SEED_MAX:,}."]
    return []


def _check_boxes(model: ModelRules, request: Generation) -> list[str]:
    boxes = request.bbox_list
    if boxes is None or not model.takes(Option.BBOX_LIST):
        return []
    if len(boxes) != len(request.images):  # S2:822
        return [
            f"bbox_list gives regions for {len(boxes)} images but there are "
            f"{len(request.images)} input images; give one list per image."
        ]
    problems = []
    for position, (image, image_boxes) in enumerate(zip(request.images, boxes, strict=True), 1):
        if len(image_boxes) > model.max_boxes_per_image:  # S2:826
            problems.append(
                f"Image {position} has {len(image_boxes)} regions; at most "
                f"{model.max_boxes_per_image} per image."
            )
            continue
        for number, box in enumerate(image_boxes, start=1):
            message = _box_problem(box, image.facts)
            if message:
                problems.append(f"Image {position}, region {number}: {message}")
    return problems


def _box_problem(box: object, facts: ImageFacts) -> str | None:
    # S2:825: [x1, y1, x2, y2], top-left and bottom-right, absolute pixels of the image.
    if (
        not isinstance(box, (list, tuple))
        or len(box) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in box)
    ):
        return "a region is four whole numbers [x1, y1, x2, y2]."
    x1, y1, x2, y2 = box
    if x1 < 0 or y1 < 0:
        return "coordinates cannot be negative."
    if x2 <= x1 or y2 <= y1:
        return "the second corner must be below and to the right of the first."
    if x2 > facts.width or y2 > facts.height:
        return f"it reaches outside the {facts.width}×{facts.height} image."
    return None


def _check_palette(model: ModelRules, request: Generation) -> list[str]:
    palette = request.color_palette
    if palette is None or not model.takes(Option.COLOR_PALETTE):
        return []
    low, high = model.palette_colours
    if not low <= len(palette) <= high:
        return [f"color_palette has {len(palette)} colours; it takes {low} to {high}."]
    total = 0.0
    for number, swatch in enumerate(palette, start=1):
        if not _HEX_RE.match(swatch.hex):
            return [f"color_palette colour {number}: hex must be written #RRGGBB."]
        if not _RATIO_RE.match(swatch.ratio):
            return [f"color_palette colour {number}: ratio must be written like 25.00%."]
        total += float(swatch.ratio.rstrip("%"))
    if abs(total - 100.0) > 0.005:
        return [f"color_palette ratios add up to {total:.2f}%, not 100.00%."]
    return []


# -- what comes out -------------------------------------------------------------------------


def output_size(model: ModelRules, request: Generation) -> tuple[int, int]:
    """The width and height the service makes for a request it accepted."""
    rule = model.size
    value = request.size or rule.default
    last = request.images[-1].facts if request.images else None
    follow = rule.follows_last_image and last is not None
    if value in rule.tiers:
        area = rule.tiers[value] ** 2
    else:
        parsed = parse_size(value)
        if parsed is None:
            raise ValueError(f"Not a size: {value!r}")
        if request.size is not None or not follow:
            return _snap(parsed, rule.snap)
        area = parsed[0] * parsed[1]  # a default W*H gives the area; the image its shape
    ratio = 1.0
    if follow and last is not None:
        ratio = last.width / last.height
        if rule.aspect is not None:
            ratio = rule.aspect.clamp(ratio)
    width, height = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
    return _snap((width, height), rule.snap)


def _snap(size: tuple[int, int], step: int) -> tuple[int, int]:
    width, height = size
    if step == 1:
        return width, height
    return max(step, round(width / step) * step), max(step, round(height / step) * step)


def images_requested(model: ModelRules, request: Generation, *, asynchronous: bool) -> int:
    """How many images a request makes: its n, or the model's default."""
    if request.n is not None:
        return request.n
    return model.n_range(asynchronous=asynchronous, sequential=request.sequential).default

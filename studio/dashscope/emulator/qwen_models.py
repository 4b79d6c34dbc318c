"""The Qwen text-to-image models, as the Text-to-Image guide (S0, S1) and [D-QI] describe them."""

from __future__ import annotations

from studio.dashscope.emulator.limits import (
    COMMON_OPTIONS,
    Endpoint,
    ModelRules,
    Option,
    ResultShape,
    SizeRule,
    Span,
    TextLimit,
    Unit,
)

# negative_prompt: S0:600, S0:321; prompt_extend: S0:610
_QWEN_OPTIONS = COMMON_OPTIONS | {Option.NEGATIVE_PROMPT, Option.PROMPT_EXTEND}
_QWEN_NEGATIVE = TextLimit(500)  # [D-QI] via protocol §6; the seeds are silent

_QWEN2_SIZE = SizeRule(
    default="2048*2048",  # S0:624
    min_pixels=512 * 512,  # S0:624, S0:107: total pixels 512*512 to 2048*2048
    max_pixels=2048 * 2048,
)
_QWEN_FIXED_SIZE = SizeRule(
    default="1664*928",  # S0:638 (the older 1328*1328: Reading.QWEN_DEFAULT_SQUARE)
    fixed=((1664, 928), (1472, 1104), (1328, 1328), (1104, 1472), (928, 1664)),  # S0:636-646
)


QWEN_MODELS: tuple[ModelRules, ...] = (
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
)

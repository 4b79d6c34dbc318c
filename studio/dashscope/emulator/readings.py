"""The readings of the seed documents' contradictions, and what each one changes.

Where the documents disagree, the tables in `qwen_models.py` and `wan_models.py` hold the
default reading (the widest the provider's own documents give); a `Reading` names the other
one, which `--seed-reading` selects (docs/provider.md), and `read_as()` applies it to a
model's rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from enum import StrEnum

from studio.dashscope.emulator.limits import MB, ModelRules, Span
from studio.dashscope.emulator.wan_models import WAN_T2I_SIZE_STRICT


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


# Which models each contradiction is about.
_WAN_T2I = frozenset({"wan2.6-t2i", "wan2.5-t2i-preview"})
_QWEN_FIXED_SIZES = frozenset({"qwen-image-max", "qwen-image-plus", "qwen-image"})
_WAN27 = frozenset({"wan2.7-image-pro", "wan2.7-image"})
_QWEN_ASYNC = frozenset({"qwen-image-plus", "qwen-image"})


def _strict_wan_t2i_size(model: ModelRules) -> ModelRules:
    if model.name not in _WAN_T2I:
        return model
    return replace(model, size=WAN_T2I_SIZE_STRICT)


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


def read_as(model: ModelRules, readings: Iterable[Reading]) -> ModelRules:
    """A model's rules with the chosen readings played instead of the default ones."""
    for reading in sorted(readings):
        if reading in _ALTERNATIVES:
            model = _ALTERNATIVES[reading](model)
    return model

"""The emulator's own reading of the provider: models, endpoints, limits and outputs.

This module is the rules' one door: `model_rules()` looks a model up in the table and plays
the readings chosen; everything else is named here from where it lives. The rule types
and endpoints are in `limits.py`; the table in `qwen_models.py` and `wan_models.py`; the
readings of the documents' contradictions in `readings.py`; a request as the service reads
it in `request.py`; the refusals in `checks.py` and `sizes.py` (which also says what size
comes out).

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

from collections.abc import Iterable

from studio.dashscope.emulator.checks import check, images_requested, qwen_tokenizer, text_length
from studio.dashscope.emulator.limits import (
    IMAGE_FORMATS,
    MB,
    MIB,
    SEED_MAX,
    Aspect,
    BodyStyle,
    Endpoint,
    ImageRule,
    ModelRules,
    Option,
    ResultShape,
    SizeRule,
    Span,
    TextLimit,
    Unit,
)
from studio.dashscope.emulator.qwen_models import QWEN_MODELS
from studio.dashscope.emulator.readings import STRICT, Reading, parse_readings, read_as
from studio.dashscope.emulator.request import Box, Generation, ImageFacts, InputImage, Swatch
from studio.dashscope.emulator.sizes import output_size, parse_size
from studio.dashscope.emulator.wan_models import WAN_MODELS

__all__ = [
    "IMAGE_FORMATS",
    "MB",
    "MIB",
    "MODELS",
    "SEED_MAX",
    "STRICT",
    "Aspect",
    "BodyStyle",
    "Box",
    "Endpoint",
    "Generation",
    "ImageFacts",
    "ImageRule",
    "InputImage",
    "ModelRules",
    "Option",
    "Reading",
    "ResultShape",
    "SizeRule",
    "Span",
    "Swatch",
    "TextLimit",
    "Unit",
    "check",
    "images_requested",
    "model_rules",
    "output_size",
    "parse_readings",
    "parse_size",
    "qwen_tokenizer",
    "text_length",
]

MODELS: tuple[ModelRules, ...] = (*QWEN_MODELS, *WAN_MODELS)

_BY_NAME: dict[str, ModelRules] = {
    name: model for model in MODELS for name in (model.name, *model.aliases)
}


def model_rules(name: str, readings: Iterable[Reading] = ()) -> ModelRules | None:
    """The rules for a model name or a dated snapshot of it, under the readings chosen;
    None for a model the provider does not have."""
    model = _BY_NAME.get(name)
    if model is None:
        return None
    return read_as(model, readings)

"""Prompts of an exact length in a model's own unit: characters, or Qwen tokens; and
seed 000's long Qwen prompt, as the provider's document sends it."""

from __future__ import annotations

import json
from pathlib import Path

from studio.dashscope.catalog import ModelSpec, TextUnit, get_model
from studio.dashscope.tokens import count_tokens


def of_length(spec: ModelSpec, length: int) -> str:
    """A prompt `length` long as the model counts: CJK and emoji for characters (each one
    character, though a browser counts an emoji as two), words for tokens."""
    if spec.prompt_unit is TextUnit.CHARACTERS:
        return ("画🎨" * length)[:length]
    text = "cat" + " cat" * (length - 1)
    assert count_tokens(text) == length, "each ' cat' is one token of the Qwen vocabulary"
    return text


def longest(spec: ModelSpec) -> str:
    return of_length(spec, spec.prompt_max)


def one_over(spec: ModelSpec) -> str:
    return of_length(spec, spec.prompt_max + 1)


# Seed 000's curl sample for qwen-image-2.0-pro: 2,045 characters, shown working.
SAMPLE = json.loads(
    (
        Path(__file__).resolve().parents[1]
        / "fixtures/seed_requests/seed000-l306-qwen-image-2.0-pro.json"
    ).read_text()
)
BODY = SAMPLE["body"]
TEXT = BODY["input"]["messages"][0]["content"][0]["text"]
PARAMETERS = BODY["parameters"]
SPEC = get_model("qwen-image-2.0-pro")

"""Prompts of an exact length in a model's own unit: characters, or Qwen tokens."""

from __future__ import annotations

from studio.dashscope.catalog import ModelSpec, TextUnit
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

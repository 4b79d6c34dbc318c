"""Prompt lengths as the provider counts them.

The Qwen text-to-image models limit prompts in tokens of the Qwen tokenizer; the official
`dashscope` package ships that tokenizer (its `qwen.tiktoken` vocabulary, read with
`tiktoken`), so the studio counts with it rather than guessing from characters. Loading the
vocabulary takes a fraction of a second, once per process, on first use.
"""

from __future__ import annotations

import functools
from typing import Protocol

from studio.dashscope.catalog import ModelSpec, TextUnit


class _Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...


@functools.cache
def qwen_tokenizer() -> _Tokenizer:
    import dashscope

    return dashscope.get_tokenizer("qwen-image")


def count_tokens(text: str) -> int:
    return len(qwen_tokenizer().encode(text))


def prompt_length(spec: ModelSpec, text: str) -> int:
    """The prompt's length in the unit the model's limit is written in."""
    if spec.prompt_unit is TextUnit.TOKENS:
        return count_tokens(text)
    return len(text)


def unit_name(spec: ModelSpec, count: int = 2) -> str:
    unit = spec.prompt_unit.value
    return unit.removesuffix("s") if count == 1 else unit

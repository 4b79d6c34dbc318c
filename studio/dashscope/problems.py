"""A reason the studio refuses a request before sending it, in a designer's words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    field: str  # "prompt", "size", "n", "images[2]", "bbox_list[1]", "color_palette", ...
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

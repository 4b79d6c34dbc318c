"""Typed requests and results of the provider layer."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from studio.dashscope.images import ImageInfo, probe_image

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in the image's own pixels, origin top-left


@dataclass(frozen=True)
class InputImage:
    """An input image, sent either inline (base64 data URI) or as a URL the provider fetches."""

    data: bytes | None = None
    url: str | None = None
    info: ImageInfo | None = None  # known for inline images; None for URLs

    @classmethod
    def from_bytes(cls, data: bytes) -> InputImage:
        return cls(data=data, info=probe_image(data))

    @classmethod
    def from_url(cls, url: str) -> InputImage:
        return cls(url=url)

    def wire_value(self) -> str:
        if self.data is not None:
            assert self.info is not None
            encoded = base64.b64encode(self.data).decode("ascii")
            return f"data:{self.info.mime};base64,{encoded}"
        assert self.url is not None
        return self.url


@dataclass(frozen=True)
class ColorSwatch:
    hex: str  # "#RRGGBB"
    ratio: str  # "23.51%"

    def as_wire(self) -> dict[str, str]:
        return {"hex": self.hex, "ratio": self.ratio}


# Request parameters that pass through unchanged, as plain JSON values.
PLAIN_PARAMETERS = (
    "size",
    "n",
    "seed",
    "watermark",
    "prompt_extend",
    "thinking_mode",
    "enable_sequential",
)
# The mixed text-and-image mode's own parameters, sent only when it is on; kept apart from
# the plain ones because that mode streams, from the sync endpoint only.
INTERLEAVE_PARAMETERS = ("enable_interleave", "max_images")


@dataclass(frozen=True)
class GenerationRequest:
    """One generation or edit, as the studio means it; the client turns it into a wire body.

    A parameter left as None is not sent, and the provider's default applies (the catalog
    says which). The studio's forms always fill size and n so cost is never a surprise.
    """

    model: str
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
    bbox_list: tuple[tuple[Box, ...], ...] | None = None
    color_palette: tuple[ColorSwatch, ...] | None = None
    enable_interleave: bool | None = None  # mixed text and images, streamed (client.stream)
    max_images: int | None = None  # with enable_interleave: at most this many pictures

    @classmethod
    def build(
        cls,
        *,
        model: str,
        prompt: str,
        negative_prompt: str = "",
        parameters: dict[str, Any],
        images: Sequence[InputImage] = (),
        boxes: Sequence[Sequence[Sequence[int]]] = (),
    ) -> GenerationRequest:
        """A request from stored parts: JSON parameters and each image's list of boxes."""
        palette = parameters.get("color_palette")
        bbox_list = None
        if any(boxes):
            bbox_list = tuple(tuple(tuple(box) for box in image_boxes) for image_boxes in boxes)
        return cls(
            model=model,
            prompt=prompt,
            negative_prompt=negative_prompt or None,
            images=tuple(images),
            bbox_list=bbox_list,  # type: ignore[arg-type]
            color_palette=tuple(ColorSwatch(**c) for c in palette) if palette else None,
            **{key: parameters.get(key) for key in (*PLAIN_PARAMETERS, *INTERLEAVE_PARAMETERS)},
        )


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELED, TaskStatus.UNKNOWN}


@dataclass(frozen=True)
class ImageFailure:
    """One image of a legacy-protocol task that failed while the others succeeded."""

    index: int
    code: str
    message: str


@dataclass(frozen=True)
class Usage:
    image_count: int
    width: int | None = None
    height: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @classmethod
    def from_wire(cls, usage: dict[str, Any] | None) -> Usage | None:
        if not isinstance(usage, dict):
            return None
        width, height = usage.get("width"), usage.get("height")
        size = usage.get("size")
        if isinstance(size, str) and "*" in size:
            w, _, h = size.partition("*")
            if w.isdigit() and h.isdigit():
                width, height = int(w), int(h)
        count = usage.get("image_count")
        return cls(
            image_count=count if isinstance(count, int) else 0,
            width=width if isinstance(width, int) else None,
            height=height if isinstance(height, int) else None,
            input_tokens=_int_or_none(usage.get("input_tokens")),
            output_tokens=_int_or_none(usage.get("output_tokens")),
        )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) else None


@dataclass(frozen=True)
class TaskResult:
    """A sync generation result or the state of an async task.

    `image_urls` are signed and expire after 24 hours: they are secrets, never to be logged
    or shown to a browser; download them at once.
    """

    status: TaskStatus
    request_id: str
    task_id: str | None = None
    image_urls: tuple[str, ...] = ()
    failures: tuple[ImageFailure, ...] = ()
    usage: Usage | None = None
    code: str | None = None  # task-level failure
    message: str | None = None
    submit_time: datetime | None = None  # the provider's clock, naive
    scheduled_time: datetime | None = None
    end_time: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SubmittedTask:
    task_id: str
    status: TaskStatus
    request_id: str


@dataclass(frozen=True)
class TaskSummary:
    task_id: str
    status: TaskStatus
    model: str | None
    request_id: str | None
    created_at_ms: int | None


@dataclass(frozen=True)
class TaskPage:
    tasks: tuple[TaskSummary, ...]
    total: int
    page_no: int
    page_size: int
    total_pages: int
    request_id: str

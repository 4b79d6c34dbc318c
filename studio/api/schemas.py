"""What the API answers, as its OpenAPI description names it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema


class Problem(Schema):
    """Every refusal: a stable code, a sentence a person can act on, and the field."""

    code: str
    message: str
    field: str | None = None


class Me(Schema):
    username: str
    team: str
    role: str
    scope: str


class Size(Schema):
    value: str
    label: str


class Model(Schema):
    name: str
    label: str
    kinds: list[str]
    prompt_max: int
    prompt_unit: str
    negative_prompt_max: int | None
    images_min: int | None
    images_max: int | None
    regions_per_image: int | None
    n_min: int
    n_max: int
    sizes: list[Size]
    options: list[str]
    price_per_image: str | None
    currency: str


class Event(Schema):
    at: datetime
    status: str
    message: str
    code: str


class Image(Schema):
    id: int
    index: int
    width: int
    height: int
    mime: str
    bytes: int
    review_state: str
    original: str  # the API's address of the file, never the store's
    thumbnail: str


class Job(Schema):
    id: str
    kind: str
    model: str
    model_label: str
    status: str
    status_label: str
    prompt: str
    negative_prompt: str
    parameters: dict[str, Any]
    images_requested: int
    images_charged: int | None
    brand_kit: str
    created_at: datetime
    finished_at: datetime | None
    history: list[Event]
    images: list[Image]


class GalleryImage(Image):
    job_id: str
    model: str
    model_label: str
    prompt: str
    author: str
    created_at: datetime


class GalleryPage(Schema):
    images: list[GalleryImage]
    next: str | None  # pass as `after` for the page after this one


class Review(Schema):
    state: str

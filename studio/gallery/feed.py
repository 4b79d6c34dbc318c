"""The team's activity feed as the gallery's pages show it."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.db.models import F

from studio.audit.models import Activity
from studio.dashscope.catalog import UnknownModel, get_model

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

FEED_SIZE = 12


class _JobFields(TypedDict):
    """What a line reads from its job, if it has one."""

    job_model: str | None
    job_prompt: str | None


def team_feed(team_id: int, size: int = FEED_SIZE) -> list[WithAnnotations[Activity, _JobFields]]:
    """The team's latest `size` lines, newest first."""
    items: list[WithAnnotations[Activity, _JobFields]] = list(
        Activity.objects.filter(team_id=team_id)
        .select_related("actor", "image")
        .annotate(job_model=F("job__model"), job_prompt=F("job__prompt"))[:size]
    )
    for item in items:
        # A finished job's line was written with the model's id ("2 images with
        # wan2.6-t2i"); it is read with the model's name, old lines too.
        if item.verb == Activity.Verb.GENERATED and item.job_model:
            label = _model_label(item.job_model)
            item.detail = item.detail.replace(f" with {item.job_model}", f" with {label}")
    return items


def _model_label(name: str) -> str:
    try:
        return get_model(name).label
    except UnknownModel:
        return name  # a model the catalog no longer knows: its id is all there is

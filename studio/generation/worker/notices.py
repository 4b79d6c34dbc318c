"""Telling people about a job's end, once it is committed: its author, if she was not
watching it (studio.notifications.watching), and whoever the charge took past 80 % or
100 % of a quota or budget. Never part of the end itself: a fault here is logged and
dropped, and the job, its images and its charge stand."""

from __future__ import annotations

import functools

from django.db import transaction
from django.urls import reverse

from studio.generation.models import (
    Exploration,
    ExplorationCell,
    GeneratedImage,
    Job,
    QuotaCharge,
)
from studio.notifications import services, thresholds
from studio.notifications.models import Kind
from studio.notifications.watching import is_watching

# The ends told, and whether each is a failure; a job its author cancelled is not told.
TOLD: dict[str, bool] = {
    Job.Status.SUCCEEDED: False,
    Job.Status.PARTIAL: False,
    Job.Status.FAILED: True,
}


def tell_after_commit(job: Job, status: str) -> None:
    transaction.on_commit(functools.partial(_tell, job, status), robust=True)


@services.never_failing
def _tell(job: Job, status: str) -> None:
    settled = (
        QuotaCharge.objects.filter(job=job, kind=QuotaCharge.Kind.SETTLE)
        .values_list("counter_ids", "images")
        .first()
    )
    failed = TOLD.get(status)
    cell = ExplorationCell.objects.filter(job=job).select_related("exploration").first()
    if cell is not None:
        _tell_exploration(cell.exploration)  # told once, of the whole grid
    elif failed is not None and not is_watching(job.author_id, job.pk):
        services.job_ended(
            job.author_id,
            team_id=job.team_id,
            failed=failed,
            subject=job.prompt,
            images=settled[1] if settled else 0,
            link=reverse("job-detail", args=[job.pk]),
        )
    if settled and settled[1]:
        thresholds.charge_settled(settled[0])


def _tell_exploration(exploration: Exploration) -> None:
    """An exploration's author, told once its last job has ended, unless she has its grid
    in front of her: one notification for the grid, not one a cell."""
    jobs = Job.objects.filter(exploration_cell__exploration=exploration)
    if jobs.filter(status__in=Job.OPEN).exists():
        return
    if is_watching(exploration.author_id, exploration.watch_key):
        return
    images = GeneratedImage.objects.filter(job__in=jobs).count()
    failed = jobs.filter(status=Job.Status.FAILED).count()
    text = (
        f"Your exploration “{services.plain(exploration.prompt, 80)}” is done: "
        f"{images} image{'s' if images != 1 else ''}"
        + (f", {failed} job{'s' if failed != 1 else ''} failed." if failed else ".")
    )
    services.notify(
        exploration.author_id,
        Kind.JOB,
        text,
        reverse("exploration", args=[exploration.pk]),
        team_id=exploration.team_id,
        key=f"exploration-{exploration.pk}-done",  # its last two jobs may end at once
    )

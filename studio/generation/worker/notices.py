"""Telling people about a job's end, once it is committed: its author, if she was not
watching it (studio.notifications.watching), and whoever the charge took past 80 % or
100 % of a quota or budget. Never part of the end itself: a fault here is logged and
dropped, and the job, its images and its charge stand."""

from __future__ import annotations

import functools

from django.db import transaction
from django.urls import reverse

from studio.generation.models import ExplorationCell, Job, QuotaCharge
from studio.notifications import services, thresholds
from studio.notifications.watching import is_watching

# The ends told, and whether each is a failure; a job its author cancelled is not told.
TOLD: dict[str, bool] = {
    Job.Status.SUCCEEDED: False,
    Job.Status.PARTIAL: False,
    Job.Status.FAILED: True,
}


def _watched(job: Job) -> bool:
    """Whether its author has the job in front of her: its page, her results, or the grid
    of the exploration it is a cell of."""
    if is_watching(job.author_id, job.pk):
        return True
    cell = ExplorationCell.objects.filter(job=job).select_related("exploration").first()
    return cell is not None and is_watching(job.author_id, cell.exploration.watch_key)


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
    if failed is not None and not _watched(job):
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

"""How the dispatcher hands a job to a job step: held for the step while it waits in the
task queue, and handed out again when the step's worker vanished or a held download is due."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.db.models import Q
from django.db.models.functions import Now

from studio.generation.models import Job, LeaseFields
from studio.generation.worker.context import acting_on_job

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher

DISPATCH_HOLD_SECONDS = 30  # how long an enqueued step may wait for a worker to pick it up


def enqueue_job_step(job: Job) -> None:
    from django_q.tasks import async_task

    async_task("studio.generation.tasks.run_job_step", str(job.pk), group="job-steps")


def hold_fields() -> LeaseFields:
    """A job's fields while it waits for the step it is handed to."""
    return {"lease_owner": "", "lease_until": Now() + timedelta(seconds=DISPATCH_HOLD_SECONDS)}


@acting_on_job
def hold_and_enqueue(dispatcher: Dispatcher, job: Job) -> None:
    # Only while no step holds the job: one that claimed it since it was read (an
    # admin's retry, say) keeps its lease, and no second step is sent after it.
    free = Q(lease_owner="") | Q(lease_until__isnull=True) | Q(lease_until__lt=Now())
    if Job.objects.filter(free, pk=job.pk).update(**hold_fields()):
        dispatcher.enqueue_step(job)


def hand_over_steps(dispatcher: Dispatcher) -> None:
    """Re-enqueue steps whose worker vanished (lease or hold expired), and sync jobs
    sent without a hold at all (by a dispatcher before holds were set with the send)."""
    held_since = Now() - timedelta(seconds=DISPATCH_HOLD_SECONDS)
    stale = Job.objects.filter(
        Q(status__in=(Job.Status.DOWNLOADING, Job.Status.SUBMITTING), lease_until__lt=Now())
        | Q(
            status=Job.Status.SUBMITTING,
            lease_until__isnull=True,
            submit_started_at__lt=held_since,
        )
    )
    for job in stale:
        if job.status == Job.Status.SUBMITTING and job.is_asynchronous:
            continue  # see recovery.recover_interrupted_submits()
        hold_and_enqueue(dispatcher, job)


def hand_over_held_downloads(dispatcher: Dispatcher) -> None:
    """Hand held jobs whose retry is due to a step. Their pauses are a minute or more,
    so they are looked for every few seconds rather than on every pass: one query
    (on the status index) when it is time, none otherwise. A job whose step is under
    way, or handed out and not yet started, holds a lease and is left alone."""
    now = dispatcher.now()
    every = timedelta(seconds=dispatcher.limits.hold_check_seconds)
    if dispatcher.held_looked_at is not None and now - dispatcher.held_looked_at < every:
        return
    dispatcher.held_looked_at = now
    due = Job.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=Now()),
        status=Job.Status.DOWNLOAD_HELD,
        download_retry_at__lte=now,
    )
    for job in due:
        hold_and_enqueue(dispatcher, job)

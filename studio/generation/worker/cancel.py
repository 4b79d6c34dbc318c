"""Cancels: those a person asked for after the job left the queue, and those the studio
asks for itself when a task waited past the timeout."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from studio.dashscope.errors import DashScopeError
from studio.generation import messages
from studio.generation.models import Job
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.limits import Backoff
from studio.generation.worker.outcomes import finish

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher


def cancel_requested(dispatcher: Dispatcher) -> None:
    """Act on cancels asked for after a job left the queue. The request stands until
    the job ends: a cancel the provider refused or did not answer is asked again, and
    a task found cancelled is the person's cancel, not a timeout."""
    now = dispatcher.now()
    # One query a pass, which nearly always finds nothing.
    for job in Job.objects.filter(
        cancel_requested=True, status__in=(Job.Status.QUEUED, Job.Status.PENDING)
    ):
        if job.status == Job.Status.QUEUED:
            # Sent back to the queue (the provider was busy) after the cancel was asked.
            finish(job, Job.Status.CANCELED, message=messages.CANCELED, expect=(job.status,))
            continue
        tries = dispatcher.cancels.setdefault(str(job.pk), Backoff(first=2, cap=30))
        if not tries.ready(now):
            continue
        if not dispatcher.queries.take():
            continue  # asked on a later pass; a queued one needs no query
        _ask_to_cancel(dispatcher, job, tries, now)


def _ask_to_cancel(dispatcher: Dispatcher, job: Job, tries: Backoff, now: datetime) -> None:
    try:
        dispatcher.client.cancel(job.provider_task_id)
    except DashScopeError as error:
        if tries.failed(now, error.code):
            job.log("Provider call: cancel", request_id=error.request_id or "", code=error.code)
        if error.code == "UnsupportedOperation":
            # No longer waiting: started, or cancelled by an answer that was lost.
            # The next poll says which.
            Job.objects.filter(pk=job.pk).update(next_poll_at=now)
        return
    job.log("Provider call: cancel", code="ok")
    finish(job, Job.Status.CANCELED, message=messages.CANCELED)
    dispatcher.stop_watching(job)


@acting_on_job
def cancel_timed_out(dispatcher: Dispatcher, job: Job) -> None:
    try:
        dispatcher.client.cancel(job.provider_task_id)
        job.log("Provider call: cancel after the timeout", code="ok")
    except DashScopeError as error:
        job.log(
            "Provider call: cancel after the timeout",
            request_id=error.request_id or "",
            code=error.code,
        )

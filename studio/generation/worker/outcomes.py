"""How a job ends or goes back to the queue: settled once, in one transaction with its
quota charge for exactly the images stored."""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Unpack

from django.db import transaction

from studio.audit.models import Activity
from studio.dashscope.errors import DashScopeError, RequestRefused
from studio.dashscope.types import TaskResult, TaskStatus
from studio.generation import messages
from studio.generation.models import Job, LeaseFields, QuotaCharge
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.handover import hold_fields
from studio.generation.worker.limits import Limits
from studio.generation.worker.notices import tell_after_commit

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher

# One logger for the whole worker, as operators filter its lines by that name.
logger = logging.getLogger("studio.generation.worker")

BUSY_LONGEST_PAUSE = 60.0  # seconds between sends of a job a busy provider turns away


@acting_on_job
def finish(
    job: Job,
    status: str,
    *,
    code: str = "",
    message: str = "",
    expect: tuple[str, ...] = Job.OPEN,
) -> bool:
    """End a job that is still in one of `expect`, and settle its quota for the images
    stored, in one transaction."""
    with transaction.atomic():
        moved = job.move(
            status,
            expect=expect,
            message=message,
            error_code=code,
            error_message=message if status == Job.Status.FAILED else "",
            lease_owner="",
            lease_until=None,
            result_urls=[],
        )
        if moved:
            stored = list(job.images.order_by("index").values_list("pk", flat=True))
            QuotaCharge.settle(job, len(stored))
            if stored:
                Activity.job_finished(job, stored)
            tell_after_commit(job, status)
    return moved


def cancel_unsent(job: Job) -> None:
    """End a job being sent, whose cancel came before the provider took it."""
    finish(
        job,
        Job.Status.CANCELED,
        message=messages.CANCELED_BEFORE_SENT,
        expect=(Job.Status.SUBMITTING,),
    )


def turned_away(
    job: Job,
    error: DashScopeError,
    now: datetime,
    limits: Limits,
    *,
    least_pause: float,
    **fields: Unpack[LeaseFields],
) -> None:
    """The provider turned a job being sent away as busy: back to the queue, to be sent
    again after a pause that grows with how long this has gone on (half of it, up to a
    minute, and never before the provider's Retry-After), or failed with nothing charged
    once it has gone on longer than the limit."""
    since = job.turned_away_at or now
    resend_due = job.next_poll_at
    if resend_due is not None and (now - resend_due).total_seconds() > BUSY_LONGEST_PAUSE:
        # Sent long after it was due again: it waited in the studio's queue meanwhile (other
        # jobs had the room), which is no refusal; this one starts a new run of them.
        since = now
    waited = (now - since).total_seconds()
    if waited >= limits.busy_give_up_seconds:
        _give_up_on_busy(job, error, waited)
        return
    pause = max(min(BUSY_LONGEST_PAUSE, max(least_pause, waited / 2)), error.retry_after or 0.0)
    job.move(
        Job.Status.QUEUED,
        expect=(Job.Status.SUBMITTING,),
        message="The provider is busy; trying again shortly.",
        attempts=0,
        turned_away_at=since,
        next_poll_at=now + timedelta(seconds=pause),
        **fields,
    )


def _give_up_on_busy(job: Job, error: DashScopeError, waited: float) -> None:
    if Job.objects.filter(pk=job.pk, cancel_requested=True).exists():
        cancel_unsent(job)
        return
    finish(
        job,
        Job.Status.FAILED,
        code=error.code,
        message=messages.turned_away(error, waited),
        expect=(Job.Status.SUBMITTING,),
    )


@acting_on_job
def refused(dispatcher: Dispatcher, job: Job, error: Exception) -> None:
    """Record a submit the provider answered with a refusal (or the studio could not
    make): back to the queue if the provider was only busy, ended otherwise."""
    if isinstance(error, RequestRefused):
        finish(job, Job.Status.FAILED, code="InvalidParameter", message=messages.refused(error))
    elif isinstance(error, DashScopeError) and error.retryable:
        job.log("Provider call: submit", request_id=error.request_id or "", code=error.code)
        turned_away(job, error, dispatcher.now(), dispatcher.limits, least_pause=2.0)
    elif isinstance(error, DashScopeError):
        job.log("Provider call: submit", request_id=error.request_id or "", code=error.code)
        finish(job, Job.Status.FAILED, code=error.code, message=messages.for_error(error))
    else:
        logger.exception("Submitting job %s failed", job.pk, exc_info=error)
        finish(
            job,
            Job.Status.FAILED,
            code="SubmitFailed",
            message="The studio could not send this job; nothing was charged.",
        )


def finished_at_provider(dispatcher: Dispatcher, job: Job, result: TaskResult, times: dict) -> None:
    """A task the provider reports final: its images handed to a download, or the job
    ended once the pass has committed."""
    status = result.status
    if status is TaskStatus.SUCCEEDED:
        _made(dispatcher, job, result, times)
        return
    job.log("Provider call: status", request_id=result.request_id, code=result.code or status.value)
    if status is TaskStatus.FAILED:
        dispatcher.finish_after_commit(
            job,
            Job.Status.FAILED,
            code=result.code or "Failed",
            message=messages.for_task_failure(result.code, result.message),
        )
    elif status is TaskStatus.CANCELED and job.cancel_requested:
        dispatcher.finish_after_commit(job, Job.Status.CANCELED, message=messages.CANCELED)
    elif status is TaskStatus.CANCELED:
        dispatcher.finish_after_commit(
            job, Job.Status.FAILED, code="TimedOut", message=messages.TIMED_OUT
        )
    else:
        dispatcher.finish_after_commit(
            job, Job.Status.FAILED, code="Expired", message=messages.EXPIRED
        )


def _made(dispatcher: Dispatcher, job: Job, result: TaskResult, times: dict) -> None:
    # One update takes the job to downloading and holds it for the step it is handed to:
    # this runs for every finished task, so it is kept to one query.
    moved = job.move(
        Job.Status.DOWNLOADING,
        expect=(Job.Status.PENDING, Job.Status.RUNNING, Job.Status.TIMED_OUT),
        message="Made by the provider; downloading.",
        request_id=result.request_id,
        code="SUCCEEDED",
        result_urls=list(result.image_urls),
        usage=usage(result),
        provider_finished_at=dispatcher.forecast.stored_time(result.end_time),
        **hold_fields(),
        **times,
    )
    if moved:
        if result.failures:
            job.log(
                f"{len(result.failures)} of the images failed at the provider",
                code=result.failures[0].code,
            )
        # Once the move is committed, or the step would find the job not ready.
        dispatcher.after_commit.append(functools.partial(dispatcher.download_now, job))


def usage(result: TaskResult) -> dict | None:
    counted = result.usage
    if counted is None:
        return None
    return {
        "image_count": counted.image_count,
        "width": counted.width,
        "height": counted.height,
        "input_tokens": counted.input_tokens,
        "output_tokens": counted.output_tokens,
    }

"""Polling: every task at the provider looked at when its plan says, within the account's
query budget, and what each answer changes written in one commit per pass."""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from django.db import transaction
from django.db.models import F

from studio.dashscope.errors import DashScopeError
from studio.dashscope.types import TaskResult, TaskStatus
from studio.generation import messages
from studio.generation.models import Job
from studio.generation.worker.cancel import cancel_timed_out
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.forecast import provider_time
from studio.generation.worker.outcomes import finished_at_provider
from studio.generation.worker.planning import (
    TIMED_OUT_POLL_SECONDS,
    next_poll,
    replan,
)

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher

POLLS_PER_PASS = 200
# When each model's slots were freed in this pass, by the tasks that ended.
Freed = dict[str, list[datetime]]


class StatusAnswer(NamedTuple):
    job: Job
    taken: float  # when the query was counted against the budget
    result: TaskResult | None
    error: DashScopeError | None
    answered_at: datetime


def poll(dispatcher: Dispatcher) -> None:
    """Ask the provider about every task whose look is due, as the budget allows."""
    batch = _within_budget(dispatcher, _due(dispatcher.now()))
    futures = [(job, taken, dispatcher.pool.submit(fetch, dispatcher, job)) for job, taken in batch]
    if not batch:
        return
    answers = [StatusAnswer(job, taken, *future.result()) for job, taken, future in futures]
    # What the answers change is written in one commit; downloads and cancels start
    # after it.
    dispatcher.after_commit, dispatcher.ending = [], set()
    with transaction.atomic():
        _record(dispatcher, answers)
    dispatcher.run_after_commit()


def _due(now: datetime) -> list[Job]:
    return list(
        Job.objects.filter(
            status__in=(Job.Status.PENDING, Job.Status.RUNNING, Job.Status.TIMED_OUT),
            next_poll_at__lte=now,
        )
        .exclude(provider_task_id="")
        .order_by("next_poll_at")[:POLLS_PER_PASS]
    )


def _within_budget(dispatcher: Dispatcher, due: list[Job]) -> list[tuple[Job, float]]:
    batch = []
    for job in due:
        taken = dispatcher.queries.take()
        if taken is None:
            break  # the rest keep their turn for the next pass
        batch.append((job, taken))
    return batch


def _record(dispatcher: Dispatcher, answers: list[StatusAnswer]) -> None:
    Job.objects.filter(pk__in=[answer.job.pk for answer in answers]).update(polls=F("polls") + 1)
    freed: Freed = defaultdict(list)
    for job, taken, result, error, answered_at in answers:
        dispatcher.queries.answered(taken, answered_at.timestamp())
        if error is not None:
            _not_answered(dispatcher, job, error)
        elif result is not None:
            observe(dispatcher, job, result, answered_at, freed)
    for model, times in freed.items():
        dispatcher._slots_freed(model, sorted(times))


@acting_on_job
def fetch(
    dispatcher: Dispatcher, job: Job
) -> tuple[TaskResult | None, DashScopeError | None, datetime]:
    # The time of the answer, not of its processing, is what the forecast learns from.
    try:
        return dispatcher.client.fetch(job.provider_task_id), None, dispatcher.now()
    except DashScopeError as error:
        return None, error, dispatcher.now()


def _not_answered(dispatcher: Dispatcher, job: Job, error: DashScopeError) -> None:
    job.log("Provider call: status", request_id=error.request_id or "", code=error.code)
    if job.status != Job.Status.TIMED_OUT and dispatcher.now() >= deadline(
        dispatcher, job, job.provider_submitted_at
    ):
        # The provider cannot say how the task is doing: the designer is told it is late,
        # and the studio keeps asking.
        time_out(dispatcher, job, TaskStatus.RUNNING, {})
        return
    Job.objects.filter(pk=job.pk).update(next_poll_at=dispatcher.now() + timedelta(seconds=2))


@acting_on_job
def observe(
    dispatcher: Dispatcher, job: Job, result: TaskResult, answered_at: datetime, freed: Freed
) -> None:
    """What one answer about the job's task changes."""
    now = dispatcher.now()
    status = result.status
    forecast = dispatcher.forecast
    # What this answer teaches of the provider's clock first: the times below are
    # kept in UTC with it.
    forecast.created(str(job.pk), provider_time(result.submit_time))
    first_duration = False
    if status is TaskStatus.SUCCEEDED:
        first_duration = forecast.duration(job.model) is None
        forecast.learn(job.model, result, answered_at)
    times = {
        "provider_submitted_at": forecast.stored_time(result.submit_time)
        or job.provider_submitted_at,
        "provider_started_at": forecast.stored_time(result.scheduled_time)
        or job.provider_started_at,
    }
    if status.is_final:
        dispatcher.stop_watching(job)
        if first_duration:
            replan(dispatcher, job.model)
        finished_at_provider(dispatcher, job, result, times)
        freed[job.model].append(forecast.ours(provider_time(result.end_time)) or now)
        return
    if job.status != Job.Status.TIMED_OUT and now >= deadline(
        dispatcher, job, times["provider_submitted_at"]
    ):
        time_out(dispatcher, job, status, times)
        return
    _still_at_provider(dispatcher, job, status, times, now)


def _still_at_provider(
    dispatcher: Dispatcher, job: Job, status: TaskStatus, times: dict, now: datetime
) -> None:
    to = Job.Status.RUNNING if status is TaskStatus.RUNNING else Job.Status.PENDING
    if job.status == Job.Status.TIMED_OUT:
        to, due = Job.Status.TIMED_OUT, now + timedelta(seconds=TIMED_OUT_POLL_SECONDS)
    else:
        due = next_poll(dispatcher, job, status, times["provider_started_at"], now)
    if to == job.status:
        Job.objects.filter(pk=job.pk).update(next_poll_at=due, **times)
        return
    job.move(
        to,
        expect=(job.status,),
        message=(
            "Running at the provider. It started before it could be cancelled; its "
            "images will be stored."
            if to == Job.Status.RUNNING and job.cancel_requested
            else "Running at the provider."
        ),
        next_poll_at=due,
        **times,
    )


def deadline(dispatcher: Dispatcher, job: Job, provider_submitted: datetime | None) -> datetime:
    ours = job.submit_started_at or job.created_at
    anchor = ours
    if provider_submitted and abs((provider_submitted - ours).total_seconds()) < 300:
        anchor = provider_submitted
    return anchor + timedelta(seconds=dispatcher.limits.timeout_seconds)


@acting_on_job
def time_out(dispatcher: Dispatcher, job: Job, status: TaskStatus, times: dict) -> None:
    now = dispatcher.now()
    dispatcher.stop_watching(job)
    job.move(
        Job.Status.TIMED_OUT,
        expect=(job.status,),
        message=messages.TIMED_OUT_WATCHING,
        timed_out_at=now,
        next_poll_at=now + timedelta(seconds=TIMED_OUT_POLL_SECONDS),
        **times,
    )
    if status is TaskStatus.PENDING and dispatcher.queries.take():
        # A provider call: made once this pass's changes are committed, so no
        # transaction waits on the network.
        dispatcher.after_commit.append(functools.partial(cancel_timed_out, dispatcher, job))

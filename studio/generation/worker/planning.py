"""When each task at the provider is looked at next: just after the forecast says it ends,
or, while a model's duration is unknown, through one probe task per model."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from studio.dashscope.types import TaskStatus
from studio.generation.models import Job
from studio.generation.worker.forecast import poll_interval

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher

# The tasks the provider has, running or waiting for a slot.
WATCHED = (Job.Status.PENDING, Job.Status.RUNNING)
TIMED_OUT_POLL_SECONDS = 30.0
# Until a model's duration is learnt, one of its running tasks, the probe, is looked at
# every tenth of its age (from PROBE_SECONDS on), and the others no more than once a
# second: the probe's end teaches when all of them end (replan()), without spending the
# query budget on every one of them. A 1 s task is then noticed within a fifth of a
# second, a 30 s one within three.
PROBE_SECONDS = 0.2
# A task sent into a free slot is looked at this soon, so the designer sees it running.
EARLY_LOOK_SECONDS = 1.0
PROBE_SHARE = 0.1


def first_poll(dispatcher: Dispatcher, job: Job, now: datetime, ahead: int) -> datetime:
    """The first look at a task just accepted, behind `ahead` others of its model."""
    forecast = dispatcher.forecast
    seconds = forecast.duration(job.model)
    if ahead >= dispatcher.limits.running_per_model:
        # It waits at the provider behind the running ones (first in, first out);
        # slots_freed() brings this forward when it starts.
        return now + timedelta(seconds=max(2 * (seconds or 1.0), 2.0))
    end = forecast.expected_end(job.model, now)
    if end is None:
        return now + timedelta(seconds=blind_interval(dispatcher, job, 0.0))
    if end - now > timedelta(seconds=2 * EARLY_LOOK_SECONDS):
        # Sent into a free slot, it starts at once: one early look lets the designer see
        # it running (and is the only way to, as the next look is at its expected end).
        # Only here: a task sent to wait behind others is looked at when it starts.
        return now + timedelta(seconds=EARLY_LOOK_SECONDS)
    return end


def blind_interval(dispatcher: Dispatcher, job: Job, age: float) -> float:
    """Seconds until the next look at a running task of a model whose duration is not
    known yet; `age` is how long it has been running."""
    cadence = poll_interval(age)
    if dispatcher.probes.setdefault(job.model, str(job.pk)) == str(job.pk):
        return min(max(PROBE_SECONDS, PROBE_SHARE * age), cadence)
    return max(1.0, cadence)


def running_now(dispatcher: Dispatcher, model: str) -> list[Job]:
    """The model's tasks the provider is running: its oldest `running_per_model`
    (first in, first out), whether or not a poll has seen them start."""
    running = Job.objects.filter(model=model, status__in=WATCHED).exclude(pk__in=dispatcher.ending)
    return list(running.order_by("submit_started_at")[: dispatcher.limits.running_per_model])


def arrived(dispatcher: Dispatcher, job: Job) -> datetime | None:
    """No earlier than its submit was answered, if this dispatcher sent it."""
    return dispatcher.forecast.answered.get(str(job.pk), job.submit_started_at)


def replan(dispatcher: Dispatcher, model: str) -> None:
    """Now that the model's duration is known, bring forward the polls of its running
    tasks that were planned blind: those that started with this one are done too. One
    not seen started started no sooner than it arrived."""
    forecast = dispatcher.forecast
    for job in running_now(dispatcher, model):
        started: datetime | None
        if job.provider_started_at is not None:
            started = forecast.ours(job.provider_started_at) or job.provider_started_at
        else:
            started = arrived(dispatcher, job)
        end = forecast.expected_end(model, started) if started else None
        if end is not None and (job.next_poll_at is None or end < job.next_poll_at):
            Job.objects.filter(pk=job.pk).update(next_poll_at=end)


def slots_freed(dispatcher: Dispatcher, model: str, times: list[datetime]) -> None:
    """The provider starts its oldest waiting tasks, first in first out, the moment
    slots free (at `times`, earliest first): their polls are brought forward."""
    # The newest of those running now are the ones that just started, one per slot.
    oldest = running_now(dispatcher, model)
    starters = oldest[max(0, dispatcher.limits.running_per_model - len(times)) :]
    soonest = dispatcher.now() + timedelta(seconds=0.05)
    for starter, freed_at in zip(starters, times, strict=False):
        # A task sent after the slot freed (the studio fell behind) starts when it
        # arrives.
        started = max(freed_at, arrived(dispatcher, starter) or freed_at)
        due = dispatcher.forecast.expected_end(model, started) or started + timedelta(
            seconds=poll_interval(0)
        )
        due = max(due, soonest)
        if starter.next_poll_at is None or starter.next_poll_at > due:
            Job.objects.filter(pk=starter.pk).update(next_poll_at=due)


def next_poll(
    dispatcher: Dispatcher, job: Job, status: TaskStatus, started: datetime | None, now: datetime
) -> datetime:
    """The next look at a task still at the provider, `started` as the provider wrote it."""
    forecast = dispatcher.forecast
    cadence = poll_interval((now - (job.submit_started_at or now)).total_seconds())
    seconds = forecast.duration(job.model)
    if seconds is None and status is TaskStatus.RUNNING:
        since = forecast.ours(started) or job.submit_started_at or now
        age = max(0.0, (now - since).total_seconds())
        return now + timedelta(seconds=blind_interval(dispatcher, job, age))
    if seconds is None:
        return now + timedelta(seconds=cadence)
    if status is TaskStatus.PENDING:
        if job.pk in {running.pk for running in running_now(dispatcher, job.model)}:
            # It has a slot and is about to start: it ends no sooner than a run from now.
            end = forecast.expected_end(job.model, now)
            assert end is not None
            return end
        # Waiting for a slot: slots_freed() brings the poll forward when it starts.
        return now + timedelta(seconds=max(seconds, cadence))
    end = forecast.expected_end(job.model, forecast.ours(started) or now)
    if end is not None and end > now:
        return end
    # Past its expected end and still running: look again soon, then less often.
    wait = min(forecast.retry_after_miss(str(job.pk)), max(cadence, 1.0))
    return now + timedelta(seconds=wait)

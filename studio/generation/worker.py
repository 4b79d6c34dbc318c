"""The engine: from a queued job to stored images, within the provider's limits.

Two kinds of work, both safe to run twice:

- The dispatcher (one at a time across all worker hosts, by a database lease) admits
  queued jobs fairly within each model's running limit and submit rate, submits the async
  ones, and polls every task at the provider within the account's query budget. Because
  all queries and async submits go through it, the limits hold however many worker
  processes there are.
- A job step (`run_step`) does the slow work of one job: a sync generation, then
  downloading, verifying and storing its images and settling its quota. A per-job lease
  makes a duplicate delivery a no-op; attempts are counted when a step starts, so a job
  that crashes its worker fails after a few tries instead of crashing workers forever.

Invariants: a task id is committed before it is first polled, and a job with a task id is
never submitted again; an image is stored under a name made of its job and index, so a
retried download replaces rather than duplicates; a job is settled once.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import inspect
import io
import logging
import os
import queue
import socket
import threading
import time
import uuid
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import close_old_connections, connection, transaction
from django.db.models import Count, F, Max, Q, Window
from django.db.models.functions import Now, RowNumber
from django.utils import timezone
from PIL import Image

from studio.dashscope.client import DashScopeClient
from studio.dashscope.errors import DashScopeError, RequestRefused, SubmitUncertain
from studio.dashscope.types import SubmittedTask, TaskResult, TaskStatus, TaskSummary
from studio.generation import messages, shutdown
from studio.generation.models import GeneratedImage, Job, LeaseTerm, QuotaCharge
from studio.logs import log_context

logger = logging.getLogger(__name__)

STEP_LEASE_SECONDS = 90
# A job step's downloads stop retrying this long after the step began, and the job waits
# to try again in another step: the cluster kills a task past its timeout (Q_CLUSTER's 300
# s) as if it had crashed, and a crash spends one of the job's few attempts. A sync
# generation counts against it (what it leaves is for the downloads), and the dispatcher's
# slice (40 s, and the pass under way) waits for the downloads it began. A download may
# overrun it by a connect and a read timeout.
STEP_SECONDS = 180
# Passing download failures (a 5xx, a dropped connection) are retried with pauses doubling
# from 5 s to 10 min, about an hour in all; one that outlasts them holds the job.
DOWNLOAD_RETRIES = 12
IMAGE_TRIES = 3  # downloads of one image answering 403 or not an image, in one step
# What the studio refuses itself, or an operator must fix, does not change on a quick retry:
# a host it does not allow (or that resolves inward), a certificate it does not trust, a
# result over its byte cap. The job is held at once, and tried again with longer pauses.
HOLD_AT_ONCE = frozenset({"ResultURLRefused", "ResultTLSFailed", "ResultTooLarge"})
STORAGE_UNAVAILABLE = "StorageUnavailable"
DISPATCH_HOLD_SECONDS = 30  # how long an enqueued step may wait for a worker to pick it up
THUMBNAIL_SIDE = 512
MAX_RESULT_PIXELS = 4096 * 4096 * 2
Clock = Callable[[], datetime]


P = ParamSpec("P")
R = TypeVar("R")


def acting_on_job(func: Callable[P, R]) -> Callable[P, R]:
    """Run `func` with its `job` argument's id, model and task id on every log line."""
    position = list(inspect.signature(func).parameters).index("job")

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        job = args[position] if len(args) > position else kwargs["job"]
        with log_context(job_id=job.pk, model=job.model, task_id=job.provider_task_id):
            return func(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Limits:
    running_per_model: int = 2
    submits_per_second: int = 2
    queries_per_second: int = 20
    timeout_seconds: float = 120.0
    step_attempts: int = 3
    dispatcher_lease_seconds: float = 45.0  # longer than a submit's timeouts
    # How long a job step's hold on its job lasts unless renewed: a live step renews it
    # (lease_kept), so this is how long a worker that died holding a job blocks it.
    step_lease_seconds: float = STEP_LEASE_SECONDS
    # Tasks kept waiting at the provider beyond those it runs, so a freed slot is refilled
    # by the provider at once instead of after the studio notices. A colleague's job then
    # waits at most one extra turn of the slots.
    queue_ahead: int = 0
    # How long a job may be turned away by a busy provider before it is failed.
    busy_give_up_seconds: float = 1800.0
    # A held download is tried again after the time it has been held, at least the first
    # pause and at most the longest (1 min, 1, 2, 4... up to 30 min); the dispatcher looks
    # for held jobs due every `hold_check_seconds`.
    hold_first_seconds: float = 60.0
    hold_longest_seconds: float = 1800.0
    hold_check_seconds: float = 15.0

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            running_per_model=settings.STUDIO_PROVIDER_RUNNING_PER_MODEL,
            submits_per_second=settings.STUDIO_PROVIDER_SUBMITS_PER_SECOND,
            queries_per_second=settings.STUDIO_PROVIDER_QUERIES_PER_SECOND,
            timeout_seconds=settings.STUDIO_JOB_TIMEOUT_SECONDS,
            step_attempts=settings.STUDIO_STEP_ATTEMPTS,
            dispatcher_lease_seconds=settings.STUDIO_DISPATCHER_LEASE_SECONDS,
            step_lease_seconds=settings.STUDIO_STEP_LEASE_SECONDS,
            queue_ahead=settings.STUDIO_PROVIDER_QUEUE_AHEAD,
            busy_give_up_seconds=settings.STUDIO_PROVIDER_BUSY_GIVE_UP_SECONDS,
            hold_first_seconds=settings.STUDIO_DOWNLOAD_HOLD_FIRST_SECONDS,
            hold_longest_seconds=settings.STUDIO_DOWNLOAD_HOLD_LONGEST_SECONDS,
            hold_check_seconds=settings.STUDIO_DOWNLOAD_HOLD_CHECK_SECONDS,
        )


class RateWindow:
    """At most `per_second` takes in any sliding window of a little over a second.

    A take is counted from when it is made, and once its request is answered, from the
    answer: a request that waited for a thread under load may reach the provider well
    after it was counted, and the provider's own one-second window must never see more
    than the limit. The margin covers the rest of the jitter.
    """

    WINDOW = 1.25

    def __init__(self, per_second: int, clock: Callable[[], float]) -> None:
        self.per_second, self.clock = per_second, clock
        self.taken: list[float] = []

    def take(self) -> float | None:
        """The time counted for this request, or None when the window is full."""
        now = self.clock()
        self.taken = [t for t in self.taken if t > now - self.WINDOW]
        if len(self.taken) >= self.per_second:
            return None
        self.taken.append(now)
        return now

    def answered(self, taken: float, at: float) -> None:
        """Count a request from when its answer came, which is after it arrived."""
        try:
            position = self.taken.index(taken)
        except ValueError:
            return  # already out of the window
        self.taken[position] = max(taken, at)


def poll_interval(age_seconds: float) -> float:
    """Seconds until the next look at a task submitted `age_seconds` ago.

    Closer than the provider's advice (3 s for 30 s, then wider) early on, when most
    images finish, so results are noticed within a second; the query budget caps the total.
    """
    if age_seconds < 15:
        return 0.5
    if age_seconds < 30:
        return 2.0
    if age_seconds < 60:
        return 5.0
    return 10.0


TIMED_OUT_POLL_SECONDS = 30.0
# A task can be listed for 24 hours: a submit left unanswered is looked for that long (less
# a margin) while the provider cannot be asked, since it may have made and billed the task.
LOOK_FOR_TASK_SECONDS = 23 * 3600


@dataclass
class Backoff:
    """When to ask the provider again after it failed to do something: after `first`
    seconds, then twice as long each time, up to `cap`."""

    first: float
    cap: float
    failures: int = 0
    code: str = ""
    not_before: datetime | None = None

    def ready(self, now: datetime) -> bool:
        return self.not_before is None or now >= self.not_before

    def succeeded(self) -> None:
        self.failures, self.code, self.not_before = 0, "", None

    def failed(self, now: datetime, code: str) -> bool:
        """Count a failure; True when it is news (the first, or another error than the last),
        and so worth a line in the job's history."""
        news = self.failures == 0 or code != self.code
        self.not_before = now + timedelta(seconds=min(self.cap, self.first * 2**self.failures))
        self.failures += 1
        self.code = code
        return news


# Until a model's duration is learnt, one of its running tasks, the probe, is looked at
# every tenth of its age (from PROBE_SECONDS on), and the others no more than once a
# second: the probe's end teaches when all of them end (Dispatcher._replan), without
# spending the query budget on every one of them. A 1 s task is then noticed within a
# fifth of a second, a 30 s one within three.
PROBE_SECONDS = 0.2
# A task sent into a free slot is looked at this soon, so the designer sees it running.
EARLY_LOOK_SECONDS = 1.0
PROBE_SHARE = 0.1


class Forecast:
    """When a task at the provider will finish, learnt from the tasks that did.

    The provider reports when each task started and ended; their difference teaches how
    long a model takes, and the gap between a reported end and our noticing it teaches
    the offset between its clock and ours. A running task is then polled just after its
    expected end instead of on a fixed cadence: results are noticed sooner, with fewer
    queries. When a guess is early, polls follow at growing intervals.
    """

    MARGIN = 0.04  # seconds after the expected end

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}
        # Upper bounds of our clock minus the provider's; the least is the best estimate.
        self.offsets: deque[float] = deque(maxlen=20)
        self.misses: dict[str, int] = {}
        # When each submit was answered, until its task's creation time is known: the
        # provider created the task before it answered, so their difference bounds the
        # offset within one round trip. Bounds from noticed ends are looser by however
        # late the end was noticed, and polls planned with them would be as late again.
        self.answered: dict[str, datetime] = {}

    def submitted(self, job_id: str, answered_at: datetime) -> None:
        self.answered[job_id] = answered_at

    def created(self, job_id: str, provider_submit_time: datetime | None) -> None:
        answered_at = self.answered.pop(job_id, None)
        if answered_at is not None and provider_submit_time is not None:
            self.offsets.append((answered_at - provider_submit_time).total_seconds())

    def duration(self, model: str) -> float | None:
        return self.durations.get(model)

    def learn(self, model: str, result: TaskResult, observed_at: datetime) -> None:
        started, ended = _provider_time(result.scheduled_time), _provider_time(result.end_time)
        if started and ended and ended >= started:
            seconds = (ended - started).total_seconds()
            previous = self.durations.get(model)
            self.durations[model] = seconds if previous is None else 0.7 * previous + 0.3 * seconds
        if ended:
            self.offsets.append((observed_at - ended).total_seconds())

    def ours(self, provider_time: datetime | None) -> datetime | None:
        if provider_time is None or not self.offsets:
            return None
        return provider_time + timedelta(seconds=min(self.offsets))

    def zone_shift(self) -> timedelta:
        """Our clock minus the provider's written times, when that is a time zone rather
        than drift: the documents never say in which zone the provider writes its times."""
        if not self.offsets:
            return timedelta(0)
        offset = min(self.offsets)
        zone = 900 * round(offset / 900)  # zones go by 15 minutes, from -12 h to +14 h
        if (
            abs(offset) < ZONE_SHIFT_FROM_SECONDS
            or abs(zone) > 14 * 3600
            or abs(offset - zone) > ZONE_DRIFT_SECONDS
        ):
            return timedelta(0)  # drift, or a clock that is simply wrong: ours is trusted
        return timedelta(seconds=zone)

    def zone_shifts(self) -> list[timedelta]:
        """The zone shifts worth trying, most likely first: the one the provider's answers
        were written in so far or, before any, UTC's and then UTC+8's (Beijing's and
        Singapore's), as our clock less the provider's."""
        return [self.zone_shift()] if self.offsets else [timedelta(0), timedelta(hours=-8)]

    def expected_end(self, model: str, started: datetime) -> datetime | None:
        seconds = self.duration(model)
        if seconds is None:
            return None
        return started + timedelta(seconds=seconds + self.MARGIN)

    def retry_after_miss(self, job_id: str) -> float:
        misses = self.misses.get(job_id, 0)
        self.misses[job_id] = misses + 1
        return 0.1 * 2**misses

    def forget(self, job_id: str) -> None:
        self.misses.pop(job_id, None)
        self.answered.pop(job_id, None)

    def state(self) -> dict:
        return {"durations": self.durations, "offsets": list(self.offsets)}

    def resume(self, state: dict) -> None:
        self.durations.update(state.get("durations", {}))
        self.offsets.extend(state.get("offsets", []))


# A difference between the provider's written times and our clock beyond this is taken for
# a time zone, not for drift or a slow answer.
ZONE_SHIFT_FROM_SECONDS = 600
ZONE_DRIFT_SECONDS = 120  # what a zone's offset may be off by, clocks and answers being late


def _provider_time(value: datetime | None) -> datetime | None:
    # The provider writes naive times; the studio reads them as UTC and, where they
    # disagree with its own clock by more than a few minutes, trusts its own.
    return value.replace(tzinfo=UTC) if value else None


class Dispatcher:
    def __init__(
        self,
        client: DashScopeClient,
        *,
        limits: Limits | None = None,
        now: Clock = timezone.now,
        enqueue_step: Callable[[Job], None] | None = None,
        download_now: Callable[[Job], None] | None = None,
        threads: int = 8,
    ) -> None:
        self.client = client
        self.limits = limits or Limits.from_settings()
        self.now = now
        self.queries = RateWindow(self.limits.queries_per_second, self._seconds)
        self.submits: dict[str, RateWindow] = defaultdict(
            lambda: RateWindow(self.limits.submits_per_second, self._seconds)
        )
        self.enqueue_step = enqueue_step or enqueue_job_step
        # Where a finished task's download goes: by default the same queue as any step.
        self.download_now = download_now or self.enqueue_step
        self.forecast = Forecast()
        # What a pass does once its changes are committed: downloads, provider calls. Not
        # transaction.on_commit(): the pass's own commit is the moment, even where a caller
        # (a test) holds an outer transaction that never commits.
        self._after_commit: list[Callable[[], None]] = []
        self._ending: set[object] = set()  # jobs this pass ends once it has committed
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dispatch")
        self._probes: dict[str, str] = {}  # model -> the job whose end teaches its duration
        # Looks for the tasks of unanswered submits, and the jobs already said to be looked
        # for (each says so once).
        self._recovery = Backoff(first=5, cap=60)
        self._looked_for: set[str] = set()
        self._cancels: dict[str, Backoff] = {}  # job -> asks to cancel that failed
        self._held_looked_at: datetime | None = None  # the last look for held jobs due

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    def _seconds(self) -> float:
        # Wall-clock seconds, so request times mean the same to the next dispatcher.
        return self.now().timestamp()

    def rate_state(self) -> dict:
        """The recent request times, for the next dispatcher to respect."""
        return {
            "queries": list(self.queries.taken),
            "submits": {model: list(w.taken) for model, w in self.submits.items()},
            "forecast": self.forecast.state(),
        }

    def resume(self, state: dict) -> None:
        self.forecast.resume(state.get("forecast", {}))
        self.queries.taken.extend(state.get("queries", []))
        for model, taken in state.get("submits", {}).items():
            self.submits[model].taken.extend(taken)

    def idle_seconds(self, longest: float = 0.1) -> float:
        """How long to rest before the next pass: until the next poll falls due, if sooner."""
        due = (
            Job.objects.filter(status__in=(*_WATCHED, Job.Status.TIMED_OUT))
            .exclude(next_poll_at=None)
            .order_by("next_poll_at")
            .values_list("next_poll_at", flat=True)
            .first()
        )
        if due is None:
            return longest
        return min(longest, max(0.005, (due - self.now()).total_seconds()))

    def step(self) -> bool:
        """One pass over all open jobs; True while any job is still open."""
        self._recover_interrupted_submits()
        # Jobs that arrived while the last ones were being sent are sent at once, while
        # the provider has room, rather than after a full pass.
        for _ in range(ADMISSION_ROUNDS):
            if not self._admit():
                break
        self._cancel_requested()
        self._poll()
        self._hand_over_steps()
        self._hand_over_held_downloads()
        return work_left(self.now())

    # -- admission ------------------------------------------------------------------------

    def _admit(self) -> bool:
        """Send queued jobs the provider has room for; True if it sent some and has room
        for more (more jobs may have been queued meanwhile)."""
        now = self.now()
        waiting = Job.objects.filter(
            Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now),
            status=Job.Status.QUEUED,
            cancel_requested=False,  # _cancel_requested() ends these
        )
        # One row per person and model (order_by() keeps DISTINCT from seeing created_at).
        pairs = set(waiting.order_by().values_list("model", "author_id").distinct())
        if not pairs:
            return False
        busy = defaultdict(int)  # jobs at the provider per model
        per_author = defaultdict(int)  # per (model, author)
        for row in (
            Job.objects.filter(status__in=Job.AT_PROVIDER)
            .values("model", "author_id")
            .annotate(count=Count("id"))
        ):
            busy[row["model"]] += row["count"]
            per_author[(row["model"], row["author_id"])] += row["count"]
        room_by_model = {
            model: self.limits.running_per_model + self.limits.queue_ahead - busy[model]
            for model, _ in pairs
        }
        by_model: dict[str, list[Job]] = defaultdict(list)
        with_room = [model for model, room in room_by_model.items() if room > 0]
        if with_room:
            # Each person's oldest few per model, enough to fill the room, in one query: a
            # backlog of thousands costs no more than a single job, and hides nobody's job
            # behind it.
            ranked = (
                waiting.filter(model__in=with_room)
                .annotate(
                    rank=Window(
                        RowNumber(),
                        partition_by=[F("model"), F("author_id")],
                        order_by=F("created_at").asc(),
                    )
                )
                .filter(rank__lte=max(room_by_model[m] for m in with_room))
                .order_by("created_at")
            )
            for job in ranked:
                if job.rank <= room_by_model[job.model]:
                    by_model[job.model].append(job)
        # When each person was last served per model: the longest-waiting goes first.
        last_served: dict[tuple[str, int], datetime] = {
            (row["model"], row["author_id"]): row["last"]
            for row in Job.objects.filter(
                model__in=by_model,
                submit_started_at__isnull=False,
                submit_started_at__gte=now - timedelta(hours=1),
            )
            .values("model", "author_id")
            .annotate(last=Max("submit_started_at"))
        }
        never = datetime.min.replace(tzinfo=UTC)
        submissions = []
        # One model's jobs go one after another, so the provider creates their tasks in our
        # order (the forecast and the recovery of an interrupted submit rely on it);
        # different models go side by side. Each job is marked as sent in a commit of its
        # own just before its request leaves: a dispatcher that dies finds at most the one
        # it was sending without a task, never a batch it had not sent yet. The request
        # leaves while the next job is marked; requests are built here, in the thread that
        # owns the database connection.
        answers: queue.SimpleQueue = queue.SimpleQueue()
        senders: dict[str, queue.SimpleQueue] = {}
        try:
            for model, candidates in by_model.items():
                room = room_by_model[model]
                while room > 0 and candidates:
                    # Fair share: the person with the fewest jobs at the provider goes next,
                    # and among equals the one served longest ago, so one person's batch
                    # never holds a colleague back by more than a slot.
                    job = min(
                        candidates,
                        key=lambda j: (
                            per_author[(model, j.author_id)],
                            last_served.get((model, j.author_id), never),
                            j.created_at,
                        ),
                    )
                    taken = self.submits[model].take()
                    if taken is None:
                        break
                    candidates.remove(job)
                    # Distinct times keep the order in which the provider will queue them.
                    sent_at = now + timedelta(microseconds=len(submissions))
                    # A sync call is slow: a worker's step makes it. The job is held for
                    # that step in the same update, so a dispatcher that dies before
                    # handing it over leaves a hold that runs out and is handed over again.
                    hold = {} if job.is_asynchronous else self._hold()
                    if not job.move(
                        Job.Status.SUBMITTING,
                        expect=(Job.Status.QUEUED,),
                        message="Sent to the provider.",
                        submit_started_at=sent_at,
                        **hold,
                    ):
                        continue
                    room -= 1
                    per_author[(model, job.author_id)] += 1
                    last_served[(model, job.author_id)] = now
                    if not job.is_asynchronous:
                        self.enqueue_step(job)
                        continue
                    if model not in senders:
                        senders[model] = queue.SimpleQueue()
                        self.pool.submit(self._submit_in_order, senders[model], answers)
                    senders[model].put((job, job.to_generation_request(), taken))
                    submissions.append(job)
                room_by_model[model] = room
        finally:
            for sender in senders.values():
                sender.put(None)  # no more for this pass (a sender never waits forever)
        # Task ids are committed as their answers arrive, those that arrived together in
        # one commit. Tasks already at the provider, per model: only this dispatcher adds
        # to them, so one count serves the batch.
        watched: dict[str, int] = defaultdict(int)
        if submissions:
            watched.update(
                Job.objects.filter(model__in=by_model, status__in=_WATCHED)
                .values("model")
                .annotate(count=Count("id"))
                .values_list("model", "count")
            )
        uncertain: dict[str, list[Job]] = defaultdict(list)
        unanswered = len(submissions)
        while unanswered:
            arrived = [answers.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    arrived.append(answers.get_nowait())
            unanswered -= len(arrived)
            for job, _, _, answered_at, taken in arrived:
                self.submits[job.model].answered(taken, answered_at.timestamp())
            # Refused submits first, each in a transaction of its own. Ended before the
            # accepted ones are committed, a refused job is never left among sent jobs
            # without a task, which a successor would match to a colleague's task; ended
            # on its own, its settlement takes no other person's quota counters with it.
            for job, _, error, _, _ in arrived:
                if error is not None and not isinstance(error, SubmitUncertain):
                    self._refused(job, error)
            with transaction.atomic():
                for job, submitted, error, answered_at, _ in arrived:
                    if isinstance(error, SubmitUncertain):
                        job.log("submit: no answer from the provider", code=error.code)
                        uncertain[job.model].append(job)
                    elif error is None and self._accepted(
                        job, submitted, answered_at, watched[job.model]
                    ):
                        watched[job.model] += 1
        # Only now, with every answered task id committed, can the unanswered be told apart.
        for jobs in uncertain.values():
            self._reconcile_uncertain(jobs)
        return bool(submissions) and not uncertain and any(r > 0 for r in room_by_model.values())

    def _submit_in_order(self, batch: queue.SimpleQueue, answers: queue.SimpleQueue) -> None:
        while (item := batch.get()) is not None:
            job, request, taken = item
            try:
                with log_context(job_id=job.pk, model=job.model):
                    answers.put((job, self.client.submit(request), None, self.now(), taken))
            except Exception as exc:  # handled in the dispatcher's thread
                answers.put((job, None, exc, self.now(), taken))

    @acting_on_job
    def _accepted(
        self, job: Job, submitted: SubmittedTask, answered_at: datetime, ahead: int
    ) -> bool:
        """Record an accepted submit; True if the job is now a task at the provider, behind
        `ahead` others of its model."""
        self.forecast.submitted(str(job.pk), answered_at)
        # The submit call's request id and outcome go on the state change they caused.
        return job.move(
            Job.Status.PENDING,
            expect=(Job.Status.SUBMITTING,),
            message=f"Provider call: submit. Accepted as task {submitted.task_id}.",
            request_id=submitted.request_id,
            code="ok",
            provider_task_id=submitted.task_id,
            provider_request_id=submitted.request_id,
            next_poll_at=self._first_poll(job, answered_at, ahead),
            attempts=0,
        )

    @acting_on_job
    def _refused(self, job: Job, error: Exception) -> None:
        """Record a submit the provider answered with a refusal (or the studio could not
        make): back to the queue if the provider was only busy, ended otherwise."""
        if isinstance(error, RequestRefused):
            finish(job, Job.Status.FAILED, code="InvalidParameter", message=messages.refused(error))
        elif isinstance(error, DashScopeError) and error.retryable:
            job.log("Provider call: submit", request_id=error.request_id or "", code=error.code)
            turned_away(job, error, self.now(), self.limits, least_pause=2.0)
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

    def _finish_after_commit(self, job: Job, status: str, **how: Any) -> None:
        """End a job once the pass's commit is made, in a transaction of its own. Settling
        several jobs' quotas in one transaction takes their counters' rows in an order a
        designer's new job (its person's rows, then the team's) can deadlock against."""
        self._ending.add(job.pk)
        self._after_commit.append(functools.partial(finish, job, status, **how))

    def _run_after_commit(self) -> None:
        for then in self._after_commit:
            then()
        self._after_commit = []
        self._ending.clear()

    def _first_poll(self, job: Job, now: datetime, ahead: int) -> datetime:
        seconds = self.forecast.duration(job.model)
        if ahead >= self.limits.running_per_model:
            # It waits at the provider behind the running ones (first in, first out);
            # _slots_freed() brings this forward when it starts.
            return now + timedelta(seconds=max(2 * (seconds or 1.0), 2.0))
        end = self.forecast.expected_end(job.model, now)
        if end is None:
            return now + timedelta(seconds=self._blind_interval(job, 0.0))
        if end - now > timedelta(seconds=2 * EARLY_LOOK_SECONDS):
            # Sent into a free slot, it starts at once: one early look lets the designer see
            # it running (and is the only way to, as the next look is at its expected end).
            # Only here: a task sent to wait behind others is looked at when it starts.
            return now + timedelta(seconds=EARLY_LOOK_SECONDS)
        return end

    def _blind_interval(self, job: Job, age: float) -> float:
        """Seconds until the next look at a running task of a model whose duration is not
        known yet; `age` is how long it has been running."""
        cadence = poll_interval(age)
        if self._probes.setdefault(job.model, str(job.pk)) == str(job.pk):
            return min(max(PROBE_SECONDS, PROBE_SHARE * age), cadence)
        return max(1.0, cadence)

    def _running_now(self, model: str) -> list[Job]:
        """The model's tasks the provider is running: its oldest `running_per_model`
        (first in, first out), whether or not a poll has seen them start."""
        running = Job.objects.filter(model=model, status__in=_WATCHED).exclude(pk__in=self._ending)
        return list(running.order_by("submit_started_at")[: self.limits.running_per_model])

    def _arrived(self, job: Job) -> datetime | None:
        """No earlier than its submit was answered, if this dispatcher sent it."""
        return self.forecast.answered.get(str(job.pk), job.submit_started_at)

    def _replan(self, model: str) -> None:
        """Now that the model's duration is known, bring forward the polls of its running
        tasks that were planned blind: those that started with this one are done too. One
        not seen started started no sooner than it arrived."""
        for job in self._running_now(model):
            if job.provider_started_at is not None:
                started = self.forecast.ours(job.provider_started_at) or job.provider_started_at
            else:
                started = self._arrived(job)
            end = self.forecast.expected_end(model, started) if started else None
            if end is not None and (job.next_poll_at is None or end < job.next_poll_at):
                Job.objects.filter(pk=job.pk).update(next_poll_at=end)

    def _slots_freed(self, model: str, times: list[datetime]) -> None:
        """The provider starts its oldest waiting tasks, first in first out, the moment
        slots free (at `times`, earliest first): their polls are brought forward."""
        # The newest of those running now are the ones that just started, one per slot.
        oldest = self._running_now(model)
        starters = oldest[max(0, self.limits.running_per_model - len(times)) :]
        soonest = self.now() + timedelta(seconds=0.05)
        for starter, freed_at in zip(starters, times, strict=False):
            # A task sent after the slot freed (the studio fell behind) starts when it
            # arrives.
            started = max(freed_at, self._arrived(starter) or freed_at)
            due = self.forecast.expected_end(model, started) or started + timedelta(
                seconds=poll_interval(0)
            )
            due = max(due, soonest)
            if starter.next_poll_at is None or starter.next_poll_at > due:
                Job.objects.filter(pk=starter.pk).update(next_poll_at=due)

    def _reconcile_uncertain(self, jobs: list[Job]) -> None:
        """Unanswered submits of one model: adopt the tasks the provider made for them.

        A model's jobs are submitted one after another, so the provider made tasks for a
        first part of them, in the same order. The tasks of the model in the window that no
        job knows are matched to the jobs in order. More such tasks than jobs means someone
        else used the account meanwhile: nothing is adopted. A job left without a task fails
        with no charge; it is never sent again, since a lagging list could hide its task.
        """
        jobs = sorted(jobs, key=lambda j: j.submit_started_at or j.created_at)
        first = jobs[0].submit_started_at or self.now()
        last = jobs[-1].submit_started_at or self.now()
        window = (first - timedelta(seconds=5), last + timedelta(seconds=120))
        # The list is asked for a window in the provider's written time, whose zone the
        # documents never name. Only tasks it says it created within the window (in epoch
        # milliseconds, which need no zone) are taken.
        orphans: list[TaskSummary] = []
        for shift in self.forecast.zone_shifts():
            if not self.queries.take():
                return  # no query left this second; looked for again on the next pass
            try:
                tasks = self._list_window(jobs[0].model, window, shift)
            except DashScopeError as error:
                if self._recovery.failed(self.now(), error.code):
                    jobs[0].log("Provider call: list, to find the task", code=error.code)
                if self.now() - first < timedelta(seconds=LOOK_FOR_TASK_SECONDS):
                    # The provider could not say, which is not saying there is no task:
                    # the jobs stay as they are, and _recover_interrupted_submits() looks
                    # again after a pause (it takes submits older than a dispatcher's lease).
                    return
                for job in jobs:
                    finish(
                        job,
                        Job.Status.FAILED,
                        code="SubmitUnchecked",
                        message=messages.SUBMIT_UNCHECKED,
                    )
                return
            self._recovery.succeeded()
            known = set(
                Job.objects.filter(provider_task_id__in=[t.task_id for t in tasks]).values_list(
                    "provider_task_id", flat=True
                )
            )
            orphans = sorted(
                (t for t in tasks if t.task_id not in known), key=lambda t: t.created_at_ms or 0
            )
            if orphans:
                break
        if len(orphans) > len(jobs):
            orphans = []
        for index, job in enumerate(jobs):
            if index < len(orphans):
                task = orphans[index]
                job.move(
                    Job.Status.PENDING,
                    expect=(Job.Status.SUBMITTING,),
                    message=f"Found at the provider as task {task.task_id}.",
                    provider_task_id=task.task_id,
                    provider_request_id=task.request_id or "",
                    next_poll_at=self.now(),
                    attempts=0,
                )
            else:
                finish(
                    job,
                    Job.Status.FAILED,
                    code="SubmitUncertain",
                    message=messages.SUBMIT_UNCERTAIN,
                )

    def _list_window(
        self, model: str, window: tuple[datetime, datetime], shift: timedelta
    ) -> list[TaskSummary]:
        """The model's tasks created within `window` (our clock), asked for in the
        provider's written time: ours less `shift`."""

        def written(moment: datetime) -> str:
            return (moment - shift).astimezone(UTC).strftime("%Y%m%d%H%M%S")

        page = self.client.list_tasks(
            model=model, start_time=written(window[0]), end_time=written(window[1]), page_size=100
        )
        # Drift between the clocks is allowed for; a zone is not.
        low = int((window[0].timestamp() - ZONE_SHIFT_FROM_SECONDS) * 1000)
        high = int((window[1].timestamp() + ZONE_SHIFT_FROM_SECONDS) * 1000)
        return [
            task
            for task in page.tasks
            if task.created_at_ms is None or low <= task.created_at_ms <= high
        ]

    @staticmethod
    def _hold() -> dict[str, Any]:
        """A job's fields while it waits for the step it is handed to."""
        return {"lease_owner": "", "lease_until": Now() + timedelta(seconds=DISPATCH_HOLD_SECONDS)}

    @acting_on_job
    def _hold_and_enqueue(self, job: Job) -> None:
        # Only while no step holds the job: one that claimed it since it was read (an
        # admin's retry, say) keeps its lease, and no second step is sent after it.
        free = Q(lease_owner="") | Q(lease_until__isnull=True) | Q(lease_until__lt=Now())
        if Job.objects.filter(free, pk=job.pk).update(**self._hold()):
            self.enqueue_step(job)

    def _recover_interrupted_submits(self) -> None:
        """Async jobs left SUBMITTING without a task id, by a dispatcher that died or by a
        look at the provider that failed: find their task, never resend."""
        if not self._recovery.ready(self.now()):
            return
        # A dispatcher starts only once the previous one's lease ran out, so a submit older
        # than a lease was started by a dispatcher that is gone.
        since = self.now() - timedelta(seconds=self.limits.dispatcher_lease_seconds)
        interrupted: dict[str, list[Job]] = defaultdict(list)
        for job in Job.objects.filter(
            status=Job.Status.SUBMITTING, provider_task_id="", submit_started_at__lt=since
        ):
            if job.is_asynchronous:
                if str(job.pk) not in self._looked_for:
                    self._looked_for.add(str(job.pk))
                    job.log("No answer to its submit was recorded; looking for its task.")
                interrupted[job.model].append(job)
        for jobs in interrupted.values():
            self._reconcile_uncertain(jobs)

    # -- cancellation ---------------------------------------------------------------------

    def _cancel_requested(self) -> None:
        """Act on cancels asked for after a job left the queue. The request stands until
        the job ends: a cancel the provider refused or did not answer is asked again, and
        a task found cancelled is the person's cancel, not a timeout."""
        now = self.now()
        # One query a pass, which nearly always finds nothing.
        for job in Job.objects.filter(
            cancel_requested=True, status__in=(Job.Status.QUEUED, Job.Status.PENDING)
        ):
            if job.status == Job.Status.QUEUED:
                # Sent back to the queue (the provider was busy) after the cancel was asked.
                finish(job, Job.Status.CANCELED, message=messages.CANCELED, expect=(job.status,))
                continue
            tries = self._cancels.setdefault(str(job.pk), Backoff(first=2, cap=30))
            if not tries.ready(now):
                continue
            if not self.queries.take():
                continue  # asked on a later pass; a queued one needs no query
            try:
                self.client.cancel(job.provider_task_id)
            except DashScopeError as error:
                if tries.failed(now, error.code):
                    job.log(
                        "Provider call: cancel", request_id=error.request_id or "", code=error.code
                    )
                if error.code == "UnsupportedOperation":
                    # No longer waiting: started, or cancelled by an answer that was lost.
                    # The next poll says which.
                    Job.objects.filter(pk=job.pk).update(next_poll_at=now)
                continue
            job.log("Provider call: cancel", code="ok")
            finish(job, Job.Status.CANCELED, message=messages.CANCELED)
            self._stop_watching(job)

    # -- polling --------------------------------------------------------------------------

    def _poll(self) -> None:
        now = self.now()
        due = list(
            Job.objects.filter(
                status__in=(Job.Status.PENDING, Job.Status.RUNNING, Job.Status.TIMED_OUT),
                next_poll_at__lte=now,
            )
            .exclude(provider_task_id="")
            .order_by("next_poll_at")[:200]
        )
        batch = []
        for job in due:
            taken = self.queries.take()
            if taken is None:
                break  # the rest keep their turn for the next pass
            batch.append((job, taken))
        futures = [(job, taken, self.pool.submit(self._fetch, job)) for job, taken in batch]
        if not batch:
            return
        answered = [(job, taken, *future.result()) for job, taken, future in futures]
        # What the answers change is written in one commit; downloads and cancels start
        # after it.
        freed: dict[str, list[datetime]] = defaultdict(list)
        self._after_commit, self._ending = [], set()
        with transaction.atomic():
            Job.objects.filter(pk__in=[job.pk for job, _ in batch]).update(polls=F("polls") + 1)
            for job, taken, result, error, answered_at in answered:
                self.queries.answered(taken, answered_at.timestamp())
                if error is not None:
                    job.log(
                        "Provider call: status", request_id=error.request_id or "", code=error.code
                    )
                    if job.status != Job.Status.TIMED_OUT and self.now() >= self._deadline(
                        job, job.provider_submitted_at
                    ):
                        # The provider cannot say how the task is doing: the designer is
                        # told it is late, and the studio keeps asking.
                        self._time_out(job, TaskStatus.RUNNING, {})
                        continue
                    Job.objects.filter(pk=job.pk).update(
                        next_poll_at=self.now() + timedelta(seconds=2)
                    )
                    continue
                self._observe(job, result, answered_at, freed)
            for model, times in freed.items():
                self._slots_freed(model, sorted(times))
        self._run_after_commit()

    @acting_on_job
    def _fetch(self, job: Job) -> tuple[TaskResult | None, DashScopeError | None, datetime]:
        # The time of the answer, not of its processing, is what the forecast learns from.
        try:
            return self.client.fetch(job.provider_task_id), None, self.now()
        except DashScopeError as error:
            return None, error, self.now()

    @acting_on_job
    def _observe(
        self, job: Job, result: TaskResult, answered_at: datetime, freed: dict[str, list[datetime]]
    ) -> None:
        now = self.now()
        status = result.status
        # What this answer teaches of the provider's clock first: the times below are
        # kept in UTC with it.
        self.forecast.created(str(job.pk), _provider_time(result.submit_time))
        first_duration = False
        if status is TaskStatus.SUCCEEDED:
            first_duration = self.forecast.duration(job.model) is None
            self.forecast.learn(job.model, result, answered_at)
        times = {
            "provider_submitted_at": self._stored_time(result.submit_time)
            or job.provider_submitted_at,
            "provider_started_at": self._stored_time(result.scheduled_time)
            or job.provider_started_at,
        }
        if status.is_final:
            self._stop_watching(job)
            if first_duration:
                self._replan(job.model)
            self._finished_at_provider(job, result, times)
            freed[job.model].append(self.forecast.ours(_provider_time(result.end_time)) or now)
            return
        deadline = self._deadline(job, times["provider_submitted_at"])
        if job.status != Job.Status.TIMED_OUT and now >= deadline:
            self._time_out(job, status, times)
            return
        to = Job.Status.RUNNING if status is TaskStatus.RUNNING else Job.Status.PENDING
        if job.status == Job.Status.TIMED_OUT:
            to, due = Job.Status.TIMED_OUT, now + timedelta(seconds=TIMED_OUT_POLL_SECONDS)
        else:
            due = self._next_poll(job, status, times["provider_started_at"], now)
        if to != job.status:
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
        else:
            Job.objects.filter(pk=job.pk).update(next_poll_at=due, **times)

    def _stored_time(self, written: datetime | None) -> datetime | None:
        """A time the provider wrote, as the job keeps it: in UTC, whatever zone it was
        written in."""
        moment = _provider_time(written)
        return moment + self.forecast.zone_shift() if moment else None

    def _next_poll(
        self, job: Job, status: TaskStatus, started: datetime | None, now: datetime
    ) -> datetime:
        cadence = poll_interval((now - (job.submit_started_at or now)).total_seconds())
        seconds = self.forecast.duration(job.model)
        if seconds is None and status is TaskStatus.RUNNING:
            since = self.forecast.ours(started) or job.submit_started_at or now
            age = max(0.0, (now - since).total_seconds())
            return now + timedelta(seconds=self._blind_interval(job, age))
        if seconds is None:
            return now + timedelta(seconds=cadence)
        if status is TaskStatus.PENDING:
            if job.pk in {running.pk for running in self._running_now(job.model)}:
                # It has a slot and is about to start: it ends no sooner than a run from now.
                end = self.forecast.expected_end(job.model, now)
                assert end is not None
                return end
            # Waiting for a slot: _slots_freed() brings the poll forward when it starts.
            return now + timedelta(seconds=max(seconds, cadence))
        end = self.forecast.expected_end(job.model, self.forecast.ours(started) or now)
        if end is not None and end > now:
            return end
        # Past its expected end and still running: look again soon, then less often.
        wait = min(self.forecast.retry_after_miss(str(job.pk)), max(cadence, 1.0))
        return now + timedelta(seconds=wait)

    def _finished_at_provider(self, job: Job, result: TaskResult, times: dict) -> None:
        status = result.status
        if status is TaskStatus.SUCCEEDED:
            # One update takes the job to downloading and holds it for the step it is
            # handed to: this runs for every finished task, so it is kept to one query.
            moved = job.move(
                Job.Status.DOWNLOADING,
                expect=(Job.Status.PENDING, Job.Status.RUNNING, Job.Status.TIMED_OUT),
                message="Made by the provider; downloading.",
                request_id=result.request_id,
                code="SUCCEEDED",
                result_urls=list(result.image_urls),
                usage=_usage(result),
                provider_finished_at=self._stored_time(result.end_time),
                lease_owner="",
                lease_until=Now() + timedelta(seconds=DISPATCH_HOLD_SECONDS),
                **times,
            )
            if moved:
                if result.failures:
                    job.log(
                        f"{len(result.failures)} of the images failed at the provider",
                        code=result.failures[0].code,
                    )
                # Once the move is committed, or the step would find the job not ready.
                self._after_commit.append(functools.partial(self.download_now, job))
            return
        job.log(
            "Provider call: status", request_id=result.request_id, code=result.code or status.value
        )
        if status is TaskStatus.FAILED:
            self._finish_after_commit(
                job,
                Job.Status.FAILED,
                code=result.code or "Failed",
                message=messages.for_task_failure(result.code, result.message),
            )
        elif status is TaskStatus.CANCELED and job.cancel_requested:
            self._finish_after_commit(job, Job.Status.CANCELED, message=messages.CANCELED)
        elif status is TaskStatus.CANCELED:
            self._finish_after_commit(
                job, Job.Status.FAILED, code="TimedOut", message=messages.TIMED_OUT
            )
        else:
            self._finish_after_commit(
                job, Job.Status.FAILED, code="Expired", message=messages.EXPIRED
            )

    def _deadline(self, job: Job, provider_submitted: datetime | None) -> datetime:
        ours = job.submit_started_at or job.created_at
        anchor = ours
        if provider_submitted and abs((provider_submitted - ours).total_seconds()) < 300:
            anchor = provider_submitted
        return anchor + timedelta(seconds=self.limits.timeout_seconds)

    def _stop_watching(self, job: Job) -> None:
        """Forget what was kept in memory for planning the job's polls: it will not be
        planned again (it finished, was cancelled, or is only watched slowly now). Were it
        the probe, the next blind look picks another."""
        self.forecast.forget(str(job.pk))
        self._cancels.pop(str(job.pk), None)
        self._looked_for.discard(str(job.pk))
        if self._probes.get(job.model) == str(job.pk):
            del self._probes[job.model]

    @acting_on_job
    def _time_out(self, job: Job, status: TaskStatus, times: dict) -> None:
        now = self.now()
        self._stop_watching(job)
        job.move(
            Job.Status.TIMED_OUT,
            expect=(job.status,),
            message=messages.TIMED_OUT_WATCHING,
            timed_out_at=now,
            next_poll_at=now + timedelta(seconds=TIMED_OUT_POLL_SECONDS),
            **times,
        )
        if status is TaskStatus.PENDING and self.queries.take():
            # A provider call: made once this pass's changes are committed, so no
            # transaction waits on the network.
            self._after_commit.append(functools.partial(self._cancel_timed_out, job))

    @acting_on_job
    def _cancel_timed_out(self, job: Job) -> None:
        try:
            self.client.cancel(job.provider_task_id)
            job.log("Provider call: cancel after the timeout", code="ok")
        except DashScopeError as error:
            job.log(
                "Provider call: cancel after the timeout",
                request_id=error.request_id or "",
                code=error.code,
            )

    # -- steps ----------------------------------------------------------------------------

    def _hand_over_steps(self) -> None:
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
                continue  # see _recover_interrupted_submits()
            self._hold_and_enqueue(job)

    def _hand_over_held_downloads(self) -> None:
        """Hand held jobs whose retry is due to a step. Their pauses are a minute or more,
        so they are looked for every few seconds rather than on every pass: one query
        (on the status index) when it is time, none otherwise. A job whose step is under
        way, or handed out and not yet started, holds a lease and is left alone."""
        now = self.now()
        every = timedelta(seconds=self.limits.hold_check_seconds)
        if self._held_looked_at is not None and now - self._held_looked_at < every:
            return
        self._held_looked_at = now
        due = Job.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=Now()),
            status=Job.Status.DOWNLOAD_HELD,
            download_retry_at__lte=now,
        )
        for job in due:
            self._hold_and_enqueue(job)


_WATCHED = (Job.Status.PENDING, Job.Status.RUNNING)

# A held download whose next try is this close keeps the dispatcher passing (the length of
# a dispatcher's slice); one further off is left to the reconcile schedule.
HELD_SOON_SECONDS = 40


def work_left(now: datetime) -> bool:
    """Whether the dispatcher has work on its next passes: jobs to send, watch or download,
    or a held download whose next try is near. A download may be held for a day, retried
    minutes apart; passing ten times a second all that while would only load the database.
    The reconcile schedule starts a dispatcher every minute while any job is open, and its
    first pass hands over the held downloads that are due."""
    if Job.objects.filter(status__in=Job.WATCHED).exists():
        return True
    soon = now + timedelta(seconds=HELD_SOON_SECONDS)
    return Job.objects.filter(status=Job.Status.DOWNLOAD_HELD, download_retry_at__lte=soon).exists()


def _usage(result: TaskResult) -> dict | None:
    usage = result.usage
    if usage is None:
        return None
    return {
        "image_count": usage.image_count,
        "width": usage.width,
        "height": usage.height,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
    }


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
                from studio.gallery.models import Activity

                Activity.job_finished(job, stored)
    return moved


BUSY_LONGEST_PAUSE = 60.0  # seconds between sends of a job a busy provider turns away


def turned_away(
    job: Job,
    error: DashScopeError,
    now: datetime,
    limits: Limits,
    *,
    least_pause: float,
    **fields: Any,
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


def cancel_unsent(job: Job) -> None:
    """End a job being sent, whose cancel came before the provider took it."""
    finish(
        job,
        Job.Status.CANCELED,
        message=messages.CANCELED_BEFORE_SENT,
        expect=(Job.Status.SUBMITTING,),
    )


def enqueue_job_step(job: Job) -> None:
    from django_q.tasks import async_task

    async_task("studio.generation.tasks.run_job_step", str(job.pk), group="job-steps")


# -- job steps -----------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# A sync generation, downloads, and held downloads (when due, or retried by hand).
_STEP_WORKS_ON = (Job.Status.SUBMITTING, Job.Status.DOWNLOADING, Job.Status.DOWNLOAD_HELD)


def claim(job_id: str, owner: str, *, seconds: float = STEP_LEASE_SECONDS) -> Job | None:
    """Take the job's lease and count the attempt, or None if someone else holds it."""
    free = Q(lease_owner="") | Q(lease_until__isnull=True) | Q(lease_until__lt=Now())
    # A held job only once its try is due (the dispatcher's or an admin's "now"): a step
    # queued twice, or late, must not shorten the pause the job is held for.
    due = ~Q(status=Job.Status.DOWNLOAD_HELD) | Q(download_retry_at__lte=Now())
    with transaction.atomic():
        claimed = Job.objects.filter(free, due, pk=job_id, status__in=_STEP_WORKS_ON).update(
            lease_owner=owner,
            lease_until=Now() + timedelta(seconds=seconds),
            attempts=F("attempts") + 1,
        )
        if claimed:
            LeaseTerm.begin(LeaseTerm.of_job(job_id), owner, seconds=seconds)
    return Job.objects.get(pk=job_id) if claimed else None


def run_step(
    job_id: str, client: DashScopeClient, *, limits: Limits | None = None, now: Clock = timezone.now
) -> None:
    owner = worker_name()
    with log_context(job_id=job_id, worker=owner):
        _run_step(job_id, owner, client, limits or Limits.from_settings(), now)


def _run_step(job_id: str, owner: str, client: DashScopeClient, limits: Limits, now: Clock) -> None:
    job = claim(job_id, owner, seconds=limits.step_lease_seconds)
    if job is None:
        return  # a duplicate delivery, or the job moved on: nothing to do
    seconds = limits.step_lease_seconds
    with lease_kept(lambda: job.renew_lease(owner, seconds), seconds):
        _carry_out_step(job, client, limits, now)


@contextlib.contextmanager
def lease_kept(renew: Callable[[], bool], seconds: float) -> Iterator[None]:
    """Renew a lease of `seconds` while the block runs; `renew` says whether it is held.

    A live holder may wait minutes on the provider: a sync generation answers only when
    its images exist, a download may be retried, a dispatcher pass may send several
    submits that each wait for an answer. A lapsed lease would hand the work to another
    worker as if this one had died: a sync job would be failed as interrupted, or a
    submit still waiting for its answer taken for a lost one, while the provider makes
    (and bills) the images. A worker that does die stops renewing, and its lease runs out.
    """
    stop = threading.Event()

    def keep() -> None:
        try:
            while not stop.wait(seconds / 3):
                try:
                    if not renew():
                        return  # let go, or taken over
                except Exception:
                    # A lost connection or a locked database: the next round tries again,
                    # on a new connection, while the lease still runs.
                    logger.exception("Could not renew a lease")
                    connection.close()
        finally:
            connection.close()  # this thread's own, if it made one

    # The holder's log context (the job's id) goes with the thread.
    keeper = threading.Thread(
        target=contextvars.copy_context().run, args=(keep,), name="lease-keeper", daemon=True
    )
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def _carry_out_step(job: Job, client: DashScopeClient, limits: Limits, now: Clock) -> None:
    give_up_at = time.monotonic() + STEP_SECONDS
    if job.attempts > limits.step_attempts:
        moment = now()
        valid_until = job.results_valid_until or job.result_urls_valid_until(moment)
        if job.status != Job.Status.SUBMITTING and job.result_urls and moment < valid_until:
            # Its images are made: a step that keeps dying (storage that hangs past the
            # task's timeout, say) is an operator's to fix, and the job waits for it.
            logger.error("Job %s stopped its step %d times; held", job.pk, job.attempts - 1)
            hold_download(job, "WorkerCrashed", moment, valid_until, limits)
            return
        logger.error("Job %s failed its step %d times; giving up", job.pk, job.attempts - 1)
        finish(job, Job.Status.FAILED, code="WorkerCrashed", message=messages.WORKER_CRASHED)
        return
    if job.status == Job.Status.SUBMITTING:
        if job.attempts > 1:
            # A sync call was under way when its worker died: the images may exist, but
            # there is no task id to find them by.
            finish(
                job, Job.Status.FAILED, code="SubmitUncertain", message=messages.SUBMIT_UNCERTAIN
            )
            return
        if job.cancel_requested:
            cancel_unsent(job)
            return
        if not _generate(job, client, limits, now):
            return
    _download_all(job, client, give_up_at, limits, now)


@acting_on_job
def _generate(job: Job, client: DashScopeClient, limits: Limits, now: Clock) -> bool:
    try:
        # One try: a refused call goes back to the queue below, where the dispatcher paces
        # it by the provider's limits. Retried here, each try could take minutes and keep
        # the step past the cluster's timeout, whose kill would fail the job as uncertain
        # while the provider might be making (and billing) its images.
        result = client.generate(job.to_generation_request(), once=True)
    except SubmitUncertain as error:
        job.log("generate: no answer from the provider", code=error.code)
        finish(job, Job.Status.FAILED, code="SubmitUncertain", message=messages.SUBMIT_UNCERTAIN)
        return False
    except RequestRefused as error:
        finish(job, Job.Status.FAILED, code="InvalidParameter", message=messages.refused(error))
        return False
    except DashScopeError as error:
        job.log("Provider call: generate", request_id=error.request_id or "", code=error.code)
        if error.retryable:
            turned_away(
                job, error, now(), limits, least_pause=5.0, lease_owner="", lease_until=None
            )
        else:
            finish(job, Job.Status.FAILED, code=error.code, message=messages.for_error(error))
        return False
    job.log("Provider call: generate", request_id=result.request_id, code="ok")
    cancelled_meanwhile = Job.objects.filter(pk=job.pk, cancel_requested=True).exists()
    moved = job.move(
        Job.Status.DOWNLOADING,
        expect=(Job.Status.SUBMITTING,),
        message=(
            "Made by the provider before the cancel could stop it; its images will be stored."
            if cancelled_meanwhile
            else "Made by the provider; downloading."
        ),
        result_urls=list(result.image_urls),
        usage=_usage(result),
        provider_request_id=result.request_id,
    )
    if not moved:
        # Nothing ends a job being sent but its own step; should that change, the images
        # the provider made would be lost here, and this says so.
        logger.error("Job %s ended while its images were being made; they are not stored", job.pk)
    return moved


@dataclass(frozen=True)
class NotStored:
    """Why one result is not stored after a step's tries."""

    code: str
    # The provider no longer serves it (its URL expired, or the object is gone): final.
    gone: bool = False
    # A passing fault (a 5xx, a dropped connection, time up): worth a short pause.
    passing: bool = False


def _url_gone(error: DashScopeError) -> bool:
    """What a result host answers once a URL's validity is over, or its object is gone."""
    return (error.status == 403 and error.code == "AccessDenied") or (
        error.status == 404 and error.code == "NoSuchKey"
    )


def _fetch_and_store(
    job: Job, index: int, url: str, client: DashScopeClient, give_up_at: float
) -> NotStored | None:
    """Download one result and store it: None once it is stored, or why it is not."""
    # A held job is tried every few minutes for up to a day: its tries are not each a line
    # of its history (the hold's reason is, when it changes).
    record = job.status == Job.Status.DOWNLOADING
    outcome: NotStored | None = None
    for attempt in range(1, IMAGE_TRIES + 1):
        try:
            data = client.download(url, within=give_up_at - time.monotonic())
        except DashScopeError as error:
            if record:
                job.log(f"download of image {index + 1}", code=error.code)
            if error.code in HOLD_AT_ONCE:
                return NotStored(error.code)  # trying the same URL again gives the same answer
            if error.retryable:
                return NotStored(error.code, passing=True)
            # A 403 or 404 is tried again, in case the host only stumbled.
            outcome = NotStored(error.code, gone=_url_gone(error))
            continue
        try:
            store_result(job, index, data)
            return None
        except InvalidResult as error:
            # A cut connection or a proxy's error page: worth another try or two.
            if record:
                job.log(
                    f"image {index + 1} is not a valid image ({error}), try {attempt}",
                    code="InvalidResult",
                )
            outcome = NotStored("InvalidResult")
        except StorageUnavailable as error:
            if record:
                job.log(f"storing image {index + 1}: {error}", code=STORAGE_UNAVAILABLE)
            return NotStored(STORAGE_UNAVAILABLE)
    return outcome


@acting_on_job
def _download_all(
    job: Job, client: DashScopeClient, give_up_at: float, limits: Limits, now: Clock
) -> None:
    """Store every result not stored yet.

    A passing fault is tried again after a pause, in another step, for about an hour. What
    the studio refuses itself, a fault an operator can fix, and a passing fault that
    outlasted its retries hold the job (the images stored so far stay, the reservation
    stays) until the provider's URLs expire. Only images the provider no longer serves are
    given up, and the job is then charged for exactly what was stored.
    """
    stored = set(job.images.values_list("index", flat=True))
    not_stored: list[NotStored] = []
    for index, url in enumerate(job.result_urls):
        if index in stored:
            continue
        outcome = _fetch_and_store(job, index, url, client, give_up_at)
        if outcome is None:
            continue
        if (
            outcome.passing
            and job.status == Job.Status.DOWNLOADING
            and job.download_failures < DOWNLOAD_RETRIES
        ):
            _pause_downloads(job)
            return
        not_stored.append(outcome)
        if outcome.code == STORAGE_UNAVAILABLE:
            break  # the other images would meet the same storage
    moment = now()
    held = [outcome for outcome in not_stored if not outcome.gone]
    if held:
        valid_until = job.results_valid_until or job.result_urls_valid_until(moment)
        if moment < valid_until:
            hold_download(job, held[0].code, moment, valid_until, limits)
            return
        # The URLs have expired: what is not stored now never will be.
    count = job.images.count()
    # A sequence's n is an upper bound the model may stop short of; otherwise every
    # requested image that did not arrive makes the job partial.
    wanted = (
        len(job.result_urls)
        if job.parameters.get("enable_sequential")
        else max(job.images_requested, len(job.result_urls))
    )
    if count == 0 and not_stored:
        finish(job, Job.Status.FAILED, code="ResultExpired", message=messages.RESULTS_EXPIRED)
    elif count == 0:
        finish(job, Job.Status.FAILED, code="DownloadFailed", message=messages.DOWNLOAD_FAILED)
    elif count < wanted:
        finish(job, Job.Status.PARTIAL, message=messages.partial(count, wanted))
    else:
        finish(job, Job.Status.SUCCEEDED, message=messages.stored(count))


def _pause_downloads(job: Job) -> None:
    """Let go of the job for a pause that doubles with each passing failure. The step ends
    normally (attempts count crashes only), and the job is handed out again once the pause
    is over (Dispatcher._hand_over_steps)."""
    pause = min(5 * 2**job.download_failures, 600)
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(
            download_failures=F("download_failures") + 1,
            attempts=0,
            lease_owner="",
            lease_until=Now() + timedelta(seconds=pause),
        )
        LeaseTerm.end(LeaseTerm.of_job(job.pk), job.lease_owner)


def hold_download(
    job: Job, code: str, now: datetime, valid_until: datetime, limits: Limits
) -> None:
    """Hold a job whose images cannot be stored yet, for the reason `code`: tried again
    after as long as it has been held (within the first and longest pauses), and at the
    latest when its URLs expire, when that try is the last. The step lets go of it."""
    since = job.download_held_at or now
    held_for = (now - since).total_seconds()
    pause = min(limits.hold_longest_seconds, max(limits.hold_first_seconds, held_for))
    fields: dict[str, Any] = {
        "error_code": code,
        "download_held_at": since,
        "download_retry_at": min(now + timedelta(seconds=pause), valid_until),
        "results_valid_until": valid_until,
        "attempts": 0,
        "lease_owner": "",
        "lease_until": None,
    }
    if job.status != Job.Status.DOWNLOAD_HELD or job.error_code != code:
        # News for the history: the job is held, or held for another reason now.
        logger.warning("Job %s is held: its images cannot be stored yet (%s)", job.pk, code)
        job.move(
            Job.Status.DOWNLOAD_HELD,
            expect=(Job.Status.DOWNLOADING, Job.Status.DOWNLOAD_HELD),
            message=messages.DOWNLOAD_HELD_EVENT,
            code=code,
            **fields,
        )
        return
    logger.info(
        "Job %s is still held (%s); next try at %s", job.pk, code, fields["download_retry_at"]
    )
    with transaction.atomic():
        Job.objects.filter(pk=job.pk, status=Job.Status.DOWNLOAD_HELD).update(
            updated_at=timezone.now(), **fields
        )
        LeaseTerm.end(LeaseTerm.of_job(job.pk), job.lease_owner)


def _step_in_thread(job_id: str, client: DashScopeClient, limits: Limits) -> None:
    close_old_connections()  # this thread's database connection may have gone stale
    try:
        run_step(job_id, client, limits=limits)
    except Exception:
        with log_context(job_id=job_id):
            logger.exception("Downloading the results of job %s failed", job_id)


def _close_pool_connections(pool: ThreadPoolExecutor, workers: int) -> None:
    """Close each pool thread's database connection, then the pool.

    The threads end with the dispatcher's slice; their connections would otherwise linger
    as idle sessions until the garbage collector finds them. Each close waits for the
    others, so every thread takes exactly one.
    """
    barrier = threading.Barrier(workers)

    def close() -> None:
        connection.close()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)

    for _ in range(workers):
        pool.submit(close)
    pool.shutdown(wait=True)


class InvalidResult(ValueError):
    pass


# Where results and their thumbnails are stored, by job and index: a retry replaces its own.
RESULTS_DIR = "results"
THUMBS_DIR = "thumbs"
_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


def thumbnail_name(job_id: object, index: int) -> str:
    return f"{THUMBS_DIR}/{job_id}/{index}.webp"


@dataclass(frozen=True)
class DecodedResult:
    extension: str
    size: tuple[int, int]
    thumbnail: bytes


def decode_result(data: bytes) -> DecodedResult:
    """Decode a result as the studio takes them (PNG, JPEG or WebP, within the pixel cap,
    complete) and make its thumbnail; InvalidResult says what it was instead."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(_EXTENSIONS)) as image:
                if image.width * image.height > MAX_RESULT_PIXELS:
                    raise InvalidResult("too many pixels")
                image.load()  # a truncated file fails here, before anything is stored
                extension, size = _EXTENSIONS[image.format or "PNG"], image.size
                return DecodedResult(extension, size, thumbnail_webp(image))
    except InvalidResult:
        raise
    except Exception as exc:
        raise InvalidResult(type(exc).__name__) from None


class StorageUnavailable(Exception):
    """The media storage could not save a result: unavailable, full, refusing."""


def store_result(job: Job, index: int, data: bytes) -> GeneratedImage:
    """Verify a downloaded image and store it with its thumbnail; file first, then the row."""
    decoded = decode_result(data)
    ext = decoded.extension
    try:
        name = default_storage.save(f"{RESULTS_DIR}/{job.pk}/{index}.{ext}", ContentFile(data))
        thumb_name = default_storage.save(
            thumbnail_name(job.pk, index), ContentFile(decoded.thumbnail)
        )
    except Exception as exc:
        # Whatever the backend raises (OSError from a full disk, a bucket's errors): a fault
        # an operator fixes, which holds the job instead of crashing its step.
        logger.warning("Storing image %d of job %s failed", index + 1, job.pk, exc_info=True)
        raise StorageUnavailable(type(exc).__name__) from exc
    image_row, _ = GeneratedImage.objects.update_or_create(
        job=job,
        index=index,
        defaults={
            "team_id": job.team_id,
            "image": name,
            "thumbnail": thumb_name,
            "mime": f"image/{'jpeg' if ext == 'jpg' else ext}",
            "width": decoded.size[0],
            "height": decoded.size[1],
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
    )
    return image_row


def thumbnail_webp(image: Image.Image) -> bytes:
    """The gallery's thumbnail of a loaded image, which is shrunk in place."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")  # palette and 16-bit images shrink badly as they are
    # Halving by box averaging before the final resample: half the time, no visible loss
    # at gallery size. The conversion is then made on the small image.
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), reducing_gap=1.0)
    output = io.BytesIO()
    image.convert("RGB").save(output, format="WEBP", quality=80, method=2)
    return output.getvalue()


# A round of tasks finishing together is downloaded side by side: the last one waits for
# no other. Typical results decode to a few megabytes each.
DOWNLOAD_THREADS = 8
KICK_LEASE = "dispatcher-kick"  # held while a kicked dispatcher waits in the task queue
ADMISSION_ROUNDS = 3  # admissions in one pass, so polling is never held back for long


def dispatch_for(
    seconds: float,
    client: DashScopeClient,
    owner: str,
    downloads: DashScopeClient | None = None,
    *,
    hand_over: Callable[[], None] | None = None,
    wait_for_lease: float = 0.0,
) -> bool:
    """Run the dispatcher for up to `seconds`; True if jobs are still open and nobody has
    been asked to carry on. When the cluster is asked to stop, the slice ends after the
    pass under way, and the next cluster's first worker starts a dispatcher again.

    With a `downloads` client, finished tasks are downloaded by threads of this process
    right away, rather than through the task queue: the images are stored sooner. The
    step is the same (lease, attempts, storage); if this process dies first, the hold on
    the job runs out and the step is handed to the queue like any other.

    With `hand_over`, the next slice is queued a moment before this one ends, and waits
    (`wait_for_lease`) for the lease this one gives up: polling never pauses between
    slices, where it otherwise stopped for the time a new task takes to start.
    """
    from studio.generation.models import WorkerLease

    pool = ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS, thread_name_prefix="download")
    limits = Limits.from_settings()

    def download_now(job: Job) -> None:
        pool.submit(_step_in_thread, str(job.pk), downloads, limits)

    dispatcher = Dispatcher(client, limits=limits, download_now=download_now if downloads else None)
    lease = dispatcher.limits.dispatcher_lease_seconds
    deadline = time.monotonic() + seconds
    open_jobs = True
    handed_over = False
    try:
        if not _acquire_waiting(owner, lease, wait_for_lease):
            return False
        LeaseTerm.begin("dispatcher", owner)
        # The predecessor's request times: the provider's per-second limits hold across
        # the hand-over.
        dispatcher.resume(WorkerLease.handed_over("dispatcher"))
        # From now on a kick sees this dispatcher's lease instead.
        WorkerLease.objects.filter(name=KICK_LEASE).update(owner="", until=None)
        # Renewed on every pass, and meanwhile too: a pass may wait on several submits.
        with lease_kept(lambda: WorkerLease.renew("dispatcher", owner, lease), lease):
            while time.monotonic() < deadline and not shutdown.requested():
                if not WorkerLease.acquire("dispatcher", owner, seconds=lease):
                    return False
                open_jobs = dispatcher.step()
                if not open_jobs:
                    break
                if hand_over and not handed_over and time.monotonic() > deadline - HANDOVER_LEAD:
                    hand_over()
                    handed_over = True
                time.sleep(dispatcher.idle_seconds())
    finally:
        # The lease (with the rate state) goes first, so a waiting successor starts while
        # this process finishes the downloads it began.
        with transaction.atomic():
            LeaseTerm.end("dispatcher", owner)
            WorkerLease.release("dispatcher", owner, dispatcher.rate_state())
        dispatcher.close()
        _close_pool_connections(pool, DOWNLOAD_THREADS)
    if handed_over or shutdown.requested():
        return False
    return open_jobs or work_left(timezone.now())


HANDOVER_LEAD = 1.0  # seconds before a slice ends that its successor is queued


def _acquire_waiting(owner: str, lease: float, wait: float) -> bool:
    from studio.generation.models import WorkerLease

    give_up = time.monotonic() + wait
    while not WorkerLease.acquire("dispatcher", owner, seconds=lease):
        if time.monotonic() >= give_up or shutdown.requested():
            return False
        time.sleep(0.02)
    return True

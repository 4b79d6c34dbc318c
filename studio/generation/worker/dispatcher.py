"""The dispatcher's state, kept in one object, and its pass: each phase is a function of
another module that takes this object."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from uuid import UUID

from django.utils import timezone

from studio.dashscope.client import DashScopeClient
from studio.generation.models import Job
from studio.generation.worker.admission import admit
from studio.generation.worker.cancel import cancel_requested
from studio.generation.worker.forecast import Forecast
from studio.generation.worker.handover import (
    enqueue_job_step,
    hand_over_held_downloads,
    hand_over_steps,
)
from studio.generation.worker.limits import Backoff, Clock, Limits, RateWindow
from studio.generation.worker.outcomes import finish, refused
from studio.generation.worker.planning import WATCHED, slots_freed
from studio.generation.worker.polling import poll
from studio.generation.worker.recovery import recover_interrupted_submits

ADMISSION_ROUNDS = 3  # admissions in one pass, so polling is never held back for long
# A held download whose next try is this close keeps the dispatcher passing (the length of
# a dispatcher's slice); one further off is left to the reconcile schedule.
HELD_SOON_SECONDS = 40


class Dispatcher:
    """What one dispatcher knows between its passes: the request windows counted against
    the provider's limits, the forecast, and the jobs it is watching, cancelling or
    looking for."""

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
        self.after_commit: list[Callable[[], object]] = []
        self.ending: set[UUID] = set()  # jobs this pass ends once it has committed
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dispatch")
        self.probes: dict[str, str] = {}  # model -> the job whose end teaches its duration
        # Looks for the tasks of unanswered submits, and the jobs already said to be looked
        # for (each says so once).
        self.recovery = Backoff(first=5, cap=60)
        self.looked_for: set[str] = set()
        self.cancels: dict[str, Backoff] = {}  # job -> asks to cancel that failed
        self.held_looked_at: datetime | None = None  # the last look for held jobs due

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
            Job.objects.filter(status__in=(*WATCHED, Job.Status.TIMED_OUT))
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
        recover_interrupted_submits(self)
        # Jobs that arrived while the last ones were being sent are sent at once, while
        # the provider has room, rather than after a full pass.
        for _ in range(ADMISSION_ROUNDS):
            if not self._admit():
                break
        cancel_requested(self)
        poll(self)
        hand_over_steps(self)
        hand_over_held_downloads(self)
        return work_left(self.now())

    # The phases below are methods so that a test may drive or replace them one at a time.

    def _admit(self) -> bool:
        return admit(self)

    def _refused(self, job: Job, error: Exception) -> None:
        refused(self, job, error)

    def _slots_freed(self, model: str, times: list[datetime]) -> None:
        slots_freed(self, model, times)

    # What the phases share.

    def finish_after_commit(
        self, job: Job, status: str, *, code: str = "", message: str = ""
    ) -> None:
        """End a job once the pass's commit is made, in a transaction of its own. Settling
        several jobs' quotas in one transaction takes their counters' rows in an order a
        designer's new job (its person's rows, then the team's) can deadlock against."""
        self.ending.add(job.pk)
        self.after_commit.append(functools.partial(finish, job, status, code=code, message=message))

    def run_after_commit(self) -> None:
        for then in self.after_commit:
            then()
        self.after_commit = []
        self.ending.clear()

    def stop_watching(self, job: Job) -> None:
        """Forget what was kept in memory for planning the job's polls: it will not be
        planned again (it finished, was cancelled, or is only watched slowly now). Were it
        the probe, the next blind look picks another."""
        self.forecast.forget(str(job.pk))
        self.cancels.pop(str(job.pk), None)
        self.looked_for.discard(str(job.pk))
        if self.probes.get(job.model) == str(job.pk):
            del self.probes[job.model]


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

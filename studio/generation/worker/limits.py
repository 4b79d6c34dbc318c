"""The provider's limits as the studio keeps them: the settings, and the windows that count
requests against them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

Clock = Callable[[], datetime]

STEP_LEASE_SECONDS = 90


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
    # A streamed piece (mixed text and images): read for at most this long, and given up
    # after this long without an event.
    stream_deadline_seconds: float = 150.0
    stream_stall_seconds: float = 60.0

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
            stream_deadline_seconds=settings.STUDIO_STREAM_DEADLINE_SECONDS,
            stream_stall_seconds=settings.STUDIO_STREAM_STALL_SECONDS,
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

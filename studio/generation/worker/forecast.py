"""The forecast and the provider's clock: how long each model takes, and how the times the
provider writes compare with ours."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta

from studio.dashscope.types import TaskResult

# A difference between the provider's written times and our clock beyond this is taken for
# a time zone, not for drift or a slow answer.
ZONE_SHIFT_FROM_SECONDS = 600
ZONE_DRIFT_SECONDS = 120  # what a zone's offset may be off by, clocks and answers being late


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


def provider_time(value: datetime | None) -> datetime | None:
    # The provider writes naive times; the studio reads them as UTC and, where they
    # disagree with its own clock by more than a few minutes, trusts its own.
    return value.replace(tzinfo=UTC) if value else None


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
        started, ended = provider_time(result.scheduled_time), provider_time(result.end_time)
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

    def stored_time(self, written: datetime | None) -> datetime | None:
        """A time the provider wrote, as the job keeps it: in UTC, whatever zone it was
        written in."""
        moment = provider_time(written)
        return moment + self.zone_shift() if moment else None

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

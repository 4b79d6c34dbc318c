"""Fair admission: which queued jobs go to the provider now, within each model's running
limit (plus the tasks kept waiting ahead) and submit rate, in fair turns between people."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from django.db.models import Count, F, Max, Q, QuerySet, Window
from django.db.models.functions import RowNumber

from studio.generation.models import Job, LeaseFields
from studio.generation.worker.handover import hold_fields
from studio.generation.worker.recovery import reconcile_uncertain
from studio.generation.worker.submits import PassSubmits

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher

NEVER = datetime.min.replace(tzinfo=UTC)
# A person and a model: fair turns are taken per model.
Seat = tuple[str, int]


@dataclass
class FairShare:
    """Whose job a model sends next: the person with the fewest jobs at the provider,
    and among equals the one served longest ago, so one person's batch never holds a
    colleague back by more than a slot."""

    busy: dict[str, int]  # jobs at the provider per model
    per_author: dict[Seat, int]  # per (model, author)
    last_served: dict[Seat, datetime] = field(default_factory=dict)

    @classmethod
    def at_provider(cls) -> FairShare:
        busy: dict[str, int] = defaultdict(int)
        per_author: dict[Seat, int] = defaultdict(int)
        for row in (
            Job.objects.filter(status__in=Job.AT_PROVIDER)
            .values("model", "author_id")
            .annotate(count=Count("id"))
        ):
            busy[row["model"]] += row["count"]
            per_author[(row["model"], row["author_id"])] += row["count"]
        return cls(busy, per_author)

    def next(self, model: str, candidates: list[Job]) -> Job:
        return min(
            candidates,
            key=lambda j: (
                self.per_author[(model, j.author_id)],
                self.last_served.get((model, j.author_id), NEVER),
                j.created_at,
            ),
        )

    def served(self, model: str, author_id: int, now: datetime) -> None:
        self.per_author[(model, author_id)] += 1
        self.last_served[(model, author_id)] = now


def admit(dispatcher: Dispatcher) -> bool:
    """Send queued jobs the provider has room for; True if it sent some and has room
    for more (more jobs may have been queued meanwhile)."""
    now = dispatcher.now()
    waiting = _waiting(now)
    # One row per person and model (order_by() keeps DISTINCT from seeing created_at).
    pairs = set(waiting.order_by().values_list("model", "author_id").distinct())
    if not pairs:
        return False
    share = FairShare.at_provider()
    limits = dispatcher.limits
    room = {
        model: limits.running_per_model + limits.queue_ahead - share.busy[model]
        for model, _ in pairs
    }
    candidates = _oldest_per_person(waiting, room)
    share.last_served = _last_served(list(candidates), now)
    submits = PassSubmits(dispatcher)
    try:
        for model, jobs in candidates.items():
            room[model] = _admit_model(dispatcher, model, jobs, room[model], share, submits, now)
    finally:
        submits.close()
    uncertain = submits.record_answers(list(candidates))
    # Only now, with every answered task id committed, can the unanswered be told apart.
    for jobs in uncertain.values():
        reconcile_uncertain(dispatcher, jobs)
    return bool(submits.sent) and not uncertain and any(r > 0 for r in room.values())


def _waiting(now: datetime) -> QuerySet[Job]:
    return Job.objects.filter(
        Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now),
        status=Job.Status.QUEUED,
        cancel_requested=False,  # cancel.cancel_requested() ends these
    )


def _oldest_per_person(waiting: QuerySet[Job], room: dict[str, int]) -> dict[str, list[Job]]:
    """Each person's oldest few per model, enough to fill the room, in one query: a
    backlog of thousands costs no more than a single job, and hides nobody's job behind
    it."""
    by_model: dict[str, list[Job]] = defaultdict(list)
    with_room = [model for model, left in room.items() if left > 0]
    if not with_room:
        return by_model
    ranked = (
        waiting.filter(model__in=with_room)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("model"), F("author_id")],
                order_by=F("created_at").asc(),
            )
        )
        .filter(rank__lte=max(room[m] for m in with_room))
        .order_by("created_at")
    )
    for job in ranked:
        if job.rank <= room[job.model]:
            by_model[job.model].append(job)
    return by_model


def _last_served(models: list[str], now: datetime) -> dict[Seat, datetime]:
    """When each person was last served per model: the longest-waiting goes first."""
    return {
        (row["model"], row["author_id"]): row["last"]
        for row in Job.objects.filter(
            model__in=models,
            submit_started_at__isnull=False,
            submit_started_at__gte=now - timedelta(hours=1),
        )
        .values("model", "author_id")
        .annotate(last=Max("submit_started_at"))
    }


def _admit_model(
    dispatcher: Dispatcher,
    model: str,
    candidates: list[Job],
    room: int,
    share: FairShare,
    submits: PassSubmits,
    now: datetime,
) -> int:
    """Send one model's candidates in fair turns while it has room and submit rate left;
    the room left."""
    while room > 0 and candidates:
        job = share.next(model, candidates)
        taken = dispatcher.submits[model].take()
        if taken is None:
            break
        candidates.remove(job)
        # Distinct times keep the order in which the provider will queue them.
        if not _mark_sent(job, now + timedelta(microseconds=len(submits.sent))):
            continue
        room -= 1
        share.served(model, job.author_id, now)
        if job.is_asynchronous:
            submits.send(job, taken)
        else:
            dispatcher.enqueue_step(job)
    return room


def _mark_sent(job: Job, sent_at: datetime) -> bool:
    # A sync call is slow: a worker's step makes it. The job is held for that step in the
    # same update, so a dispatcher that dies before handing it over leaves a hold that
    # runs out and is handed over again.
    hold: LeaseFields = {} if job.is_asynchronous else hold_fields()
    return job.move(
        Job.Status.SUBMITTING,
        expect=(Job.Status.QUEUED,),
        message="Sent to the provider.",
        submit_started_at=sent_at,
        **hold,
    )

"""Async submits: one sender thread per model, so the provider creates each model's tasks
in our order, and every task id committed as its answer arrives, before its first poll."""

from __future__ import annotations

import contextlib
import queue
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from django.db import transaction
from django.db.models import Count

from studio.dashscope.errors import SubmitUncertain
from studio.dashscope.types import GenerationRequest, SubmittedTask
from studio.generation.models import Job
from studio.generation.worker.context import acting_on_job
from studio.generation.worker.planning import WATCHED, first_poll
from studio.logs import log_context

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher


class SubmitAnswer(NamedTuple):
    job: Job
    submitted: SubmittedTask | None
    error: Exception | None
    answered_at: datetime
    taken: float  # when the submit was counted against its model's rate


# A job to send, its request (built in the dispatcher's thread, which owns the database
# connection) and when it was counted; None tells the sender that the pass sends no more.
Outgoing = tuple[Job, GenerationRequest, float] | None


class PassSubmits:
    """The async submits of one admission pass.

    One model's jobs go one after another, so the provider creates their tasks in our
    order (the forecast and the recovery of an interrupted submit rely on it); different
    models go side by side. Each job is marked as sent in a commit of its own just before
    its request leaves: a dispatcher that dies finds at most the one it was sending
    without a task, never a batch it had not sent yet. The request leaves while the next
    job is marked.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.answers: queue.SimpleQueue[SubmitAnswer] = queue.SimpleQueue()
        self.senders: dict[str, queue.SimpleQueue[Outgoing]] = {}
        self.sent: list[Job] = []

    def send(self, job: Job, taken: float) -> None:
        if job.model not in self.senders:
            self.senders[job.model] = queue.SimpleQueue()
            self.dispatcher.pool.submit(
                _submit_in_order, self.dispatcher, self.senders[job.model], self.answers
            )
        self.senders[job.model].put((job, job.to_generation_request(), taken))
        self.sent.append(job)

    def close(self) -> None:
        for sender in self.senders.values():
            sender.put(None)  # no more for this pass (a sender never waits forever)

    def record_answers(self, models: list[str]) -> dict[str, list[Job]]:
        """Commit the answers as they arrive, those that arrived together in one commit;
        the jobs whose submit was not answered, by model."""
        # Tasks already at the provider, per model: only this dispatcher adds to them, so
        # one count serves the batch.
        watched: dict[str, int] = defaultdict(int)
        if self.sent:
            watched.update(
                Job.objects.filter(model__in=models, status__in=WATCHED)
                .values("model")
                .annotate(count=Count("id"))
                .values_list("model", "count")
            )
        uncertain: dict[str, list[Job]] = defaultdict(list)
        unanswered = len(self.sent)
        while unanswered:
            arrived = [self.answers.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    arrived.append(self.answers.get_nowait())
            unanswered -= len(arrived)
            _record(self.dispatcher, arrived, watched, uncertain)
        return uncertain


def _submit_in_order(
    dispatcher: Dispatcher,
    batch: queue.SimpleQueue[Outgoing],
    answers: queue.SimpleQueue[SubmitAnswer],
) -> None:
    while (item := batch.get()) is not None:
        job, request, taken = item
        try:
            with log_context(job_id=job.pk, model=job.model):
                submitted = dispatcher.client.submit(request)
                answers.put(SubmitAnswer(job, submitted, None, dispatcher.now(), taken))
        except Exception as exc:  # handled in the dispatcher's thread
            answers.put(SubmitAnswer(job, None, exc, dispatcher.now(), taken))


def _record(
    dispatcher: Dispatcher,
    arrived: list[SubmitAnswer],
    watched: dict[str, int],
    uncertain: dict[str, list[Job]],
) -> None:
    for answer in arrived:
        dispatcher.submits[answer.job.model].answered(answer.taken, answer.answered_at.timestamp())
    # Refused submits first, each in a transaction of its own. Ended before the accepted
    # ones are committed, a refused job is never left among sent jobs without a task,
    # which a successor would match to a colleague's task; ended on its own, its
    # settlement takes no other person's quota counters with it.
    for answer in arrived:
        if answer.error is not None and not isinstance(answer.error, SubmitUncertain):
            dispatcher._refused(answer.job, answer.error)
    with transaction.atomic():
        for job, submitted, error, answered_at, _ in arrived:
            if isinstance(error, SubmitUncertain):
                job.log("submit: no answer from the provider", code=error.code)
                uncertain[job.model].append(job)
            elif (
                error is None
                and submitted is not None
                and accepted(dispatcher, job, submitted, answered_at, watched[job.model])
            ):
                watched[job.model] += 1


@acting_on_job
def accepted(
    dispatcher: Dispatcher, job: Job, submitted: SubmittedTask, answered_at: datetime, ahead: int
) -> bool:
    """Record an accepted submit; True if the job is now a task at the provider, behind
    `ahead` others of its model."""
    dispatcher.forecast.submitted(str(job.pk), answered_at)
    # The submit call's request id and outcome go on the state change they caused.
    return job.move(
        Job.Status.PENDING,
        expect=(Job.Status.SUBMITTING,),
        message=f"Provider call: submit. Accepted as task {submitted.task_id}.",
        request_id=submitted.request_id,
        code="ok",
        provider_task_id=submitted.task_id,
        provider_request_id=submitted.request_id,
        next_poll_at=first_poll(dispatcher, job, answered_at, ahead),
        attempts=0,
    )

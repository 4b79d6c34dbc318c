"""Recovery of unanswered submits: a job sent without an answer is matched to the task the
provider made for it, found by listing, and is never sent again."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from studio.dashscope.errors import DashScopeError
from studio.dashscope.types import TaskSummary
from studio.generation import messages
from studio.generation.models import Job
from studio.generation.worker.forecast import ZONE_SHIFT_FROM_SECONDS
from studio.generation.worker.outcomes import finish

if TYPE_CHECKING:
    from studio.generation.worker.dispatcher import Dispatcher

# A task can be listed for 24 hours: a submit left unanswered is looked for that long (less
# a margin) while the provider cannot be asked, since it may have made and billed the task.
LOOK_FOR_TASK_SECONDS = 23 * 3600


def recover_interrupted_submits(dispatcher: Dispatcher) -> None:
    """Async jobs left SUBMITTING without a task id, by a dispatcher that died or by a
    look at the provider that failed: find their task, never resend."""
    if not dispatcher.recovery.ready(dispatcher.now()):
        return
    # A dispatcher starts only once the previous one's lease ran out, so a submit older
    # than a lease was started by a dispatcher that is gone.
    since = dispatcher.now() - timedelta(seconds=dispatcher.limits.dispatcher_lease_seconds)
    interrupted: dict[str, list[Job]] = defaultdict(list)
    for job in Job.objects.filter(
        status=Job.Status.SUBMITTING, provider_task_id="", submit_started_at__lt=since
    ):
        if job.is_asynchronous:
            if str(job.pk) not in dispatcher.looked_for:
                dispatcher.looked_for.add(str(job.pk))
                job.log("No answer to its submit was recorded; looking for its task.")
            interrupted[job.model].append(job)
    for jobs in interrupted.values():
        reconcile_uncertain(dispatcher, jobs)


def reconcile_uncertain(dispatcher: Dispatcher, jobs: list[Job]) -> None:
    """Unanswered submits of one model: adopt the tasks the provider made for them.

    A model's jobs are submitted one after another, so the provider made tasks for a
    first part of them, in the same order. The tasks of the model in the window that no
    job knows are matched to the jobs in order. More such tasks than jobs means someone
    else used the account meanwhile: nothing is adopted. A job left without a task fails
    with no charge; it is never sent again, since a lagging list could hide its task.
    """
    jobs = sorted(jobs, key=lambda j: j.submit_started_at or j.created_at)
    first = jobs[0].submit_started_at or dispatcher.now()
    last = jobs[-1].submit_started_at or dispatcher.now()
    window = (first - timedelta(seconds=5), last + timedelta(seconds=120))
    orphans = _look_for_orphans(dispatcher, jobs, window, first)
    if orphans is None:
        return
    if len(orphans) > len(jobs):
        orphans = []
    for index, job in enumerate(jobs):
        if index < len(orphans):
            _adopt(dispatcher, job, orphans[index])
        else:
            finish(
                job, Job.Status.FAILED, code="SubmitUncertain", message=messages.SUBMIT_UNCERTAIN
            )


def _look_for_orphans(
    dispatcher: Dispatcher, jobs: list[Job], window: tuple[datetime, datetime], first: datetime
) -> list[TaskSummary] | None:
    """The model's tasks in the window that no job knows, oldest first; None when the
    provider could not be asked or could not say, and the jobs wait for another look.

    The list is asked for a window in the provider's written time, whose zone the
    documents never name. Only tasks it says it created within the window (in epoch
    milliseconds, which need no zone) are taken.
    """
    orphans: list[TaskSummary] = []
    for shift in dispatcher.forecast.zone_shifts():
        if not dispatcher.queries.take():
            return None  # no query left this second; looked for again on the next pass
        try:
            tasks = list_window(dispatcher, jobs[0].model, window, shift)
        except DashScopeError as error:
            _list_failed(dispatcher, jobs, error, first)
            return None
        dispatcher.recovery.succeeded()
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
    return orphans


def _list_failed(
    dispatcher: Dispatcher, jobs: list[Job], error: DashScopeError, first: datetime
) -> None:
    if dispatcher.recovery.failed(dispatcher.now(), error.code):
        jobs[0].log("Provider call: list, to find the task", code=error.code)
    if dispatcher.now() - first < timedelta(seconds=LOOK_FOR_TASK_SECONDS):
        # The provider could not say, which is not saying there is no task: the jobs stay
        # as they are, and recover_interrupted_submits() looks again after a pause (it
        # takes submits older than a dispatcher's lease).
        return
    for job in jobs:
        finish(job, Job.Status.FAILED, code="SubmitUnchecked", message=messages.SUBMIT_UNCHECKED)


def _adopt(dispatcher: Dispatcher, job: Job, task: TaskSummary) -> None:
    job.move(
        Job.Status.PENDING,
        expect=(Job.Status.SUBMITTING,),
        message=f"Found at the provider as task {task.task_id}.",
        provider_task_id=task.task_id,
        provider_request_id=task.request_id or "",
        next_poll_at=dispatcher.now(),
        attempts=0,
    )


def list_window(
    dispatcher: Dispatcher, model: str, window: tuple[datetime, datetime], shift: timedelta
) -> list[TaskSummary]:
    """The model's tasks created within `window` (our clock), asked for in the
    provider's written time: ours less `shift`."""

    def written(moment: datetime) -> str:
        return (moment - shift).astimezone(UTC).strftime("%Y%m%d%H%M%S")

    page = dispatcher.client.list_tasks(
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

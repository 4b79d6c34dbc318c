"""django-q2 entry points: thin, and given ids only (never a key or a URL)."""

from __future__ import annotations

import uuid

from axes.handlers.proxy import AxesProxyHandler
from django_q.tasks import async_task

from studio.core.models import WorkerHeartbeat
from studio.generation import provider, worker
from studio.generation.models import GeneratedImage, Job, LeaseTerm, StagedImage, WorkerLease
from studio.generation.worker import KICK_LEASE
from studio.logs import log_context

# Well inside the cluster's task timeout (300 s), which would kill a longer one. A stopping
# cluster does not wait for the slice to run out (the dispatcher ends it on the stop
# signal), so it can be long: each hand-over starts a new process's threads and database
# connections, and the downloads under way wait for them.
DISPATCH_SLICE_SECONDS = 40


def dispatch() -> None:
    _run_dispatcher(wait_for_lease=0.0)


# How long a successor waits for the lease its predecessor is about to give up.
TAKE_OVER_WAIT_SECONDS = 5.0


def take_over() -> None:
    """The next slice, queued by the running dispatcher just before its own ends; it waits
    for the lease instead of exiting, so polling carries on without a pause."""
    _run_dispatcher(wait_for_lease=TAKE_OVER_WAIT_SECONDS)


def _run_dispatcher(*, wait_for_lease: float) -> None:
    owner = worker.worker_name()

    def hand_over() -> None:
        async_task("studio.generation.tasks.take_over", group="dispatch")

    with (
        log_context(worker=owner),
        provider.get_client(retries=False) as client,
        provider.get_client() as downloads,
    ):
        still_open = worker.dispatch_for(
            DISPATCH_SLICE_SECONDS,
            client,
            owner,
            downloads,
            hand_over=hand_over,
            wait_for_lease=wait_for_lease,
        )
    if still_open:
        async_task("studio.generation.tasks.dispatch", group="dispatch")


def run_job_step(job_id: str) -> None:
    with provider.get_client() as client:
        worker.run_step(job_id, client)


def reconcile() -> None:
    """Every minute: restart the dispatcher if it died while jobs are open; drop reference
    images staged in edit forms nobody sent, images past their time in the trash, and
    lease records, failed-login records and heartbeats of clusters long gone."""
    if Job.objects.filter(status__in=Job.OPEN).exists() and not WorkerLease.is_held("dispatcher"):
        async_task("studio.generation.tasks.dispatch", group="dispatch")
    StagedImage.purge()
    GeneratedImage.purge_trash()
    LeaseTerm.purge()
    AxesProxyHandler.reset_failure_logs(age_days=30)  # the lockouts look back minutes
    WorkerHeartbeat.prune()


# While a dispatcher task waits in the queue, further kicks add nothing: it will see every
# job committed before it starts. The hold is dropped as soon as the dispatcher holds its
# own lease, and expires by itself should the queued task never run.
KICK_HOLD_SECONDS = 5


def kick() -> None:
    """Make sure a dispatcher runs soon, without piling up tasks that would only exit.

    A running dispatcher takes new jobs on its next pass, and looks again after giving up
    its lease, so a job committed before this check is never left behind. Without this,
    every job of a burst queued a dispatcher of its own, and a hundred of them starting
    and exiting took the processor from the one doing the work.
    """
    if WorkerLease.is_held("dispatcher"):
        return
    if not WorkerLease.acquire(KICK_LEASE, uuid.uuid4().hex, seconds=KICK_HOLD_SECONDS):
        return
    async_task("studio.generation.tasks.dispatch", group="dispatch")

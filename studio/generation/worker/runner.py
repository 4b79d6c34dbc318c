"""The slice runner: a dispatcher run for a slice of a task's time under its lease, handed
on to the next slice, and woken by a kick when jobs arrive."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from studio.dashscope.client import DashScopeClient
from studio.generation.models import Job, WorkerLease
from studio.generation.worker import provider, shutdown
from studio.generation.worker.dispatcher import Dispatcher, work_left
from studio.generation.worker.leases import (
    DISPATCHER_LEASE,
    KICK_LEASE,
    acquire_dispatcher,
    begin_dispatching,
    end_dispatching,
    lease_kept,
    worker_name,
)
from studio.generation.worker.limits import Limits
from studio.generation.worker.steps import run_step_in_thread
from studio.logs import log_context

# Well inside the cluster's task timeout (300 s), which would kill a longer one. A stopping
# cluster does not wait for the slice to run out (the dispatcher ends it on the stop
# signal), so it can be long: each hand-over starts a new process's threads and database
# connections, and the downloads under way wait for them.
DISPATCH_SLICE_SECONDS = 40
# How long a successor waits for the lease its predecessor is about to give up.
TAKE_OVER_WAIT_SECONDS = 5.0
HANDOVER_LEAD = 1.0  # seconds before a slice ends that its successor is queued
# A round of tasks finishing together is downloaded side by side: the last one waits for
# no other. Typical results decode to a few megabytes each.
DOWNLOAD_THREADS = 8
# While a dispatcher task waits in the queue, further kicks add nothing: it will see every
# job committed before it starts. The hold is dropped as soon as the dispatcher holds its
# own lease, and expires by itself should the queued task never run.
KICK_HOLD_SECONDS = 5


def queue_dispatcher() -> None:
    async_task("studio.generation.tasks.dispatch", group="dispatch")


def run_slice(*, wait_for_lease: float) -> None:
    """One dispatcher slice in this worker, followed by another while jobs are open."""
    owner = worker_name()

    def hand_over() -> None:
        async_task("studio.generation.tasks.take_over", group="dispatch")

    with (
        log_context(worker=owner),
        provider.get_client(retries=False) as client,
        provider.get_client() as downloads,
    ):
        still_open = dispatch_for(
            DISPATCH_SLICE_SECONDS,
            client,
            owner,
            downloads,
            hand_over=hand_over,
            wait_for_lease=wait_for_lease,
        )
    if still_open:
        queue_dispatcher()


def kick() -> None:
    """Make sure a dispatcher runs soon, without piling up tasks that would only exit.

    A running dispatcher takes new jobs on its next pass, and looks again after giving up
    its lease, so a job committed before this check is never left behind. Without this,
    every job of a burst queued a dispatcher of its own, and a hundred of them starting
    and exiting took the processor from the one doing the work.
    """
    if WorkerLease.is_held(DISPATCHER_LEASE):
        return
    if not WorkerLease.acquire(KICK_LEASE, uuid.uuid4().hex, seconds=KICK_HOLD_SECONDS):
        return
    queue_dispatcher()


def restart_if_needed() -> None:
    """Queue a dispatcher if the last one died while jobs are open."""
    if Job.objects.filter(status__in=Job.OPEN).exists() and not WorkerLease.is_held(
        DISPATCHER_LEASE
    ):
        queue_dispatcher()


@dataclass
class _Slice:
    """How a slice went: whether jobs are still open, whether it queued its successor,
    and whether it lost its lease to another dispatcher."""

    open_jobs: bool = True
    handed_over: bool = False
    lease_lost: bool = False


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
    pool = ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS, thread_name_prefix="download")
    limits = Limits.from_settings()
    download_now = _downloader(pool, downloads, limits) if downloads else None
    dispatcher = Dispatcher(client, limits=limits, download_now=download_now)
    deadline = time.monotonic() + seconds
    outcome = _Slice()
    try:
        if not acquire_dispatcher(owner, limits.dispatcher_lease_seconds, wait_for_lease):
            return False
        # The predecessor's request times: the provider's per-second limits hold across
        # the hand-over.
        dispatcher.resume(begin_dispatching(owner))
        _run_passes(dispatcher, owner, deadline, hand_over, outcome)
    finally:
        # The lease (with the rate state) goes first, so a waiting successor starts while
        # this process finishes the downloads it began.
        end_dispatching(owner, dispatcher.rate_state())
        dispatcher.close()
        _close_pool_connections(pool, DOWNLOAD_THREADS)
    if outcome.lease_lost or outcome.handed_over or shutdown.requested():
        return False
    return outcome.open_jobs or work_left(timezone.now())


def _downloader(
    pool: ThreadPoolExecutor, client: DashScopeClient, limits: Limits
) -> Callable[[Job], None]:
    def download_now(job: Job) -> None:
        pool.submit(run_step_in_thread, str(job.pk), client, limits)

    return download_now


def _run_passes(
    dispatcher: Dispatcher,
    owner: str,
    deadline: float,
    hand_over: Callable[[], None] | None,
    outcome: _Slice,
) -> None:
    """Dispatcher passes until the slice's time is up, the cluster stops, no job is left
    or the lease is lost."""
    lease = dispatcher.limits.dispatcher_lease_seconds
    # Renewed on every pass, and meanwhile too: a pass may wait on several submits.
    with lease_kept(lambda: WorkerLease.renew(DISPATCHER_LEASE, owner, lease), lease):
        while time.monotonic() < deadline and not shutdown.requested():
            if not WorkerLease.acquire(DISPATCHER_LEASE, owner, seconds=lease):
                outcome.lease_lost = True
                return
            outcome.open_jobs = dispatcher.step()
            if not outcome.open_jobs:
                break
            if (
                hand_over
                and not outcome.handed_over
                and time.monotonic() > deadline - HANDOVER_LEAD
            ):
                hand_over()
                outcome.handed_over = True
            time.sleep(dispatcher.idle_seconds())


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

"""Leases: one dispatcher at a time across all worker hosts, and one step per job; each is
renewed while its holder lives and runs out when it dies."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import F, Q
from django.db.models.functions import Now

from studio.generation.models import Job, LeaseTerm, WorkerLease
from studio.generation.worker import shutdown
from studio.generation.worker.limits import STEP_LEASE_SECONDS

# One logger for the whole worker, as operators filter its lines by that name.
logger = logging.getLogger("studio.generation.worker")

DISPATCHER_LEASE = "dispatcher"
KICK_LEASE = "dispatcher-kick"  # held while a kicked dispatcher waits in the task queue
# A sync generation, downloads, and held downloads (when due, or retried by hand).
_STEP_WORKS_ON = (Job.Status.SUBMITTING, Job.Status.DOWNLOADING, Job.Status.DOWNLOAD_HELD)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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


def acquire_dispatcher(owner: str, lease: float, wait: float) -> bool:
    """Take the dispatcher's lease, waiting up to `wait` seconds for its holder to give it
    up; False if it is still held, or the cluster is stopping."""
    give_up = time.monotonic() + wait
    while not WorkerLease.acquire(DISPATCHER_LEASE, owner, seconds=lease):
        if time.monotonic() >= give_up or shutdown.requested():
            return False
        time.sleep(0.02)
    return True


def begin_dispatching(owner: str) -> dict:
    """Record the term of the lease just taken; the predecessor's rate state."""
    LeaseTerm.begin(DISPATCHER_LEASE, owner)
    state = WorkerLease.handed_over(DISPATCHER_LEASE)
    # From now on a kick sees this dispatcher's lease instead.
    WorkerLease.objects.filter(name=KICK_LEASE).update(owner="", until=None)
    return state


def end_dispatching(owner: str, rate_state: dict) -> None:
    """Give up the dispatcher's lease, leaving the rate state for the next holder."""
    with transaction.atomic():
        LeaseTerm.end(DISPATCHER_LEASE, owner)
        WorkerLease.release(DISPATCHER_LEASE, owner, rate_state)

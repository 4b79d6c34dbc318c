"""Whether the worker cluster this process belongs to has been asked to stop.

`manage.py qcluster` (studio/generation/management/commands/qcluster.py) arms the flag
before it forks the cluster's processes, so all of them share it, and sets it on SIGTERM or
SIGINT. The dispatcher then ends its slice at once and gives up its lease, so the next
cluster starts dispatching without waiting for the lease to run out; job steps ignore it
and finish.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Event

_stopping: Event | None = None


def arm() -> None:
    """Make the flag shared with every process forked from now on."""
    global _stopping
    if _stopping is None:
        _stopping = multiprocessing.get_context("fork").Event()


def request() -> None:
    if _stopping is not None:
        _stopping.set()


def requested() -> bool:
    return _stopping is not None and _stopping.is_set()

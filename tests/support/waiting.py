"""Waiting for something to happen, with a deadline: the tests' way to wait instead of
sleeping for a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], bool],
    seconds: float,
    *,
    every: Callable[[], None] | None = None,
    interval: float = 0.5,
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        if every:
            every()
        time.sleep(interval)

"""Notification fixtures: digest tasks run inline, and what waits for a commit run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from studio.notifications import digest, tasks


@pytest.fixture
def tasks_inline(monkeypatch) -> list[int]:
    """Digest tasks queued for now run at once, in the test (no worker cluster here); the
    people they were queued for, in order."""
    queued: list[int] = []

    def run_now(func: str, user_id: int, **_options: object) -> None:
        assert func == digest.TASK
        queued.append(user_id)
        tasks.send_digest(user_id)

    monkeypatch.setattr(digest, "async_task", run_now)
    return queued


@pytest.fixture
def committed(
    django_capture_on_commit_callbacks, tasks_inline
) -> Callable[[], AbstractContextManager[object]]:
    """`with committed():` runs what waits for the commit (digests planned, the worker's
    notices) at the end of the block, as a real commit would."""

    def block() -> AbstractContextManager[object]:
        return django_capture_on_commit_callbacks(execute=True)

    return block


@pytest.fixture
def emails(settings) -> Iterator[None]:
    settings.STUDIO_BASE_URL = "https://studio.example.com"
    yield

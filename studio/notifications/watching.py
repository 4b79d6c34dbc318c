"""Who is looking at a job right now: its page and the results area mark it on each poll,
and the worker asks at the job's end, to tell its author only if she was elsewhere.

Kept in Django's cache (shared by the web and worker processes; see CACHES in settings),
each mark lasting a few of the slowest poll's intervals (10 s, while a download is held):
a tab closed or left is forgotten within WATCH_SECONDS.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.cache import cache

WATCH_SECONDS = 30


def _key(user_id: int, job_id: object) -> str:
    return f"notifications:watching:{user_id}:{job_id}"


def mark_watching(user_id: int, job_ids: Iterable[object], *, seconds: int = WATCH_SECONDS) -> None:
    """The person has these jobs in front of her (a poll of their page or of her results),
    for `seconds`: a few of the asking page's intervals."""
    marks = {_key(user_id, job_id): True for job_id in job_ids}
    if marks:
        cache.set_many(marks, timeout=seconds)


def is_watching(user_id: int, job_id: object) -> bool:
    return cache.get(_key(user_id, job_id)) is not None

"""django-q2 entry points: thin, and given ids only."""

from __future__ import annotations

from studio.notifications import digest


def send_digest(user_id: int) -> None:
    digest.send_digest(user_id)

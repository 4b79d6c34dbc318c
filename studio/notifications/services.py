"""Telling people: one function per kind of notification, called by the apps where the
thing happens (gallery: mentions, reviews, review requests; the worker: a job's end and
its charge). Each takes ids and plain text, as this app sits below the ones that call it.

A notification is made in the caller's transaction; the email that may follow is planned
once it commits (studio.notifications.digest).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from functools import partial, wraps
from typing import ParamSpec

from django.db import IntegrityError, transaction
from django.utils.text import Truncator

from studio.dashscope.redaction import redact
from studio.notifications import digest
from studio.notifications.models import Kind, Notification, Preference

logger = logging.getLogger("studio.notifications")

P = ParamSpec("P")

# Prompts and comments are what people typed: an address pasted into one (a signed
# result URL, say, with or without its scheme) is not repeated in a notification or email.
_ADDRESS = re.compile(r"(?i)\b(?:https?|oss)://\S+|\S+\.aliyuncs\.com\S*")


def plain(text: str, length: int) -> str:
    """`text` for a notification: on one line, without addresses or keys, cut to `length`."""
    text = " ".join(redact(_ADDRESS.sub("[link]", text)).split())
    return Truncator(text).chars(length)


def never_failing(function: Callable[P, object]) -> Callable[P, None]:
    """Run `function`, logging and swallowing what it raises: telling people about a thing
    must never undo or fail the thing (a job's end, its images, its charge)."""

    @wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            function(*args, **kwargs)
        except Exception:
            logger.exception("Could not make a notification (%s)", function.__name__)

    return run


def notify(
    recipient_id: int,
    kind: str,
    text: str,
    link: str,
    *,
    actor_id: int | None = None,
    team_id: int | None = None,
    key: str = "",
) -> Notification | None:
    """Tell one person; None if a notification with `key` was made for her already."""
    by_email = Preference.wants_email(recipient_id, kind)
    try:
        with transaction.atomic():
            made = Notification.objects.create(
                recipient_id=recipient_id,
                kind=kind,
                text=text,
                link=link,
                actor_id=actor_id,
                team_id=team_id,
                key=key,
                by_email=by_email,
            )
    except IntegrityError:
        if not key:
            raise
        return None  # told already: this crossing was someone else's to tell
    if by_email:
        transaction.on_commit(partial(digest.plan_digest, recipient_id), robust=True)
    return made


def mentioned(
    recipient_ids: Iterable[int],
    *,
    actor_id: int,
    actor_name: str,
    team_id: int,
    subject: str,
    comment: str,
    link: str,
) -> None:
    """Those mentioned in a comment (never its author) are told what it says."""
    text = f"{actor_name} mentioned you on “{plain(subject, 60)}”: {plain(comment, 200)}"
    for recipient_id in set(recipient_ids) - {actor_id}:
        notify(recipient_id, Kind.MENTION, text, link, actor_id=actor_id, team_id=team_id)


def review_changed(
    author_id: int,
    *,
    actor_id: int,
    actor_name: str,
    team_id: int,
    state: str,
    subjects: list[str],
    link: str,
) -> None:
    """The author of images someone else reviewed: one notification per review, however
    many of her images it took in."""
    if author_id == actor_id or not subjects:
        return
    if len(subjects) == 1:
        what = f"your image “{plain(subjects[0], 80)}”"
    else:
        what = f"{len(subjects)} of your images"
    text = f"{actor_name} marked {what} {state}."
    notify(author_id, Kind.REVIEW, text, link, actor_id=actor_id, team_id=team_id)


def review_requested(
    reviewer_id: int, *, actor_id: int, actor_name: str, team_id: int, subject: str, link: str
) -> None:
    text = f"{actor_name} asked you to review “{plain(subject, 80)}”."
    notify(reviewer_id, Kind.REVIEW_REQUEST, text, link, actor_id=actor_id, team_id=team_id)


def job_ended(
    author_id: int, *, team_id: int, failed: bool, subject: str, images: int, link: str
) -> None:
    """A job's author, told it finished or failed (the caller knows she was not watching).
    The reason of a failure is on the job's page, not here: it may quote the provider."""
    what = f"Your job “{plain(subject, 80)}”"
    if failed:
        text = f"{what} failed; its page says why."
    else:
        text = f"{what} finished with {images} image{'s' if images != 1 else ''}."
    notify(author_id, Kind.JOB, text, link, team_id=team_id)

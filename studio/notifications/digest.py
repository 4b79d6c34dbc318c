"""Email digests: everything a person wants by email and has not been sent, in one message,
at most one message per DIGEST_GAP.

A notification wanting email plans a digest: sent at once (a task queued now) if none went
out in the last ten minutes, or else by a one-off django-q2 schedule for the moment the ten
minutes are up. One schedule per person, made only when a digest is due later, so nothing
runs while nobody is being told anything (a periodic sweep would wake every minute for
every person); and whatever arrives meanwhile joins the planned digest.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from studio.notifications.models import EmailDigest, Notification

logger = logging.getLogger("studio.notifications")

DIGEST_GAP = timedelta(minutes=10)
# A digest planned this long ago and still not sent was lost (a worker down, a task
# dropped): the next notification plans a new one rather than wait on it for ever.
PLANNED_LOST_AFTER = timedelta(minutes=30)
TASK = "studio.notifications.tasks.send_digest"


def schedule_name(user_id: int) -> str:
    return f"notifications-digest-{user_id}"


def plan_digest(user_id: int, now: datetime | None = None) -> None:
    """Plan the person's next digest, unless one is planned already (it will carry this)."""
    now = now or timezone.now()
    with transaction.atomic():
        digest, _ = EmailDigest.objects.select_for_update().get_or_create(user_id=user_id)
        if digest.due_at is not None and digest.due_at > now - PLANNED_LOST_AFTER:
            return
        digest.due_at = _next_allowed(digest, now)
        digest.save(update_fields=["due_at"])
        due = digest.due_at
    _queue(user_id, due, now)


def _next_allowed(digest: EmailDigest, now: datetime) -> datetime:
    if digest.last_sent_at is None:
        return now
    return max(now, digest.last_sent_at + DIGEST_GAP)


def _queue(user_id: int, due: datetime, now: datetime) -> None:
    if due <= now:
        async_task(TASK, user_id, group="notifications")
        return
    Schedule.objects.update_or_create(
        name=schedule_name(user_id),
        defaults={
            "func": TASK,
            "args": str(user_id),
            "schedule_type": Schedule.ONCE,
            "repeats": -1,  # a ONCE schedule that has run is deleted
            "next_run": due,
        },
    )


def send_digest(user_id: int, now: datetime | None = None) -> int:
    """Send the person one email of what waits for it; how many notifications it carried.

    Sent in the transaction that marks them emailed: a send that fails leaves them waiting
    for the task's retry. Too soon after the last digest (a second task for the same
    person), the digest is planned for when the gap is up instead.
    """
    now = now or timezone.now()
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return 0  # gone since the digest was planned, with her notifications
    with transaction.atomic():
        digest, _ = EmailDigest.objects.select_for_update().get_or_create(user_id=user_id)
        allowed = _next_allowed(digest, now)
        if allowed > now:
            digest.due_at = allowed
            digest.save(update_fields=["due_at"])
            transaction.on_commit(lambda: _queue(user_id, allowed, now))
            return 0
        digest.due_at = None
        waiting = list(Notification.objects.waiting_for_email().filter(recipient_id=user_id))
        if waiting and not user.email:
            # Nowhere to send them: they stay in the studio only.
            Notification.objects.filter(pk__in=[n.pk for n in waiting]).update(by_email=False)
            waiting = []
        if waiting:
            _message(user, waiting).send()
            Notification.objects.filter(pk__in=[n.pk for n in waiting]).update(emailed_at=now)
            digest.last_sent_at = now
        digest.save(update_fields=["due_at", "last_sent_at"])
    return len(waiting)


def _message(user: User, waiting: list[Notification]) -> EmailMessage:
    waiting.sort(key=lambda notification: notification.created_at)
    count = len(waiting)
    subject = f"Studio: {count} new notification{'s' if count != 1 else ''}"
    body = render_to_string(
        "notifications/digest.txt",
        {
            "user": user,
            "notifications": waiting,
            "settings_link": settings.STUDIO_BASE_URL.rstrip("/")
            + reverse("notification-settings"),
        },
    )
    return EmailMessage(subject=subject, body=body, to=[user.email])

"""What a person is told, how she wants to be told it, and when her last email went out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from studio.accounts.models import Membership, Team


class Kind(models.TextChoices):
    MENTION = "mention", "Someone mentions me in a comment"
    REVIEW_REQUEST = "review_request", "Someone asks me to review an image"
    REVIEW = "review", "Someone changes the review state of my image"
    JOB = "job", "My job finishes or fails while I am away from its page"
    QUOTA = "quota", "My quota or the team's budget passes 80 % or 100 %"


# What a person who has chosen nothing gets by email as well: being asked for something.
EMAIL_BY_DEFAULT = frozenset({Kind.MENTION, Kind.REVIEW_REQUEST})


class NotificationQuerySet(models.QuerySet["Notification"]):
    def seen_by(self, user: Any) -> NotificationQuerySet:
        """Those sent to `user` about a team she is still in, or about none: what she was
        told of a team she has left is that team's, not hers to read on."""
        teams = Membership.objects.filter(user=user).values("team_id")
        return self.filter(recipient=user).filter(Q(team__isnull=True) | Q(team_id__in=teams))

    def unread(self) -> NotificationQuerySet:
        return self.filter(read_at__isnull=True)

    def waiting_for_email(self) -> NotificationQuerySet:
        """Those their recipient wants by email and no digest has carried yet."""
        return self.filter(by_email=True, emailed_at__isnull=True)

    def mark_read(self, moment: datetime | None = None) -> int:
        return self.unread().update(read_at=moment or timezone.now())


class Notification(models.Model):
    """One thing a person is told, with the studio page it is about.

    The text is written when the notification is made (who did what to which image), so
    the list reads the same after the image is renamed, trashed or gone.
    """

    Kind = Kind

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    text = models.CharField(max_length=400)
    link = models.CharField(max_length=300, help_text="The studio page it is about (a path).")
    # Set for what is told once only (a quota passing 80 % in a period): a second one with
    # the same key for the same person is refused by the database.
    key = models.CharField(max_length=100, blank=True, default="")
    by_email = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "key"],
                condition=~Q(key=""),
                name="unique_notification_key",
            )
        ]

    def __str__(self) -> str:
        return f"To {self.recipient_id}: {self.text}"

    @property
    def is_unread(self) -> bool:
        return self.read_at is None

    def absolute_link(self) -> str:
        """The page's full address, for an email: always the studio's own."""
        return settings.STUDIO_BASE_URL.rstrip("/") + self.link


class Preference(models.Model):
    """How a person wants one kind told: in the studio only, or by email as well.

    A kind without a row has its default (EMAIL_BY_DEFAULT).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    by_email = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="unique_preference_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: {'email' if self.by_email else 'studio only'}"

    @classmethod
    def email_choices(cls, user_id: int) -> dict[str, bool]:
        """Whether the person wants each kind by email, defaults filled in."""
        chosen = dict(cls.objects.filter(user_id=user_id).values_list("kind", "by_email"))
        return {kind: chosen.get(kind, kind in EMAIL_BY_DEFAULT) for kind in Kind.values}

    @classmethod
    def wants_email(cls, user_id: int, kind: str) -> bool:
        chosen = cls.objects.filter(user_id=user_id, kind=kind).values_list("by_email", flat=True)
        return next(iter(chosen), kind in EMAIL_BY_DEFAULT)

    @classmethod
    def choose(cls, user_id: int, by_email: dict[str, bool]) -> None:
        for kind, wanted in by_email.items():
            cls.objects.update_or_create(user_id=user_id, kind=kind, defaults={"by_email": wanted})


class EmailDigest(models.Model):
    """A person's email digests: when the last went out, and when the next is planned.

    At most one digest per DIGEST_GAP (studio.notifications.digest); the row is locked
    while one is planned or sent, so two workers never send a person two at once.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="email_digest",
    )
    last_sent_at = models.DateTimeField(null=True, blank=True)
    # A digest queued or scheduled for then; empty when none is.
    due_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Digests of {self.user_id}"


__all__ = ["EMAIL_BY_DEFAULT", "EmailDigest", "Kind", "Notification", "Preference"]

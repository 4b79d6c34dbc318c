"""What happened in the studio, in two records written once and never edited.

The audit log (Entry): who did what, to what, when and from where, for the staff. The
activity feed (Activity): the team's own view of what its people did to its images and
jobs, written by generation (a job stored its images) and by the gallery (stars, reviews,
comments, the trash).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from studio.http import client_address

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class Entry(models.Model):
    class Action(models.TextChoices):
        GENERATE = "generate", "Generate"
        DOWNLOAD = "download", "Download"
        REVIEW = "review", "Review state"
        DELETE = "delete", "Delete"
        RESTORE = "restore", "Restore"
        QUOTA = "quota", "Quota change"
        GRANT = "grant", "Extra images granted"
        PERMISSION = "permission", "Model permission change"
        MEMBER = "member", "Member change"
        RETRY_DOWNLOAD = "retry_download", "Download retried"
        KIT = "kit", "Brand kit change"
        TOKEN = "token", "Access token"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)  # kept if the user goes
    action = models.CharField(max_length=16, choices=Action.choices, db_index=True)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    target = models.CharField(max_length=200)  # what it was done to, in words
    changes = models.JSONField(default=dict, blank=True)  # field: [before, after]
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name} {self.get_action_display()}"


def record(request: HttpRequest | None, action: str, target: object, **fields: Any) -> Entry:
    """Write one entry; the actor and address come from the request when there is one.
    `fields` are entry()'s: team, changes, actor."""
    item = entry(request, action, target, **fields)
    item.save()
    return item


def entry(
    request: HttpRequest | None,
    action: str,
    target: object,
    *,
    team: Any = None,
    changes: dict[str, Any] | None = None,
    actor: Any = None,
) -> Entry:
    """An entry not yet written: many of them go in one statement with bulk_create()."""
    user = actor or (getattr(request, "user", None) if request is not None else None)
    if user is not None and not user.is_authenticated:
        user = None
    return Entry(
        actor=user,
        actor_name=user.get_username() if user else "",
        action=action,
        team=team,
        target=str(target)[:200],
        changes=changes or {},
        address=client_address(request) if request is not None else None,
    )


class FeedImage(Protocol):
    """What the feed reads from an image (generation's GeneratedImage)."""

    pk: int
    team_id: int
    job_id: uuid.UUID


class FeedJob(Protocol):
    """What the feed reads from a job (generation's Job)."""

    pk: uuid.UUID
    team_id: int
    author_id: int
    model: str


class Activity(models.Model):
    """One line of a team's feed: who did what to which image or job, and when."""

    class Verb(models.TextChoices):
        GENERATED = "generated", "generated"
        REVIEWED = "reviewed", "set the review state of"
        STARRED = "starred", "starred"
        COMMENTED = "commented", "commented on"
        DELETED = "deleted", "moved to the trash"
        RESTORED = "restored", "restored"

    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="activity")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=16, choices=Verb.choices)
    job = models.ForeignKey(
        "generation.Job", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    image = models.ForeignKey(
        "generation.GeneratedImage",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    detail = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        # The table it was made with, when the feed was kept by the gallery app.
        db_table = "gallery_activity"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["team", "-at"], name="activity_feed")]
        verbose_name_plural = "activity"

    def __str__(self) -> str:
        return f"{self.actor_id} {self.verb} ({self.at:%Y-%m-%d %H:%M})"

    @classmethod
    def about(cls, images: Sequence[FeedImage], actor: User, verb: str, detail: str = "") -> None:
        """One line per image that `actor` did `verb` to, written in one statement."""
        Activity.objects.bulk_create(
            Activity(
                team_id=image.team_id,
                actor=actor,
                verb=verb,
                image_id=image.pk,
                job_id=image.job_id,
                detail=detail,
            )
            for image in images
        )

    @classmethod
    def job_finished(cls, job: FeedJob, image_ids: list[int]) -> None:
        """A job that stored images: one line for the lot, shown with the first."""
        count = len(image_ids)
        cls.objects.create(
            team_id=job.team_id,
            actor_id=job.author_id,
            verb=cls.Verb.GENERATED,
            job=job,
            image_id=image_ids[0],
            detail=f"{count} image{'s' if count != 1 else ''} with {job.model}",
        )

"""The team's review of its images: stars and the activity feed.

Review states live on the image itself (GeneratedImage.review_state); what people do
with images lives here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Team
from studio.generation.models import GeneratedImage, Job, box_in_percent


class Star(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "image"], name="unique_star")]

    def __str__(self) -> str:
        return f"Star on {self.image_id} by {self.user_id}"


class Comment(models.Model):
    """A remark on an image, optionally pinned to a rectangle of it (in its pixels)."""

    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    body = models.TextField(max_length=2000)
    box = models.JSONField(null=True, blank=True)  # [x1, y1, x2, y2] or None
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment by {self.author_id} on {self.image_id}"

    def box_percent(self) -> tuple[float, float, float, float] | None:
        """The pinned rectangle in percentages of the image, to draw over any size."""
        return box_in_percent(self.box, self.image.width, self.image.height) if self.box else None


class BoardQuerySet(models.QuerySet["Board"]):
    def with_counts(self) -> BoardQuerySet:
        """Each board with `count`, its images not in the trash: the sidebar's numbers."""
        kept = models.Q(images__deleted_at__isnull=True)
        return self.annotate(count=models.Count("images", filter=kept))


class Board(models.Model):
    """A named collection of the team's images; an image can be on several."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="boards")
    name = models.CharField(max_length=80)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    images = models.ManyToManyField(GeneratedImage, through="BoardImage", related_name="boards")

    objects = BoardQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_board_name")]

    def __str__(self) -> str:
        return self.name


class BoardImage(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE)
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["board", "image"], name="unique_board_image")
        ]

    def __str__(self) -> str:
        return f"{self.image_id} on {self.board_id}"


class Activity(models.Model):
    """One line of a team's feed: who did what to which image or job, and when."""

    class Verb(models.TextChoices):
        GENERATED = "generated", "generated"
        REVIEWED = "reviewed", "set the review state of"
        STARRED = "starred", "starred"
        COMMENTED = "commented", "commented on"
        DELETED = "deleted", "moved to the trash"
        RESTORED = "restored", "restored"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="activity")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    verb = models.CharField(max_length=16, choices=Verb.choices)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(
        GeneratedImage, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    detail = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["team", "-at"], name="activity_feed")]
        verbose_name_plural = "activity"

    def __str__(self) -> str:
        return f"{self.actor_id} {self.verb} ({self.at:%Y-%m-%d %H:%M})"

    @classmethod
    def about(
        cls, images: Sequence[GeneratedImage], actor: Any, verb: str, detail: str = ""
    ) -> None:
        """One line per image that `actor` did `verb` to, written in one statement."""
        cls.objects.bulk_create(
            cls(
                team_id=image.team_id,
                actor=actor,
                verb=verb,
                image=image,
                job_id=image.job_id,
                detail=detail,
            )
            for image in images
        )

    @classmethod
    def job_finished(cls, job: Job, image_ids: list[int]) -> None:
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

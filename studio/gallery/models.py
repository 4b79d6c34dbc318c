"""The team's review of its images: stars and the activity feed.

Review states live on the image itself (GeneratedImage.review_state); what people do
with images lives here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Team
from studio.generation.models import GeneratedImage, Job


class Star(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "image"], name="unique_star")]

    def __str__(self) -> str:
        return f"Star on {self.image_id} by {self.user_id}"


class Activity(models.Model):
    """One line of a team's feed: who did what to which image or job, and when."""

    class Verb(models.TextChoices):
        GENERATED = "generated", "generated"
        REVIEWED = "reviewed", "set the review state of"
        STARRED = "starred", "starred"

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
    def job_finished(cls, job: Job) -> None:
        """A job that stored images: one line for the lot."""
        count = job.images.count()
        if count:
            cls.objects.create(
                team_id=job.team_id,
                actor_id=job.author_id,
                verb=cls.Verb.GENERATED,
                job=job,
                image=job.images.order_by("index").first(),
                detail=f"{count} image{'s' if count != 1 else ''} with {job.model}",
            )

"""Explorations: one prompt sent to several models with several seeds in one submit, shown
as a grid (models in columns, seeds in rows) that the team votes on."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Team
from studio.generation.models.images import GeneratedImage
from studio.generation.models.job import Job


class Exploration(models.Model):
    """The submit itself; each of its jobs is an ordinary job, queued and charged as any."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="explorations")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="explorations"
    )
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    shape = models.CharField(max_length=8)  # "1:1", "16:9"...: each model's nearest size
    model_names = models.JSONField(default=list)  # catalog names, in column order
    seeds = models.JSONField(default=list)  # in row order
    references = models.PositiveSmallIntegerField(default=0)  # from the Edit form
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The image sent on to review, by an owner or a reviewer.
    winner = models.ForeignKey(
        GeneratedImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Exploration of {len(self.model_names)} models × {len(self.seeds)} seeds"

    @property
    def watch_key(self) -> str:
        """What its grid marks as watched: each of its jobs at once."""
        return f"exploration-{self.pk}"


class ExplorationCell(models.Model):
    """One model and one seed of an exploration: its job."""

    exploration = models.ForeignKey(Exploration, on_delete=models.CASCADE, related_name="cells")
    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="exploration_cell")
    column = models.PositiveSmallIntegerField()  # the model's place
    row = models.PositiveSmallIntegerField()  # the seed's place

    class Meta:
        ordering = ["row", "column"]
        constraints = [
            models.UniqueConstraint(
                fields=["exploration", "row", "column"], name="unique_exploration_cell"
            ),
        ]

    def __str__(self) -> str:
        return f"Row {self.row + 1}, column {self.column + 1} of exploration {self.exploration_id}"


class Vote(models.Model):
    """A team member's vote for an image of an exploration: one a person an image."""

    image = models.ForeignKey(GeneratedImage, on_delete=models.CASCADE, related_name="votes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["image", "user"], name="one_vote_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.user} for image {self.image_id}"

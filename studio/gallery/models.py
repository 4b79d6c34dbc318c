"""The team's review of its images: stars, comments and boards.

Review states live on the image itself (GeneratedImage.review_state); what people do
with images lives here. The activity feed lives in the audit app (studio.audit.models).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Team
from studio.generation.models import GeneratedImage, box_in_percent


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

    # Set by the image page on the comments pinned to an area, for its template; no fields.
    pin: int  # the pin's number, counted over the pinned comments
    pin_box: tuple[float, float, float, float] | None  # box_percent()

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


class ReviewRequestQuerySet(models.QuerySet["ReviewRequest"]):
    def open_for(self, image: GeneratedImage) -> ReviewRequestQuerySet:
        """The image's requests not yet answered: made since its last review."""
        rows = self.filter(image=image)
        return rows.filter(created_at__gt=image.reviewed_at) if image.reviewed_at else rows


class ReviewRequest(models.Model):
    """A member asking a teammate who can review (an owner or a reviewer) to look at an
    image; answered by the image's next review, whoever makes it."""

    image = models.ForeignKey(
        GeneratedImage, on_delete=models.CASCADE, related_name="review_requests"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ReviewRequestQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Review of {self.image_id} asked of {self.reviewer_id}"


__all__ = [
    "Board",
    "BoardImage",
    "BoardQuerySet",
    "Comment",
    "ReviewRequest",
    "ReviewRequestQuerySet",
    "Star",
]

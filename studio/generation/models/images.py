"""A job's images: the reference images it was given, those staged in an edit form, and
the results it stored."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.utils import timezone

from studio.accounts.models import Membership, Team
from studio.generation.models.job import Job

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


def box_in_percent(
    box: list[int] | tuple[int, ...], width: int, height: int
) -> tuple[float, float, float, float]:
    """A box [x1, y1, x2, y2] in an image's pixels as left, top, width and height in
    percentages of it: drawn over the image at any displayed size."""
    x1, y1, x2, y2 = box
    return (100 * x1 / width, 100 * y1 / height, 100 * (x2 - x1) / width, 100 * (y2 - y1) / height)


def _input_path(instance: JobInput, filename: str) -> str:
    # Names come from the job and position, never from the upload: nothing to traverse.
    return f"inputs/{instance.job_id}/{instance.position}.{filename.rsplit('.', 1)[-1]}"


class JobInput(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="inputs")
    position = models.PositiveSmallIntegerField()  # 1-9: "image 1" in the prompt
    image = models.FileField(upload_to=_input_path, max_length=200)
    mime = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    boxes = models.JSONField(default=list, blank=True)  # [[x1, y1, x2, y2], ...] in this image
    adjustments = models.JSONField(default=list, blank=True)  # what normalisation changed
    # The stored image this input was made from ("Use as input", a remix, a retry), or none
    # for an upload: an image's lineage. The job and index stay when the image itself is
    # deleted for good, so its place in the lineage shows as removed, not as an upload.
    source_image = models.ForeignKey(
        "generation.GeneratedImage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="uses",
    )
    source_job_id = models.UUIDField(null=True, blank=True)
    source_index = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="unique_input_position"),
        ]

    def __str__(self) -> str:
        return f"Image {self.position} of job {self.job_id}"

    def boxes_shown(self) -> list[tuple[float, float, float, float]]:
        """The regions as left, top, width, height in percentages of the image, to draw
        over it at any displayed size."""
        return [box_in_percent(box, self.width, self.height) for box in self.boxes]


def _staged_path(instance: StagedImage, filename: str) -> str:
    return f"staged/{instance.owner_id}/{instance.pk}.{filename.rsplit('.', 1)[-1]}"


class StagedImage(models.Model):
    """A reference image waiting in someone's edit form, already normalised.

    Uploads are checked and normalised the moment they arrive, so the designer sees what
    the studio did to each one (and draws regions on exactly the pixels the provider will
    receive) before anything is queued or charged. Creating a job copies what it needs;
    staged images nobody used are deleted after a day.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="staged_images")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staged_images"
    )
    image = models.FileField(upload_to=_staged_path, max_length=200)
    mime = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    adjustments = models.JSONField(default=list, blank=True)  # what normalisation changed
    name = models.CharField(max_length=120, blank=True)  # the upload's name, for display only
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Its place on its owner's edit form, kept so the form survives a reload or a visit
    # elsewhere; empty once a job used it or the owner took it off the form.
    position = models.PositiveIntegerField(null=True, blank=True)
    # The regions drawn on it, as the form's field holds them (typed text included).
    regions = models.TextField(blank=True, default="")
    # The stored image it was taken from, carried into the job's input: its lineage.
    source_image = models.ForeignKey(
        "generation.GeneratedImage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The kit image it is a copy of: shown as "from kit" on the form.
    kit_image = models.ForeignKey(
        "generation.KitImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    KEEP_FOR = timedelta(days=1)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["owner", "sha256"], name="staged_owner_sha")]

    def __str__(self) -> str:
        return f"Staged {self.name or self.pk} ({self.width}×{self.height})"

    def read(self) -> builtins.bytes:  # the class's `bytes` is its size field
        with self.image.open("rb") as file:
            return file.read()

    @classmethod
    def purge(cls, now: datetime | None = None) -> int:
        """Delete staged images older than a day, files first; how many went."""
        cutoff = (now or timezone.now()) - cls.KEEP_FOR
        gone = 0
        for staged in cls.objects.filter(created_at__lt=cutoff).iterator():
            staged.image.delete(save=False)
            staged.delete()
            gone += 1
        return gone


class GeneratedImageQuerySet(models.QuerySet["GeneratedImage"]):
    def kept(self) -> GeneratedImageQuerySet:
        """Not in the trash: what every page but the trash shows."""
        return self.filter(deleted_at__isnull=True)

    def trashed(self) -> GeneratedImageQuerySet:
        return self.filter(deleted_at__isnull=False)


class GeneratedImage(models.Model):
    class Review(models.TextChoices):
        IN_REVIEW = "in_review", "In review"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        REJECTED = "rejected", "Rejected"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="images")
    # The job's team, kept on the image so the gallery's newest-first pages are read from
    # one index however many images the team has.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="images")
    review_state = models.CharField(
        max_length=24, choices=Review.choices, default=Review.IN_REVIEW, db_index=True
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # In the trash: hidden everywhere, restorable by an owner for TRASH_DAYS, then gone.
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    TRASH_DAYS = 30
    index = models.PositiveSmallIntegerField()  # 0-based, in the provider's order
    image = models.FileField(max_length=200)
    thumbnail = models.FileField(max_length=200)
    mime = models.CharField(max_length=32, default="image/png")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    bytes = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    objects = GeneratedImageQuerySet.as_manager()

    # Set by the gallery's views on the images they show, for their templates; no fields.
    href: str  # the grid card's link
    thumb_url: str
    alt: str
    state_label: StrOrPromise  # the review state's label
    author_name: str
    model_label: str
    model_name: str
    letter: str  # compare's A to D
    original_url: str
    purge_on: datetime  # when the trash deletes it for good
    set_size: int  # a set's stacked card: how many images it holds
    set_href: str  # and where it opens: the grid of its images

    class Meta:
        ordering = ["job", "index"]
        constraints = [
            # Stored exactly once: a retried download cannot add a second row.
            models.UniqueConstraint(fields=["job", "index"], name="unique_image_index"),
        ]
        indexes = [models.Index(fields=["team", "-created_at", "-id"], name="image_gallery")]

    def __str__(self) -> str:
        return f"Result {self.index + 1} of job {self.job_id}"

    def is_visible_to(self, membership: Membership) -> bool:
        """An image in the trash is seen only by those who may restore it."""
        return self.deleted_at is None or membership.can_manage

    @classmethod
    def purge_trash(cls, now: datetime | None = None) -> int:
        """Delete for good what has been in the trash longer than TRASH_DAYS: files, then
        rows. How many went."""
        cutoff = (now or timezone.now()) - timedelta(days=cls.TRASH_DAYS)
        gone = 0
        for image in cls.objects.filter(deleted_at__lt=cutoff).iterator():
            image.image.delete(save=False)
            image.thumbnail.delete(save=False)
            image.delete()
            gone += 1
        return gone

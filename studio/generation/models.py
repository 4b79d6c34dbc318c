"""Jobs: a designer's request, its inputs, what the provider made, and everything that happened."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.timesince import timesince

from studio.accounts.models import Membership, QuotaCounter, Team
from studio.dashscope.catalog import UnknownModel, get_model
from studio.dashscope.types import GenerationRequest, InputImage
from studio.dashscope.validation import parse_size
from studio.generation.messages import DOWNLOAD_HELD_LABEL


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


class Job(models.Model):
    class Kind(models.TextChoices):
        TEXT_TO_IMAGE = "text-to-image", "Text to image"
        EDIT = "edit", "Edit"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SUBMITTING = "submitting", "Submitting"
        PENDING = "pending", "Waiting at the provider"
        RUNNING = "running", "Running"
        DOWNLOADING = "downloading", "Downloading"
        # The provider made the images, and the studio cannot store them yet for a reason
        # of its own (a result host it does not allow, its TLS trust, its byte cap, its
        # storage) or a fault that outlasted the download retries: tried again with
        # growing pauses while the result URLs are valid, never failed before they expire.
        DOWNLOAD_HELD = "download_held", "Made; download held"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Partially succeeded"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"
        TIMED_OUT = "timed_out", "Timed out (still watched)"

    # Waiting at or working with the provider: counts against a person's jobs in flight.
    ACTIVE = (Status.QUEUED, Status.SUBMITTING, Status.PENDING, Status.RUNNING, Status.DOWNLOADING)
    # Not final: the worker still has something to do or to watch. A held job is made, so it
    # is no longer the designer's job in flight, but its images are still to be stored.
    OPEN = (*ACTIVE, Status.TIMED_OUT, Status.DOWNLOAD_HELD)
    # What the dispatcher passes over many times a second: jobs to send, watch or download.
    # A held job's next try is minutes away; see worker.work_left().
    WATCHED = (*ACTIVE, Status.TIMED_OUT)
    # Not yet started at the provider: it can still be dropped without a charge.
    CANCELLABLE = (Status.QUEUED, Status.SUBMITTING, Status.PENDING)
    AT_PROVIDER = (Status.SUBMITTING, Status.PENDING, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="jobs")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="jobs"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    model = models.CharField(max_length=64)
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    parameters = models.JSONField(default=dict, blank=True)  # size, n, seed, watermark, ...
    images_requested = models.PositiveSmallIntegerField()

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    provider_task_id = models.CharField(max_length=64, blank=True, db_index=True)
    provider_request_id = models.CharField(max_length=64, blank=True)
    provider_submitted_at = models.DateTimeField(null=True, blank=True)
    provider_started_at = models.DateTimeField(null=True, blank=True)
    provider_finished_at = models.DateTimeField(null=True, blank=True)
    submit_started_at = models.DateTimeField(null=True, blank=True)
    timed_out_at = models.DateTimeField(null=True, blank=True)

    # Worker bookkeeping. A lease is held while a worker acts on the job; attempts count
    # the steps started since the last one that finished, so a job that kills its worker
    # every time is failed after a few tries instead of crashing workers forever.
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    polls = models.PositiveIntegerField(default=0)
    # Downloads that failed for a passing reason (a 5xx, a dropped connection); retried
    # with growing pauses for about an hour, well inside the URLs' 24 hours.
    download_failures = models.PositiveSmallIntegerField(default=0)
    # When the provider first turned the job away as busy (a 429 or 5xx to its submit); it
    # is failed once that has gone on for too long.
    turned_away_at = models.DateTimeField(null=True, blank=True)
    # Signed result URLs between the provider's answer and their download; secrets, so
    # never shown anywhere, and cleared when the job ends (kept while it is held: a retry
    # needs them).
    result_urls = models.JSONField(default=list, blank=True)
    # A held download (Status.DOWNLOAD_HELD): since when, when it is tried next, and until
    # when the provider's URLs serve the images. The reason is the job's error_code.
    download_held_at = models.DateTimeField(null=True, blank=True)
    download_retry_at = models.DateTimeField(null=True, blank=True)
    results_valid_until = models.DateTimeField(null=True, blank=True)

    cancel_requested = models.BooleanField(default=False)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    usage = models.JSONField(null=True, blank=True)
    images_charged = models.PositiveSmallIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "model", "created_at"], name="job_dispatch"),
            models.Index(fields=["team", "author", "status"], name="job_author_status"),
            # A model's latest ended tasks: how long it usually runs (typical_seconds).
            models.Index(fields=["model", "finished_at"], name="job_model_finished"),
        ]

    def __str__(self) -> str:
        return f"{self.model} job {self.id} ({self.get_status_display()})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_cancellable(self) -> bool:
        return self.status in self.CANCELLABLE

    @property
    def is_download_held(self) -> bool:
        return self.status == self.Status.DOWNLOAD_HELD

    @property
    def status_for_designers(self) -> str:
        return status_for_designers(self.status)

    @property
    def age_text(self) -> str:
        """How long ago the job was asked for, as Results says it: a job sent a moment ago
        was sent "just now", not "0 minutes ago"."""
        if timezone.now() - self.created_at < timedelta(minutes=1):
            return "just now"
        return f"{timesince(self.created_at)} ago"

    @property
    def images_made(self) -> int:
        """How many images the provider made (while the job is open: its URLs)."""
        return len(self.result_urls)

    # How long the provider's result URLs work when they do not say: 24 hours from the end
    # of the task.
    RESULT_URL_LIFETIME = timedelta(hours=24)

    def result_urls_valid_until(self, now: datetime) -> datetime:
        """When the provider stops serving this job's images: the latest `Expires` (epoch
        seconds) its URLs carry, or else 24 hours from the task's end (the job reaching
        downloading, for a sync call)."""
        finished = self.provider_finished_at or (
            self.events.filter(status=self.Status.DOWNLOADING)
            .order_by("at")
            .values_list("at", flat=True)
            .first()
        )
        documented = (finished or now) + self.RESULT_URL_LIFETIME
        expiries = [_url_expires(url) for url in self.result_urls]
        known = [moment for moment in expiries if moment is not None]
        if known:
            # Believed up to a day past the documented lifetime, not further: an `Expires`
            # years ahead would otherwise hold the job and its reservation as long.
            return min(max(known), documented + self.RESULT_URL_LIFETIME)
        return documented

    def retry_download_now(self, now: datetime | None = None) -> bool:
        """Make a held job's download due at once; False if the job is not held. Pressed
        twice, the second press only makes it due again: a step stores each image under
        its index and a job is settled once, so nothing is stored or charged twice."""
        # The worker's clock, which the due check reads, rather than the database's.
        due = now or timezone.now()
        return bool(
            Job.objects.filter(pk=self.pk, status=self.Status.DOWNLOAD_HELD).update(
                download_retry_at=due
            )
        )

    @property
    def is_asynchronous(self) -> bool:
        return get_model(self.model).async_endpoint is not None

    @property
    def model_label(self) -> str:
        """The model's name as people read it ("Wan 2.6"); its id for a model the
        catalog no longer knows."""
        try:
            return get_model(self.model).label
        except UnknownModel:
            return self.model

    def move(
        self,
        to: str,
        *,
        expect: tuple[str, ...] | None = None,
        message: str = "",
        request_id: str = "",
        code: str = "",
        **fields: Any,
    ) -> bool:
        """Change status if the job is still in one of `expect`, and record it.

        The conditional UPDATE is what makes two workers racing on one job harmless: only
        one of them sees its change applied.
        """
        rows = Job.objects.filter(pk=self.pk)
        if expect is not None:
            rows = rows.filter(status__in=expect)
        if to not in self.OPEN:
            fields.setdefault("finished_at", timezone.now())
        # The change and its line of history commit together: one commit, not two, and
        # never a state without its event.
        with transaction.atomic(savepoint=False):
            changed = rows.update(status=to, updated_at=timezone.now(), **fields)
            if changed:
                JobEvent.objects.create(
                    job=self, status=to, message=message, request_id=request_id, code=code
                )
                if self.lease_owner and fields.get("lease_owner") == "":
                    # The step holding the job lets go of it: its term ends with the lease.
                    LeaseTerm.end(LeaseTerm.of_job(self.pk), self.lease_owner)
        if changed:
            self.status = to
            for name, value in fields.items():
                # An expression (the database's clock) is the database's to evaluate.
                if not hasattr(value, "resolve_expression"):
                    setattr(self, name, value)
        return bool(changed)

    def renew_lease(self, owner: str, seconds: float) -> bool:
        """Extend the lease `owner` holds on this job, and its term; False once it holds none
        (its step let go of the job, or the lease lapsed and another worker took it)."""
        from django.db.models.functions import Now

        until = Now() + timedelta(seconds=seconds)
        with transaction.atomic():
            held = Job.objects.filter(pk=self.pk, lease_owner=owner).update(lease_until=until)
            if held:
                LeaseTerm.objects.filter(
                    lease=LeaseTerm.of_job(self.pk), owner=owner, ended_at__isnull=True
                ).update(expires_at=until)
        return bool(held)

    def log(self, message: str, *, request_id: str = "", code: str = "") -> None:
        JobEvent.objects.create(
            job=self, status=self.status, message=message, request_id=request_id, code=code
        )

    def to_generation_request(self) -> GenerationRequest:
        """The provider request this job stands for, inputs read back from the media store."""
        inputs = list(self.inputs.all())
        images = []
        for item in inputs:
            with item.image.open("rb") as file:
                images.append(InputImage.from_bytes(file.read()))
        return GenerationRequest.build(
            model=self.model,
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            parameters=self.parameters,
            images=images,
            boxes=[item.boxes for item in inputs],
        )

    # The request's settings by the names the generate and edit forms give them.
    PARAMETER_LABELS = {
        "size": "Size",
        "n": "Images",
        "seed": "Seed",
        "prompt_extend": "Improve my prompt",
        "thinking_mode": "Think first",
        "watermark": "Watermark",
    }

    def settings_shown(self) -> list[tuple[str, str]]:
        """The request's settings as a designer reads them: the forms' labels, sizes as
        width×height, switches as yes or no (the colour palette is drawn apart)."""
        shown = []
        for name, value in self.parameters.items():
            if name == "color_palette":
                continue
            label = self.PARAMETER_LABELS.get(name, name.replace("_", " ").capitalize())
            if isinstance(value, bool):
                text = "yes" if value else "no"
            elif name == "size" and isinstance(value, str):
                text = value.replace("*", "×")
            else:
                text = str(value)
            shown.append((label, text))
        return shown

    def expected_shape(self) -> tuple[int, int]:
        """The width and height of the images this job makes, or of their shape: the images
        themselves once stored, else the size asked for, else (an edit's tier or default
        follows it) the last input image's, else square. Reads prefetched images and
        inputs, so a list of jobs asks nothing more."""
        stored = list(self.images.all())
        if stored:
            return stored[0].width, stored[0].height
        parsed = parse_size(str(self.parameters.get("size") or ""))
        if parsed:
            return parsed
        inputs = sorted(self.inputs.all(), key=lambda item: item.position)
        if inputs:
            return inputs[-1].width, inputs[-1].height
        return 1, 1

    def result_tiles(self) -> list[GeneratedImage | None]:
        """One place per image asked for, in order: the stored image, or None while it is
        still to come (a set may stop short of its upper bound; the places stay)."""
        stored = {image.index: image for image in self.images.all()}
        count = max(self.images_requested, max(stored, default=-1) + 1)
        return [stored.get(index) for index in range(count)]

    def queue_position(self) -> int | None:
        """How many queued jobs of the same model are ahead of this one (1 = next)."""
        if self.status != self.Status.QUEUED:
            return None
        ahead = Job.objects.filter(
            model=self.model, status=self.Status.QUEUED, created_at__lt=self.created_at
        )
        return ahead.count() + 1

    @cached_property
    def usual_seconds(self) -> float | None:
        """How long this job's model usually runs at the provider; a list of jobs sets it
        once per model (see with_usual_seconds) rather than asking for each job."""
        return typical_seconds(self.model)

    def image_cost(self) -> str:
        """What one of its images cost, for people to read: the price it was charged at
        when it was made (as the usage report counts it), or today's price for a job from
        before the ledger; "no price set" without either."""
        charge = self.quota_charges.order_by("-kind").first()  # settled before reserved
        price = ModelPrice.objects.filter(model=self.model).first()
        if charge is not None and (charge.unit_price or price is not None):
            unit = charge.unit_price
        elif price is not None:
            unit = price.price_per_image
        else:
            return "no price set"
        return f"{money(unit)} {price.currency if price else ModelPrice.currency_in_use()}"

    def live_note(self, now: datetime | None = None) -> str:
        """What an open job is doing, as its placeholders say it: its place in line, its
        time at the provider against what the model usually takes, or that its images are
        on their way. Empty once it has ended."""
        now = now or timezone.now()
        if self.status == self.Status.QUEUED:
            position = self.queue_position() or 1
            return "Next in line" if position == 1 else f"{ordinal(position)} in line"
        if self.status == self.Status.SUBMITTING:
            return "Sending to the provider"
        if self.status == self.Status.PENDING:
            waited = _seconds_since(self.provider_submitted_at, now)
            return "Waiting at the provider" + (f" · {waited} s" if waited is not None else "")
        if self.status == self.Status.RUNNING:
            ran = _seconds_since(self.provider_started_at or self.provider_submitted_at, now)
            if ran is None:
                return "Running"
            usual = self.usual_seconds
            if usual is None:
                return f"Running · {ran} s"
            about = max(1, round(usual))
            if ran > about:
                return f"Running · {ran} s, longer than the usual {about} s"
            return f"Running · {ran} s of about {about} s"
        if self.status == self.Status.DOWNLOADING:
            return "Made · storing the images"
        if self.status in self.OPEN:
            return self.status_for_designers
        return ""


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st."""
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def _seconds_since(moment: datetime | None, now: datetime) -> int | None:
    if moment is None:
        return None
    return max(0, int((now - moment).total_seconds()))


# How many of a model's latest tasks say how long it usually takes.
TYPICAL_OF = 10


def with_usual_seconds(jobs: list[Job]) -> list[Job]:
    """Sets each running job's usual_seconds, asking once per model."""
    usual: dict[str, float | None] = {}
    for job in jobs:
        if job.status == Job.Status.RUNNING:
            if job.model not in usual:
                usual[job.model] = typical_seconds(job.model)
            job.__dict__["usual_seconds"] = usual[job.model]
    return jobs


def typical_seconds(model: str) -> float | None:
    """How long the model's latest tasks ran at the provider (the median, from the start
    and end times the provider reported): what the dispatcher's forecast learns from too,
    read from the jobs so any web process can say it. None before any task has ended."""
    spans = [
        (ended - started).total_seconds()
        for started, ended in Job.objects.filter(
            model=model,
            provider_started_at__isnull=False,
            provider_finished_at__isnull=False,
            status__in=(Job.Status.SUCCEEDED, Job.Status.PARTIAL),
        )
        .order_by("-finished_at")
        .values_list("provider_started_at", "provider_finished_at")[:TYPICAL_OF]
        if ended >= started
    ]
    if not spans:
        return None
    spans.sort()
    middle = len(spans) // 2
    return spans[middle] if len(spans) % 2 else (spans[middle - 1] + spans[middle]) / 2


def status_for_designers(status: str) -> str:
    """A job's state as the team's pages name it: a held download is on its way, and why it
    is held is the staff's business."""
    if status == Job.Status.DOWNLOAD_HELD:
        return DOWNLOAD_HELD_LABEL
    return str(Job.Status(status).label)


def _url_expires(url: str) -> datetime | None:
    """A signed URL's `Expires` (epoch seconds), as OSS writes it; None without one."""
    values = parse_qs(urlsplit(url).query).get("Expires", [])
    if len(values) != 1 or not values[0].isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(values[0]), UTC)
    except (OverflowError, OSError, ValueError):
        return None  # no moment a clock can hold: the 24 hours apply


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

    KEEP_FOR = timedelta(days=1)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["owner", "sha256"], name="staged_owner_sha")]

    def __str__(self) -> str:
        return f"Staged {self.name or self.pk} ({self.width}×{self.height})"

    def read(self) -> bytes:
        with self.image.open("rb") as file:
            return file.read()

    @classmethod
    def purge(cls, now: Any = None) -> int:
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
    def purge_trash(cls, now: Any = None) -> int:
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


class JobEvent(models.Model):
    """One line of a job's history: a state change or a provider call. Never a secret."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Job.Status.choices)
    message = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    code = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.status}: {self.message}"

    @property
    def status_for_designers(self) -> str:
        return status_for_designers(self.status)


class QuotaCharge(models.Model):
    """The ledger: one reservation and at most one settlement per job."""

    class Kind(models.TextChoices):
        RESERVE = "reserve", "Reserved"
        SETTLE = "settle", "Settled"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="quota_charges")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    images = models.PositiveSmallIntegerField()  # reserved, or charged at settlement
    counter_ids = models.JSONField(default=list)
    # The model's price per image when the job was created: what its money is held and
    # settled at, whatever the price table says later.
    unit_price = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "kind"], name="unique_charge_per_job"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.images} images for job {self.job_id}"

    @classmethod
    def settle(cls, job: Job, charged: int) -> bool:
        """Charge a job for `charged` stored images and release the rest, exactly once."""
        with transaction.atomic():
            reservation = cls.objects.filter(job=job, kind=cls.Kind.RESERVE).first()
            if reservation is None:
                return False
            try:
                with transaction.atomic():
                    cls.objects.create(
                        job=job,
                        kind=cls.Kind.SETTLE,
                        images=charged,
                        counter_ids=reservation.counter_ids,
                        unit_price=reservation.unit_price,
                    )
            except IntegrityError:
                return False  # settled already
            QuotaCounter.settle(
                reservation.counter_ids,
                reserved=reservation.images,
                charged=charged,
                unit_price=reservation.unit_price,
            )
            Job.objects.filter(pk=job.pk).update(images_charged=charged)
            job.images_charged = charged
        return True


class WorkerLease(models.Model):
    """A named lease, so that one process at a time does a job-wide duty (the dispatcher).

    Times come from the database's clock, the one clock every host agrees on.
    """

    name = models.CharField(max_length=32, primary_key=True)
    owner = models.CharField(max_length=96, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    # What the holder hands to its successor (the dispatcher: its recent request times,
    # so the provider's per-second limits hold across the hand-over).
    state = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.name} lease held by {self.owner or 'nobody'}"

    @classmethod
    def acquire(cls, name: str, owner: str, seconds: float) -> bool:
        from django.db.models import Q
        from django.db.models.functions import Now

        free = Q(until__isnull=True) | Q(until__lt=Now()) | Q(owner=owner)
        until = Now() + timedelta(seconds=seconds)
        # One UPDATE on every pass; the row is made the first time only.
        if cls.objects.filter(free, name=name).update(owner=owner, until=until):
            return True
        _, created = cls.objects.get_or_create(name=name)
        return created and bool(
            cls.objects.filter(free, name=name).update(owner=owner, until=until)
        )

    @classmethod
    def renew(cls, name: str, owner: str, seconds: float) -> bool:
        """Extend a lease `owner` holds; False if it holds it no longer."""
        from django.db.models.functions import Now

        until = Now() + timedelta(seconds=seconds)
        return bool(cls.objects.filter(name=name, owner=owner).update(until=until))

    @classmethod
    def release(cls, name: str, owner: str, state: dict | None = None) -> None:
        fields: dict = {"owner": "", "until": None}
        if state is not None:
            fields["state"] = state
        cls.objects.filter(name=name, owner=owner).update(**fields)

    @classmethod
    def handed_over(cls, name: str) -> dict:
        return cls.objects.filter(name=name).values_list("state", flat=True).first() or {}

    @classmethod
    def is_held(cls, name: str) -> bool:
        from django.db.models.functions import Now

        return cls.objects.filter(name=name, until__gte=Now()).exists()


class LeaseTerm(models.Model):
    """Who held a lease, from when to when, by the database's clock.

    Leases keep two workers from acting on one job (or two dispatchers from running) at
    once; these terms are the record that lets an audit show they did. A term a killed
    worker left open ends, at the latest, when its lease ran out.
    """

    lease = models.CharField(max_length=64)  # "dispatcher", or "job:<id>" for a job's step
    owner = models.CharField(max_length=96)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["lease", "started_at"], name="lease_term_lease"),
            models.Index(fields=["started_at"], name="lease_term_started"),
        ]

    def __str__(self) -> str:
        return f"{self.lease} held by {self.owner}"

    @staticmethod
    def of_job(job_id: object) -> str:
        """The lease a job's step holds on its job."""
        return f"job:{job_id}"

    @classmethod
    def begin(cls, lease: str, owner: str, *, seconds: float | None = None) -> None:
        from django.db.models.functions import Now

        expires = Now() + timedelta(seconds=seconds) if seconds is not None else None
        cls.objects.create(lease=lease, owner=owner, started_at=Now(), expires_at=expires)

    @classmethod
    def end(cls, lease: str, owner: str | None = None) -> None:
        from django.db.models.functions import Now

        terms = cls.objects.filter(lease=lease, ended_at__isnull=True)
        if owner is not None:
            terms = terms.filter(owner=owner)
        terms.update(ended_at=Now())

    @classmethod
    def purge(cls, days: int = 30) -> None:
        cls.objects.filter(started_at__lt=timezone.now() - timedelta(days=days)).delete()


class ModelPrice(models.Model):
    """What the provider bills per image it makes, per model, as the admins keep it."""

    model = models.CharField(max_length=64, unique=True)
    price_per_image = models.DecimalField(max_digits=10, decimal_places=4)
    currency = models.CharField(max_length=3, default="USD")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model"]

    def __str__(self) -> str:
        return f"{self.model}: {self.price_per_image} {self.currency} per image"

    @classmethod
    def table(cls) -> dict[str, Any]:
        return dict(cls.objects.values_list("model", "price_per_image"))

    @classmethod
    def currency_in_use(cls) -> str:
        return cls.objects.values_list("currency", flat=True).first() or "USD"


def money(amount: Decimal) -> str:
    """At least cents, and the fractions of a cent a price table may hold: 0.40, 0.035."""
    text = f"{amount.normalize():f}"
    return text if len(text.partition(".")[2]) >= 2 else f"{amount:.2f}"

"""A job: a designer's request, its state at the provider, and its history of events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict, Unpack
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.db import models, transaction
from django.db.models.expressions import Combinable
from django.utils import timezone
from django.utils.functional import cached_property

from studio.accounts.models import Team
from studio.dashscope.catalog import get_model
from studio.dashscope.types import GenerationRequest, InputImage
from studio.generation.messages import DOWNLOAD_HELD_LABEL
from studio.generation.models.display import JobDisplay
from studio.generation.models.workers import LeaseTerm


class LeaseFields(TypedDict, total=False):
    """A job's lease: who holds it and until when (an expression the database evaluates,
    or a time)."""

    lease_owner: str
    lease_until: datetime | Combinable | None


class JobFields(LeaseFields, total=False):
    """The fields a change of status sets with it (Job.move)."""

    attempts: int
    download_held_at: datetime | None
    download_retry_at: datetime | None
    error_code: str
    error_message: str
    finished_at: datetime | None
    next_poll_at: datetime | None
    provider_finished_at: datetime | None
    provider_request_id: str
    provider_task_id: str
    result_urls: list[str]
    results_valid_until: datetime | None
    submit_started_at: datetime | None
    timed_out_at: datetime | None
    turned_away_at: datetime | None
    usage: dict[str, Any] | None  # the provider's JSON


class Job(JobDisplay, models.Model):
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
    # Mixed text and images (a streamed piece): what arrived, in order, as
    # [{"text": "..."}, {"image": 0}, ...] (an image by its index), and its text alone,
    # which the gallery searches.
    output_parts = models.JSONField(default=list, blank=True)
    output_text = models.TextField(blank=True, default="")
    # The brand kit applied, and its name then: a job keeps its own settings, so a kit
    # changed or removed later leaves it as it was.
    kit = models.ForeignKey(
        "generation.BrandKit", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    kit_name = models.CharField(max_length=80, blank=True)

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
    def is_streamed(self) -> bool:
        """Whether the job is a piece of mixed text and images, which the provider streams
        from its sync endpoint only."""
        return bool(self.parameters.get("enable_interleave"))

    @property
    def is_asynchronous(self) -> bool:
        return not self.is_streamed and get_model(self.model).async_endpoint is not None

    def move(
        self,
        to: str,
        *,
        expect: tuple[str, ...] | None = None,
        message: str = "",
        request_id: str = "",
        code: str = "",
        **fields: Unpack[JobFields],
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
        # Never None (the filter above); said again for the type checker.
        if started is not None and ended is not None and ended >= started
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

"""Jobs in the admin: read-only pages with their inputs, results, history and worker
steps, and the one action staff take on a job: retrying a held download."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from datetime import datetime
from typing import cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from studio.audit.models import Entry, record
from studio.generation import messages as job_messages
from studio.generation.models import GeneratedImage, Job, JobEvent, JobInput, LeaseTerm
from studio.generation.worker.handover import enqueue_job_step
from studio.media import serve_image


def may_retry_downloads(request: HttpRequest) -> bool:
    # Acting on a job, not only reading it: the admin is otherwise read-only for jobs.
    return request.user.has_perm("generation.change_job")


def retry_held_downloads(request: HttpRequest, jobs: Iterable[Job]) -> int:
    """Make each held job's download due now and wake a worker for it, audited; how many
    were held. Pressed twice, a job gets a second step that finds it stored (or still
    held): a step stores each image under its index, and a job is settled once."""
    retried = 0
    for job in jobs:
        if not job.retry_download_now():
            continue
        record(request, Entry.Action.RETRY_DOWNLOAD, job, team=job.team)
        # Once the change is committed, or the step could find the job not due.
        transaction.on_commit(functools.partial(enqueue_job_step, job))
        retried += 1
    return retried


class ReadOnlyInline(admin.TabularInline):
    """A job's parts as they happened: shown, never edited."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        # Each inline lists its columns flat, in no groups.
        return list(cast("list[str]", self.fields or []))

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # A job's inputs, images and history are part of reading the job.
        return request.user.has_perm("generation.view_job")

    @admin.display(description="Stored as")
    def stored_as(self, row: JobInput | GeneratedImage) -> str | None:
        """The file's name in the media store, as text: a file field is shown as a link
        to its URL, which on S3 is signed."""
        return row.image.name


def _preview(url: str, width: int, height: int, alt: str) -> str:
    """A small picture of a job's image for its admin page, from the admin's own address:
    staff read jobs of teams they are not in."""
    scale = min(1.0, 160 / max(width, height, 1))
    return format_html(
        '<img src="{}" width="{}" height="{}" alt="{}" loading="lazy" class="admin-preview">',
        url,
        max(1, round(width * scale)),
        max(1, round(height * scale)),
        alt,
    )


class JobEventInline(ReadOnlyInline):
    model = JobEvent
    fields = ["at", "status", "message", "code", "request_id"]


class JobInputInline(ReadOnlyInline):
    model = JobInput
    fields = ["position", "preview", "stored_as", "width", "height", "boxes", "adjustments"]

    @admin.display(description="Picture")
    def preview(self, row: JobInput) -> str:
        url = reverse("admin:generation_job_file", args=[row.job_id, "input", row.position])
        return _preview(url, row.width, row.height, f"Reference image {row.position}")


class GeneratedImageInline(ReadOnlyInline):
    model = GeneratedImage
    fields = ["index", "preview", "stored_as", "width", "height", "bytes", "sha256", "deleted_at"]

    @admin.display(description="Picture")
    def preview(self, row: GeneratedImage) -> str:
        url = reverse("admin:generation_job_file", args=[row.job_id, "result", row.index])
        return _preview(url, row.width, row.height, f"Result {row.index + 1}")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "team",
        "author",
        "model",
        "status",
        "images_requested",
        "images_charged",
        "created_at",
    ]
    list_filter = ["status", "model", "kind", "team"]
    search_fields = ["prompt", "provider_task_id", "provider_request_id", "author__username"]
    date_hierarchy = "created_at"
    # The signed result URLs (`result_urls`) are secrets and are never shown.
    fields = [
        "team",
        "author",
        "kind",
        "model",
        "prompt",
        "negative_prompt",
        "parameters_shown",
        "status",
        "error_code",
        "error_message",
        "images_requested",
        "images_charged",
        "usage_shown",
        "provider_task_id",
        "provider_request_id",
        "provider_submitted_at_shown",
        "provider_started_at_shown",
        "provider_finished_at_shown",
        "submit_started_at_shown",
        "timed_out_at_shown",
        "held_download",
        "download_held_at_shown",
        "download_retry_at_shown",
        "results_valid_until_shown",
        "attempts",
        "polls",
        "created_at_shown",
        "finished_at_shown",
        "workers",
    ]
    readonly_fields = cast("list[str]", fields)  # the flat list above
    inlines = [JobInputInline, GeneratedImageInline, JobEventInline]
    actions = ["retry_download_now"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def view_on_site(self, job: Job) -> str:
        return reverse("job-detail", args=[job.pk])

    @admin.display(description="Parameters")
    def parameters_shown(self, job: Job) -> str:
        return _as_json(job.parameters)

    @admin.display(description="Usage")
    def usage_shown(self, job: Job) -> str:
        return _as_json(job.usage) if job.usage is not None else "-"

    def file_view(
        self, request: HttpRequest, job_id: str, kind: str, number: int
    ) -> HttpResponseBase:
        """A job's reference image or result (its thumbnail) for the previews on its page."""
        if not self.has_view_permission(request):
            raise PermissionDenied("Viewing jobs needs the permission to view them.")
        if kind == "input":
            row = get_object_or_404(JobInput, job_id=job_id, position=number)
            return serve_image(row.image, row.mime, max_age=3600)
        image = get_object_or_404(GeneratedImage, job_id=job_id, index=number)
        if image.thumbnail:
            return serve_image(image.thumbnail, "image/webp", max_age=3600)
        return serve_image(image.image, image.mime, max_age=3600)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a job would take its ledger rows with it and leave its reservation
        # in the quota counters, and take its images out of the usage report.
        return False

    def has_retry_download_permission(self, request: HttpRequest) -> bool:
        return may_retry_downloads(request)

    @admin.action(description="Retry download now", permissions=["retry_download"])
    def retry_download_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        held = queryset.filter(status=Job.Status.DOWNLOAD_HELD).select_related("team")
        retried = retry_held_downloads(request, held)
        self.message_user(
            request,
            f"Download retried now for {retried} held job{'s' if retried != 1 else ''}.",
            messages.SUCCESS if retried else messages.WARNING,
        )

    def get_urls(self) -> list[URLPattern]:
        retry = self.admin_site.admin_view(require_POST(self.retry_download_view))
        return [
            path("<uuid:job_id>/retry-download/", retry, name="generation_job_retry_download"),
            path(
                "<uuid:job_id>/<str:kind>/<int:number>/picture",
                self.admin_site.admin_view(self.file_view),
                name="generation_job_file",
            ),
            *super().get_urls(),
        ]

    def retry_download_view(self, request: HttpRequest, job_id: str) -> HttpResponse:
        """The "Retry download now" button of the health page and of the job's page."""
        if not self.has_retry_download_permission(request):
            raise PermissionDenied("Retrying a download needs the permission to change jobs.")
        job = get_object_or_404(Job.objects.select_related("team"), pk=job_id)
        if retry_held_downloads(request, [job]):
            self.message_user(request, f"Download of {job} retried now.", messages.SUCCESS)
        else:
            self.message_user(request, f"{job} is no longer held.", messages.WARNING)
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            back = reverse("admin:generation_job_change", args=[job.pk])
        return HttpResponseRedirect(back)

    # Times to the second: the gaps between them are how long each step took.
    @admin.display(description="Sent to the provider")
    def provider_submitted_at_shown(self, job: Job) -> str:
        return _when(job.provider_submitted_at)

    @admin.display(description="Started at the provider")
    def provider_started_at_shown(self, job: Job) -> str:
        return _when(job.provider_started_at)

    @admin.display(description="Finished at the provider")
    def provider_finished_at_shown(self, job: Job) -> str:
        return _when(job.provider_finished_at)

    @admin.display(description="Submit started")
    def submit_started_at_shown(self, job: Job) -> str:
        return _when(job.submit_started_at)

    @admin.display(description="Timed out")
    def timed_out_at_shown(self, job: Job) -> str:
        return _when(job.timed_out_at)

    @admin.display(description="Download held since")
    def download_held_at_shown(self, job: Job) -> str:
        return _when(job.download_held_at)

    @admin.display(description="Download retried next")
    def download_retry_at_shown(self, job: Job) -> str:
        return _when(job.download_retry_at)

    @admin.display(description="Result URLs valid until")
    def results_valid_until_shown(self, job: Job) -> str:
        return _when(job.results_valid_until)

    @admin.display(description="Created")
    def created_at_shown(self, job: Job) -> str:
        return _when(job.created_at)

    @admin.display(description="Finished")
    def finished_at_shown(self, job: Job) -> str:
        return _when(job.finished_at)

    @admin.display(description="Held download")
    def held_download(self, job: Job) -> str:
        """Why the download is held, and the button to retry it now (it posts the page's
        own form, with its CSRF token, to the retry address)."""
        if not job.is_download_held:
            return "-"
        return format_html(
            '{} <button type="submit" class="button" formaction="{}" formmethod="post" '
            'name="next" value="{}" id="retry-download">Retry download now</button>',
            job_messages.hold_reason(job.error_code),
            reverse("admin:generation_job_retry_download", args=[job.pk]),
            reverse("admin:generation_job_change", args=[job.pk]),
        )

    @admin.display(description="Worker steps")
    def workers(self, job: Job) -> str:
        """Which worker held the job, when, and how each hold ended: where a crash shows."""
        terms = LeaseTerm.objects.filter(lease=LeaseTerm.of_job(job.pk)).order_by("started_at")
        lines = [
            f"{term.started_at:%Y-%m-%d %H:%M:%S} {term.owner}: "
            + (f"done at {term.ended_at:%H:%M:%S}" if term.ended_at else "never finished")
            for term in terms
        ]
        return "\n".join(lines) or "-"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z")


def _as_json(value: object) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return format_html('<pre class="admin-json">{}</pre>', text)

"""Studio health: the queue, the dispatcher, the provider's recent errors and the
downloads that are held or failed, on one admin page."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django_q.models import Success

from studio.dashscope.catalog import UnknownModel, get_model
from studio.generation import messages as job_messages
from studio.generation.admin.jobs import may_retry_downloads
from studio.generation.models import Job, JobEvent, LeaseTerm, WorkerLease

NOT_STORED = ("DownloadFailed", "InvalidResult", "ResultExpired")
HELD_LISTED = 50
QUIET_CODES = ("", "ok", "SUCCEEDED")


def dispatcher_last_ran() -> datetime | None:
    """When a dispatcher last held its lease: the end of its latest term."""
    term = LeaseTerm.objects.filter(lease="dispatcher").order_by("-started_at").first()
    return (term.ended_at or term.expires_at or term.started_at) if term else None


def studio_health(request: HttpRequest) -> HttpResponse:
    """What an admin checks first when designers say it is slow: the queue, the worker,
    the provider's errors of the last hour, and results that could not be stored."""
    if not request.user.has_perm("generation.view_job"):
        raise PermissionDenied("Reading the studio's health needs the permission to view jobs.")
    now = timezone.now()
    context = {
        **admin.site.each_context(request),
        "title": "Studio health",
        **_queue_and_dispatcher(now),
        **_trouble(now),
        "may_retry": may_retry_downloads(request),
    }
    return TemplateResponse(request, "admin/health.html", context)


def _queue_and_dispatcher(now: datetime) -> dict[str, object]:
    """The open jobs by state, the oldest waiting, and whether the dispatcher runs."""
    by_state = dict(
        Job.objects.filter(status__in=Job.OPEN).values_list("status").annotate(n=Count("id"))
    )
    lease = WorkerLease.objects.filter(name="dispatcher").first()
    return {
        "states": [
            (label, by_state.get(value, 0))
            for value, label in Job.Status.choices
            if value in Job.OPEN
        ],
        "oldest": Job.objects.filter(status=Job.Status.QUEUED).order_by("created_at").first(),
        "lease": lease,
        "dispatcher_running": bool(lease and lease.until and lease.until > now),
        # Not running with nothing to do is the normal state of a quiet studio, not an alarm.
        "dispatcher_needed": any(by_state.get(status) for status in Job.WATCHED),
        "dispatcher_last_ran": dispatcher_last_ran(),
        "last_task": Success.objects.order_by("-stopped").values_list("stopped", flat=True).first(),
    }


def _trouble(now: datetime) -> dict[str, object]:
    """The provider's errors of the last hour, and results not stored, retried or held."""
    errors = (
        JobEvent.objects.filter(at__gte=now - timedelta(hours=1))
        .exclude(code__in=QUIET_CODES)
        .values("code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    retrying = Job.objects.filter(status=Job.Status.DOWNLOADING, download_failures__gt=0)
    held = (
        Job.objects.filter(status=Job.Status.DOWNLOAD_HELD)
        .select_related("team")
        .annotate(stored=Count("images"))
        .order_by("download_held_at")[:HELD_LISTED]
    )
    return {
        "errors": list(errors),
        "not_stored": Job.objects.filter(error_code__in=NOT_STORED).order_by("-finished_at")[:20],
        "retrying": retrying.count(),
        "held": [_held_row(job) for job in held],
    }


def _held_row(job: Job) -> dict[str, object]:
    """A held job as the health page lists it; never its URLs, only how many there are."""
    try:
        model = get_model(job.model).label
    except UnknownModel:
        model = job.model
    return {
        "job": job,
        "model": model,
        "reason": job_messages.hold_reason(job.error_code),
        "stored": job.stored,  # type: ignore[attr-defined]  # annotated
        "made": job.images_made,
    }

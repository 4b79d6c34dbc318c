import csv
import functools
import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_q.models import Success

from studio.accounts.models import Team
from studio.audit.models import Entry, record
from studio.dashscope.catalog import MODELS, UnknownModel, get_model
from studio.generation import messages as job_messages
from studio.generation.models import (
    GeneratedImage,
    Job,
    JobEvent,
    JobInput,
    LeaseTerm,
    ModelPrice,
    WorkerLease,
)
from studio.generation.reports import GROUPS, UsageReport, chart_bars, usage
from studio.generation.worker import enqueue_job_step
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
        return list(self.fields or [])

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        # A job's inputs, images and history are part of reading the job.
        return request.user.has_perm("generation.view_job")

    @admin.display(description="Stored as")
    def stored_as(self, row: JobInput | GeneratedImage) -> str:
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
    readonly_fields = fields
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

    def file_view(self, request: HttpRequest, job_id: str, kind: str, number: int) -> HttpResponse:
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


class ModelPriceForm(forms.ModelForm):
    model = forms.ChoiceField(
        choices=[(spec.name, f"{spec.label} ({spec.name})") for spec in MODELS]
    )

    class Meta:
        model = ModelPrice
        fields = ["model", "price_per_image", "currency"]

    def clean_currency(self) -> str:
        """One currency for every price: budgets, estimates and the usage report add the
        amounts up, and 0.20 CNY plus 0.03 USD is no amount at all."""
        currency = self.cleaned_data["currency"].strip().upper()
        if not (len(currency) == 3 and currency.isascii() and currency.isalpha()):
            raise forms.ValidationError("Write the currency as its three-letter code, as USD.")
        others = ModelPrice.objects.exclude(pk=self.instance.pk).exclude(currency=currency)
        in_use = others.values_list("currency", flat=True).first()
        if in_use:
            raise forms.ValidationError(
                f"The other prices are in {in_use}, and budgets and the usage report add "
                f"prices up: enter this one in {in_use} too. To change the currency, delete "
                "the other prices and enter them again in the new one."
            )
        return currency


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    form = ModelPriceForm
    list_display = ["model", "price_per_image", "currency", "updated_at"]


# -- Usage report ---------------------------------------------------------------------------


class UsageForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    by = forms.ChoiceField(choices=list(GROUPS.items()), initial="day", label="Group by")
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(), required=False, empty_label="All teams"
    )

    def clean(self) -> dict:
        data = super().clean()
        if data.get("start") and data.get("end"):
            if data["end"] < data["start"]:
                raise forms.ValidationError("The range ends before it starts.")
            if (data["end"] - data["start"]).days > 366:
                raise forms.ValidationError("Choose a range of a year or less.")
        return data


def usage_report(request: HttpRequest) -> HttpResponse:
    """Images and money by day, person, model or team, as a table, a chart and a CSV."""
    if not request.user.has_perm("generation.view_job"):
        raise PermissionDenied("Reading usage needs the permission to view jobs.")
    today = timezone.localdate()
    defaults = {"start": today - timedelta(days=29), "end": today, "by": "day"}
    # What the address leaves out (or empty) takes its default, so `?by=model` alone is
    # the last thirty days by model, and the form shows the range the report covers.
    given = {key: value for key, value in request.GET.items() if value}
    form = UsageForm({**{key: str(value) for key, value in defaults.items()}, **given})
    params = form.cleaned_data if form.is_valid() else defaults
    team = params.get("team")
    report = usage(params["start"], params["end"], params["by"], team.pk if team else None)
    if request.GET.get("format") == "csv":
        return _usage_csv(report)
    context = {
        **admin.site.each_context(request),
        "title": "Usage",
        "form": form,
        "report": report,
        "bars": chart_bars(report),
        "csv_query": (request.GET.urlencode() + "&" if request.GET else "") + "format=csv",
    }
    return TemplateResponse(request, "admin/usage.html", context)


def _usage_csv(report: UsageReport) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"usage-{report.by}-{report.start}-{report.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        [GROUPS[report.by], "Jobs", "Images", f"Cost ({report.currency})", "Failed", "Errors"]
    )
    for row in [*report.rows, report.total]:
        writer.writerow(
            [row.key, row.jobs, row.images, f"{row.cost:.2f}", row.failed, row.error_summary]
        )
    return response


# -- Studio health --------------------------------------------------------------------------

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
    by_state = dict(
        Job.objects.filter(status__in=Job.OPEN).values_list("status").annotate(n=Count("id"))
    )
    oldest = Job.objects.filter(status=Job.Status.QUEUED).order_by("created_at").first()
    lease = WorkerLease.objects.filter(name="dispatcher").first()
    last_task = Success.objects.order_by("-stopped").values_list("stopped", flat=True).first()
    errors = (
        JobEvent.objects.filter(at__gte=now - timedelta(hours=1))
        .exclude(code__in=QUIET_CODES)
        .values("code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    not_stored = Job.objects.filter(error_code__in=NOT_STORED).order_by("-finished_at")[:20]
    retrying = Job.objects.filter(status=Job.Status.DOWNLOADING, download_failures__gt=0)
    held = (
        Job.objects.filter(status=Job.Status.DOWNLOAD_HELD)
        .select_related("team")
        .annotate(stored=Count("images"))
        .order_by("download_held_at")[:HELD_LISTED]
    )
    context = {
        **admin.site.each_context(request),
        "title": "Studio health",
        "states": [
            (label, by_state.get(value, 0))
            for value, label in Job.Status.choices
            if value in Job.OPEN
        ],
        "oldest": oldest,
        "lease": lease,
        "dispatcher_running": bool(lease and lease.until and lease.until > now),
        # Not running with nothing to do is the normal state of a quiet studio, not an alarm.
        "dispatcher_needed": any(by_state.get(status) for status in Job.WATCHED),
        "dispatcher_last_ran": dispatcher_last_ran(),
        "last_task": last_task,
        "errors": list(errors),
        "not_stored": not_stored,
        "retrying": retrying.count(),
        "held": [_held_row(job) for job in held],
        "may_retry": may_retry_downloads(request),
    }
    return TemplateResponse(request, "admin/health.html", context)


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

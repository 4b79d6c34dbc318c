"""A job's page and what can be done with a job: follow it, cancel it, run it again or
with a new seed, and read its reference images and results."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, prefetch_related_objects
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from studio.audit.models import Entry, record
from studio.generation.access import (
    get_job_for_user,
    get_job_image_for_user,
    get_job_input_for_user,
)
from studio.generation.messages import DOWNLOAD_HELD
from studio.generation.models import GeneratedImage, Job
from studio.generation.services import JobRefused, cancel_job, retry_job, variations_job
from studio.generation.views.shared import audit_generate
from studio.http import PARTIAL_HEADERS, AppRequest
from studio.media import serve_image
from studio.notifications.watching import mark_watching


@require_POST
@login_required
def job_cancel(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request.user, job_id)
    messages.info(request, cancel_job(job, membership=membership))
    return redirect("job-detail", job_id=job.pk)


@require_POST
@login_required
def job_retry(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request.user, job_id)
    try:
        again = retry_job(job, membership=membership)
    except JobRefused as refused:
        messages.error(request, str(refused))
        return redirect("job-detail", job_id=job.pk)
    audit_generate(request, again)
    return redirect("job-detail", job_id=again.pk)


@require_POST
@login_required
def job_variations(request: AppRequest, job_id: UUID) -> HttpResponse:
    """The same settings with a new seed. From the viewer the designer stays where she is,
    told what happened with a link to the new job; without JavaScript, she goes to it."""
    job, membership = get_job_for_user(request.user, job_id)
    made: Job | None = None
    error = ""
    status = 200
    try:
        made = variations_job(job, membership=membership)
    except JobRefused as refused:
        error, status = str(refused), refused.status
    else:
        audit_generate(request, made)
    if not request.htmx:
        return _after_variations(request, job, made, error)
    context = {"job": job, "made": made, "variations_error": error, "may_generate": True}
    response = render(request, "gallery/image.html#variations", context, status=status)
    if made is not None:
        response["HX-Trigger"] = "jobs-changed"  # a results list on the page takes it in
    return response


def _after_variations(request: AppRequest, job: Job, made: Job | None, error: str) -> HttpResponse:
    """Without JavaScript: to the new job, or back where the designer was, told why not."""
    if made is not None:
        return redirect("job-detail", job_id=made.pk)
    messages.error(request, error)
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("job-detail", job_id=job.pk)


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def job_detail(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request.user, job_id)
    if job.is_open:
        # Its author, watching it end here, is not told again that it has.
        mark_watching(request.user.pk, [job.pk])
    # Its places show only what is not in the trash, as the results list does.
    prefetch_related_objects(
        [job], Prefetch("images", queryset=GeneratedImage.objects.kept()), "inputs"
    )
    inputs = list(job.inputs.all())
    events = list(job.events.all())
    context = {
        "job": job,
        "may_act": membership.user_id == job.author_id or membership.can_manage,
        "may_generate": membership.can_generate,
        "events": events,
        # A poll sends the history only when it has grown: a table being read (scrolled,
        # a request id selected) is left alone otherwise.
        "history_grew": request.GET.get("seen") != str(len(events)),
        "inputs": inputs,
        "position": job.queue_position(),
        "elapsed": _elapsed(job),
        # Made, and on its way: never the hold's reason, which is for the staff.
        "held_note": DOWNLOAD_HELD if job.is_download_held else "",
    }
    template = "generation/job_detail.html"
    if request.htmx:
        template += "#job-status"
    return render(request, template, context)


def _elapsed(job: Job) -> int | None:
    """Whole seconds in the current state at the provider, for the live status."""
    at_provider_since: dict[str, datetime | None] = {
        Job.Status.PENDING: job.provider_submitted_at,
        Job.Status.RUNNING: job.provider_started_at or job.provider_submitted_at,
    }
    since = at_provider_since.get(job.status)
    if since is None:
        return None
    return max(0, int((timezone.now() - since).total_seconds()))


@require_GET
@login_required
def job_input(request: AppRequest, job_id: UUID, position: int) -> HttpResponseBase:
    item = get_job_input_for_user(request.user, job_id, position)
    return serve_image(item.image, item.mime, max_age=3600)


@require_GET
@login_required
def job_image(request: AppRequest, job_id: UUID, index: int, variant: str) -> HttpResponseBase:
    # Owners see trashed images' thumbnails on the trash page; nobody else sees them.
    image, _membership = get_job_image_for_user(request.user, job_id, index)
    if variant not in ("thumb", "original"):
        raise Http404("No such image.")
    job = image.job
    field = image.thumbnail if variant == "thumb" else image.image
    mime = "image/webp" if variant == "thumb" else image.mime
    attachment = bool(request.GET.get("download"))
    response = serve_image(
        field,
        mime,
        max_age=3600,
        filename=f"{job.model}-{str(job.pk)[:8]}-{index + 1}.{mime.split('/')[1]}",
        attachment=attachment,
    )
    if attachment and variant == "original":
        record(request, Entry.Action.DOWNLOAD, f"{job} image {index + 1}", team=job.team)
    return response

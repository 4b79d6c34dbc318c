from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio.accounts.access import current_membership
from studio.accounts.models import Membership, QuotaCounter
from studio.dashscope.catalog import Kind, UnknownModel, get_model, models_for
from studio.generation.forms import TextToImageForm
from studio.generation.models import Job
from studio.generation.services import JobRefused, cancel_job, create_job, retry_job
from studio.http import AppRequest


def get_job_for_user(request: AppRequest, job_id: UUID) -> tuple[Job, Membership]:
    """The job and the caller's membership of its team; 404 for anyone outside the team."""
    job = Job.objects.select_related("team", "author").filter(pk=job_id).first()
    membership = (
        Membership.objects.filter(team_id=job.team_id, user=request.user).first() if job else None
    )
    if job is None or membership is None:
        raise Http404("No such job.")
    return job, membership


def _chosen_model(request: AppRequest) -> str:
    source = request.POST if request.method == "POST" else request.GET
    name = source.get("model") or models_for(Kind.TEXT_TO_IMAGE)[0].name
    try:
        spec = get_model(name)
    except UnknownModel:
        return models_for(Kind.TEXT_TO_IMAGE)[0].name
    return spec.name if Kind.TEXT_TO_IMAGE in spec.kinds else models_for(Kind.TEXT_TO_IMAGE)[0].name


@require_http_methods(["GET", "POST"])
@login_required
def generate(request: AppRequest) -> HttpResponse:
    membership = current_membership(request.user)
    if membership is None or not membership.can_generate:
        raise PermissionDenied("Only designers, reviewers and owners can generate images.")
    remix = _remix_source(request, membership)
    spec = get_model(remix.model if remix else _chosen_model(request))
    switching = request.method == "GET" or "switch_model" in request.POST
    if switching:
        # Choosing another model keeps what was typed; nothing is validated or sent yet.
        kept = {k: v for k, v in request.GET.items() if k in ("prompt", "negative_prompt")}
        if request.method == "POST":
            kept = {k: request.POST.get(k, "") for k in ("prompt", "negative_prompt")}
        if remix:
            kept = _remix_initial(remix)
        form = TextToImageForm(spec, initial=kept)
    else:
        form = TextToImageForm(spec, request.POST)
        if form.is_valid():
            try:
                job = create_job(
                    membership=membership,
                    model=spec.name,
                    prompt=form.cleaned_data["prompt"],
                    negative_prompt=form.cleaned_data.get("negative_prompt", ""),
                    parameters=form.parameters(),
                )
            except JobRefused as refused:
                form.add_problems(refused.problems)
            else:
                return redirect("job-detail", job_id=job.pk)
    context = {
        "form": form,
        "spec": spec,
        "quota": QuotaCounter.images_left(membership, timezone.now()),
    }
    template = "generation/generate.html"
    if request.htmx:
        template += "#generate-form"
    return render(request, template, context)


def _remix_source(request: AppRequest, membership: Membership) -> Job | None:
    job_id = request.GET.get("remix") if request.method == "GET" else None
    if not job_id:
        return None
    job = (
        Job.objects.filter(pk=job_id, team_id=membership.team_id).first()
        if _is_uuid(job_id)
        else None
    )
    if job is None or job.kind != Job.Kind.TEXT_TO_IMAGE:
        raise Http404("No such job to remix.")
    return job


def _remix_initial(job: Job) -> dict[str, object]:
    initial: dict[str, object] = {"prompt": job.prompt, "negative_prompt": job.negative_prompt}
    initial.update({k: v for k, v in job.parameters.items() if k != "color_palette"})
    return initial


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


@require_POST
@login_required
def job_cancel(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    messages.info(request, cancel_job(job, membership=membership))
    return redirect("job-detail", job_id=job.pk)


@require_POST
@login_required
def job_retry(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    try:
        again = retry_job(job, membership=membership)
    except JobRefused as refused:
        messages.error(request, str(refused))
        return redirect("job-detail", job_id=job.pk)
    return redirect("job-detail", job_id=again.pk)


@require_GET
@login_required
def job_detail(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, membership = get_job_for_user(request, job_id)
    context = {
        "job": job,
        "may_act": membership.user_id == job.author_id or membership.can_manage,
        "events": job.events.all(),
        "images": job.images.all(),
        "position": job.queue_position(),
    }
    template = "generation/job_detail.html"
    if request.htmx:
        template += "#job-status"
    return render(request, template, context)


# Only these are ever served, and always as what they are.
INLINE_TYPES = {"image/png", "image/jpeg", "image/webp"}


@require_GET
@login_required
def job_image(request: AppRequest, job_id: UUID, index: int, variant: str) -> FileResponse:
    job, _membership = get_job_for_user(request, job_id)
    image = job.images.filter(index=index).first()
    if image is None or variant not in ("thumb", "original"):
        raise Http404("No such image.")
    field = image.thumbnail if variant == "thumb" else image.image
    mime = "image/webp" if variant == "thumb" else image.mime
    if mime not in INLINE_TYPES:
        raise Http404("No such image.")
    response = FileResponse(field.open("rb"), content_type=mime)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    name = f"{job.model}-{str(job.pk)[:8]}-{index + 1}.{mime.split('/')[1]}"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response

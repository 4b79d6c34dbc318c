"""Reference images for the edit form: staged one by one as they arrive, taken from a
result or again from a remixed job, and shown back to the person who staged them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from studio.accounts.models import Membership
from studio.dashscope.catalog import Kind, ModelSpec, Option
from studio.generation.access import get_job_for_user, get_kept_image, get_staged_image_for_user
from studio.generation.models import Job, StagedImage
from studio.generation.normalise import ImageRefused
from studio.generation.parsers import boxes_text, scale_boxes
from studio.generation.staging import assess_inputs, stage_image
from studio.generation.views.shared import chosen_spec, generating_membership
from studio.http import AppRequest
from studio.media import serve_image

# Far above any model's file limit (oversized images are scaled down, not refused), but a
# bound on what one request can make the server read.
MAX_UPLOAD_BYTES = 40 * 1024 * 1024


@require_POST
@login_required
def stage_input(request: AppRequest) -> HttpResponse:
    """One reference image, checked and normalised on arrival; answered with its card."""
    membership = generating_membership(request)
    spec = chosen_spec(request, Kind.EDIT, membership)
    upload = request.FILES.get("file")
    context: dict[str, Any] = {
        "spec": spec,
        "takes_boxes": spec.supports(Option.BBOX_LIST),
        "max_boxes": spec.max_boxes_per_image,
    }
    if upload is None:
        context["refused"] = {"name": "", "reason": "No file arrived; try adding it again."}
        return render(request, "generation/edit.html#input-card", context, status=400)
    try:
        staged = stage_upload(membership, upload, spec)
    except ImageRefused as refused:
        context["refused"] = {"name": upload.name, "reason": str(refused)}
        return render(request, "generation/edit.html#input-card", context, status=422)
    context["item"] = assess_inputs(membership, [(str(staged.pk), "")], spec)[0]
    return render(request, "generation/edit.html#input-card", context)


@require_POST
@login_required
def use_as_input(request: AppRequest, job_id: UUID, index: int) -> HttpResponse:
    """Start an edit from a result: staged as the first reference image."""
    job, _membership = get_job_for_user(request.user, job_id)
    # Staged for the team the studio acts in, where the edit form will look for it.
    membership = generating_membership(request)
    image = get_kept_image(job, index)
    spec = chosen_spec(request, Kind.EDIT, membership, request.POST.get("model", ""))
    assert spec.images is not None
    with image.image.open("rb") as file:
        data = file.read()
    try:
        staged = stage_image(
            membership,
            data,
            name=f"{job.model_label} result {index + 1}",
            rule=spec.images,
            # Its lineage is kept within a team: an image of another team the person is
            # in starts an edit here as an upload would.
            source=image if image.team_id == membership.team_id else None,
        )
    except ImageRefused as refused:
        messages.error(request, f"This image cannot be edited with {spec.label}: {refused}")
        return redirect("job-detail", job_id=job.pk)
    return redirect(f"{reverse('edit')}?model={spec.name}&input={staged.pk}")


@require_GET
@login_required
def staged_image(request: AppRequest, staged_id: UUID) -> HttpResponseBase:
    staged = get_staged_image_for_user(request.user, staged_id)
    return serve_image(staged.image, staged.mime, max_age=86400)


def stage_upload(membership: Membership, upload: UploadedFile, spec: ModelSpec) -> StagedImage:
    assert spec.images is not None
    if upload.size is not None and upload.size > MAX_UPLOAD_BYTES:
        raise ImageRefused(
            f"This file is {upload.size / 1024 / 1024:.0f} MB; the studio takes files up to "
            f"{MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        )
    return stage_image(membership, upload.read(), name=upload.name or "", rule=spec.images)


def restage_job_inputs(
    request: AppRequest, membership: Membership, job: Job, spec: ModelSpec
) -> list[tuple[str, str]]:
    """A remixed edit's inputs, staged again for the person remixing, boxes and all; those
    the chosen model cannot take are left out, and the person told why."""
    assert spec.images is not None
    items = []
    for item in job.inputs.select_related("source_image"):
        with item.image.open("rb") as file:
            try:
                staged = stage_image(
                    membership,
                    file.read(),
                    name=f"Image {item.position}",
                    rule=spec.images,
                    # A remix's input comes from where the job's came from.
                    source=item.source_image,
                )
            except ImageRefused as refused:
                messages.error(
                    request,
                    f"Image {item.position} of the job cannot be used with {spec.label}: {refused}",
                )
                continue
        boxes = scale_boxes(
            [tuple(b) for b in item.boxes], (item.width, item.height), (staged.width, staged.height)
        )
        items.append((str(staged.pk), boxes_text(boxes)))
    return items

"""The team's brand kits: everyone sees and applies them; owners make, change and remove."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError
from django.db.models import Count
from django.http import Http404, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from studio.accounts.access import current_membership
from studio.accounts.models import Membership
from studio.dashscope.catalog import UnknownModel, get_model
from studio.generation.kit_form import KitForm
from studio.generation.kits import MOST_KIT_IMAGES, kit_snapshot, remove_kit, save_kit, team_kits
from studio.generation.models import BrandKit, KitImage
from studio.generation.normalise import ImageRefused
from studio.generation.views.inputs import MAX_UPLOAD_BYTES
from studio.http import AppRequest
from studio.media import serve_image


def _member(request: AppRequest) -> Membership:
    membership = current_membership(request.user)
    if membership is None:
        raise Http404("No team.")
    return membership


def _owner(request: AppRequest) -> Membership:
    membership = _member(request)
    if not membership.can_manage:
        raise PermissionDenied("Only the team's owners keep its brand kits.")
    return membership


def _model_label(name: str) -> str:
    try:
        return get_model(name).label if name else ""
    except UnknownModel:
        return name


@require_GET
@login_required
def kit_list(request: AppRequest) -> HttpResponse:
    membership = _member(request)
    kits = list(
        team_kits(membership.team_id).prefetch_related("images").annotate(used=Count("jobs"))
    )
    for kit in kits:
        kit.model_label = _model_label(kit.model)  # type: ignore[attr-defined]
    context = {
        "kits": kits,
        "can_manage": membership.can_manage,
        "can_generate": membership.can_generate,
    }
    return render(request, "generation/kits.html", context)


@require_http_methods(["GET", "POST"])
@login_required
def kit_new(request: AppRequest) -> HttpResponse:
    membership = _owner(request)
    kit = BrandKit(team=membership.team, created_by=request.user)
    return _kit_form(request, membership, kit)


@require_http_methods(["GET", "POST"])
@login_required
def kit_edit(request: AppRequest, kit_id: int) -> HttpResponse:
    membership = _owner(request)
    kit = get_object_or_404(BrandKit, pk=kit_id, team_id=membership.team_id)
    return _kit_form(request, membership, kit)


def _kit_form(request: AppRequest, membership: Membership, kit: BrandKit) -> HttpResponse:
    before = kit_snapshot(kit) if kit.pk else None
    form = KitForm(request.POST or None, instance=kit, team=membership.team)
    image_problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        uploads = request.FILES.getlist("images")
        removed = request.POST.getlist("remove_image")
        image_problems = _image_problems(kit, uploads, removed)
        if not image_problems:
            try:
                save_kit(request, form.instance, uploads, removed, before=before)
            except ImageRefused as refused:
                image_problems.append(str(refused))
            except IntegrityError:
                # A colleague saved a kit of this name a moment ago.
                if before is None:
                    form.instance.pk = None
                form.add_error("name", f"Your team already has a kit named “{kit.name}”.")
            else:
                messages.success(request, f"Brand kit “{form.instance.name}” saved.")
                return redirect("kits")
    context = {
        "form": form,
        "kit": kit,
        "images": list(kit.images.all()) if kit.pk else [],
        "image_problems": image_problems,
        "most_images": MOST_KIT_IMAGES,
    }
    status = 422 if request.method == "POST" and (form.errors or image_problems) else 200
    return render(request, "generation/kit_form.html", context, status=status)


def _image_problems(kit: BrandKit, uploads: list[UploadedFile], removed: list[str]) -> list[str]:
    """Why the images sent cannot be kept, before any is read."""
    problems = [
        f"{upload.name}: this file is {upload.size / 1024 / 1024:.0f} MB; the studio takes "
        f"files up to {MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        for upload in uploads
        if upload.size and upload.size > MAX_UPLOAD_BYTES
    ]
    gone = [pk for pk in removed if pk.isdigit()]
    kept = kit.images.exclude(pk__in=gone).count() if kit.pk else 0
    if kept + len(uploads) > MOST_KIT_IMAGES:
        problems.append(
            f"A kit keeps at most {MOST_KIT_IMAGES} reference images, as many as a model takes "
            f"in one edit; it has {kept} and {len(uploads)} were added."
        )
    return problems


@require_POST
@login_required
def kit_delete(request: AppRequest, kit_id: int) -> HttpResponse:
    membership = _owner(request)
    kit = get_object_or_404(BrandKit, pk=kit_id, team_id=membership.team_id)
    remove_kit(request, kit)
    messages.success(
        request, f"Brand kit “{kit.name}” removed; jobs that used it keep their settings."
    )
    return redirect("kits")


@require_GET
@login_required
def kit_image(request: AppRequest, kit_id: int, reference_id: int) -> HttpResponseBase:
    membership = _member(request)
    image = get_object_or_404(
        KitImage, pk=reference_id, kit_id=kit_id, kit__team_id=membership.team_id
    )
    return serve_image(image.image, image.mime, max_age=3600)

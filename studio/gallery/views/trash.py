"""The trash: an image moved there, the owners' list of what is in it, and restoring."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from studio.accounts.access import get_membership_for_user
from studio.gallery.access import get_image_for_user, require
from studio.gallery.services import restore_image, trash_images
from studio.generation.models import GeneratedImage
from studio.http import AppRequest

TRASH_PAGE_MOST = 200


@require_POST
@login_required
def image_delete(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id)
    require(membership.can_manage, "delete images")
    trash_images([image], request)
    messages.success(
        request, f"Moved to the trash; owners can restore it for {GeneratedImage.TRASH_DAYS} days."
    )
    return redirect("gallery")


@require_GET
@login_required
def trash(request: AppRequest) -> HttpResponse:
    membership = get_membership_for_user(request.user)
    require(membership.can_manage, "see the trash")
    images = list(
        GeneratedImage.objects.trashed()
        .filter(team_id=membership.team_id)
        .select_related("job", "deleted_by")
        .order_by("-deleted_at")[:TRASH_PAGE_MOST]
    )
    for image in images:
        if image.deleted_at is None:  # trashed() reads only images with a deletion time
            raise ValueError(f"Image {image.pk} is in the trash with no deletion time.")
        image.purge_on = image.deleted_at + timedelta(days=GeneratedImage.TRASH_DAYS)
    context = {"images": images, "trash_days": GeneratedImage.TRASH_DAYS}
    return render(request, "gallery/trash.html", context)


@require_POST
@login_required
def image_restore(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id, trashed=True)
    require(membership.can_manage, "restore images")
    if restore_image(image, request):
        messages.success(request, "Restored to the gallery.")
    return redirect("gallery-trash")

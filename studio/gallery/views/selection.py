"""What the selection bar does to the images ticked in the grid: download them as a zip,
review them, put them on a board or move them to the trash. (Compare is `views.compare`.)"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from studio.accounts.access import get_membership_for_user
from studio.accounts.models import Membership
from studio.audit.models import Entry, record
from studio.gallery.access import require, team_board, team_images
from studio.gallery.export import zip_name, zip_of
from studio.gallery.services import add_to_board, set_review_state, star_images, trash_images
from studio.gallery.views.common import safe_next
from studio.generation.models import GeneratedImage
from studio.http import AppRequest


@require_POST
@login_required
def bulk(request: AppRequest) -> HttpResponseBase:
    membership = get_membership_for_user(request.user)
    images = team_images(membership, request.POST.getlist("image"), request.POST.getlist("set"))
    action = request.POST.get("action", "")
    if not images:
        messages.error(request, "Select some images first.")
        return redirect("gallery")
    if action == "zip":
        return _zip(request, images, membership)
    if action == "state":
        require(membership.can_review, "set review states")
        _review(request, images)
    elif action == "star":
        require(membership.can_generate, "star images")
        starred = star_images(images, request.user)
        already = len(images) - starred
        said = f"{len(images)} image{'s' * (len(images) != 1)} starred"
        if already:
            said += f" ({already} already {'was' if already == 1 else 'were'})"
        messages.success(request, said + ".")
    elif action == "board":
        require(membership.can_generate, "change boards")
        _put_on_board(request, images, membership)
    elif action == "delete":
        require(membership.can_manage, "delete images")
        _delete(request, images)
    return redirect(safe_next(request) or reverse("gallery"))


def _zip(request: AppRequest, images: list[GeneratedImage], membership: Membership) -> FileResponse:
    record(request, Entry.Action.DOWNLOAD, f"zip of {len(images)} images", team=membership.team)
    archive = zip_of(images)
    return FileResponse(
        archive,
        as_attachment=True,
        filename=zip_name(membership.team),
        content_type="application/zip",
    )


def _review(request: AppRequest, images: list[GeneratedImage]) -> None:
    state = request.POST.get("state", "")
    if state not in GeneratedImage.Review.values:
        return
    set_review_state([i for i in images if i.review_state != state], state, request)
    label = GeneratedImage.Review(state).label.lower()
    messages.success(request, f"{len(images)} image(s) now {label}.")


def _put_on_board(
    request: AppRequest, images: list[GeneratedImage], membership: Membership
) -> None:
    board = team_board(membership, request.POST.get("board"))
    if board is None:
        return
    add_to_board(board, images, request.user)
    messages.success(request, f"{len(images)} image(s) on the board “{board.name}”.")


def _delete(request: AppRequest, images: list[GeneratedImage]) -> None:
    trash_images(images, request)
    messages.success(
        request,
        f"{len(images)} image(s) moved to the trash; owners can restore them for "
        f"{GeneratedImage.TRASH_DAYS} days.",
    )

"""An image's panel (its own page, and the viewer over the grid) and what the panel posts:
review, star, comment and boards."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from studio.accounts.models import Membership
from studio.gallery.access import get_image_for_user, require, team_board
from studio.gallery.feed import team_feed
from studio.gallery.forms import GalleryFilter, read_comment
from studio.gallery.models import Board, Comment, Star
from studio.gallery.services import (
    add_comment,
    add_to_board,
    set_review_state,
    take_off_board,
    toggle_star,
)
from studio.gallery.views.common import safe_next
from studio.gallery.views.review_requests import review_request_context
from studio.generation.lineage import lineage_of
from studio.generation.models import GeneratedImage
from studio.generation.models.display import PiecePart
from studio.http import PARTIAL_HEADERS, AppRequest


@require_GET
@login_required
@vary_on_headers(*PARTIAL_HEADERS)
def image_detail(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id)
    filters = GalleryFilter(request.GET, membership)
    newer, older = filters.neighbours(image)
    job = image.job
    context = {
        "image": image,
        "job": job,
        "inputs": list(job.inputs.all()),
        "events": job.events.all(),
        "membership": membership,
        "newer": newer,
        "older": older,
        "set_members": _set_members(image),
        "piece": _piece(image),
        "lineage": lineage_of(image),
        "query": filters.query_string(),
        "starred": Star.objects.filter(image=image, user=request.user).exists(),
        "states": GeneratedImage.Review.choices,
        "feed": [] if request.htmx else team_feed(membership.team_id),
        "comments": _comments(image),
        # The seed has its own line beside the cost; the other settings as the job lists them.
        "settings": [(label, text) for label, text in job.settings_shown() if label != "Seed"],
        "seed": job.parameters.get("seed"),
        "cost": job.image_cost(),
        # Where a form sent without JavaScript comes back to: this image's page.
        "next": request.get_full_path(),
        **_board_context(image, membership),
        **review_request_context(image, membership),
    }
    template = "gallery/image.html"
    if request.htmx:
        template += "#image-panel"
    return render(request, template, context)


@require_POST
@login_required
def image_review(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id)
    require(membership.can_review, "set review states")
    state = request.POST.get("state", "")
    if state in GeneratedImage.Review.values and state != image.review_state:
        set_review_state([image], state, request)
    # Reviewed on the compare page, the designer goes back there, not to the image's page.
    back = safe_next(request)
    if not request.htmx:
        return redirect(back or reverse("gallery-image", args=[image.pk]))
    context = {
        "image": image,
        "membership": membership,
        "states": GeneratedImage.Review.choices,
        "next": back,
        "oob": _over_the_grid(request),
    }
    response = render(request, "gallery/image.html#review", context)
    response["HX-Trigger"] = "activity-changed"
    return response


def _over_the_grid(request: AppRequest) -> bool:
    """Whether the review was made in the viewer over the grid, whose card's badge then
    follows. Elsewhere (the image's own page, compare) there is no card, and a part sent
    for an element that is not on the page is an error in the browser."""
    return urlsplit(request.htmx.current_url or "").path == reverse("gallery")


@require_POST
@login_required
def image_star(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id)
    require(membership.can_generate, "star images")
    starred = toggle_star(image, request.user)
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    response = render(
        request,
        "gallery/image.html#star",
        {"image": image, "membership": membership, "starred": starred},
    )
    response["HX-Trigger"] = "activity-changed"
    return response


@require_POST
@login_required
def image_comment(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id)
    require(membership.can_generate, "comment")
    body = request.POST.get("body", "").strip()
    box, error = read_comment(body, request.POST.get("box", ""), image)
    if not error:
        add_comment(image, request.user, body, box)
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    context = {
        "image": image,
        "membership": membership,
        "comments": _comments(image),
        "comment_error": error,
        "comment_body": body if error else "",
        "oob_pins": True,  # the pins drawn on the image follow the comments
    }
    response = render(request, "gallery/image.html#comments", context)
    if not error:
        response["HX-Trigger"] = "activity-changed"
    return response


def _set_members(image: GeneratedImage) -> list[GeneratedImage]:
    """The images of the set this image belongs to, in order (none if it is no set's):
    the viewer steps through them."""
    if not image.job.is_set:
        return []
    members = list(GeneratedImage.objects.kept().filter(job_id=image.job_id).order_by("index"))
    return members if len(members) > 1 else []


def _piece(image: GeneratedImage) -> list[PiecePart]:
    """The piece of text and images this image is a picture of, as it reads (none if it
    is no piece's): the viewer shows its text around the picture."""
    job = image.job
    if not job.is_streamed:
        return []
    prefetch_related_objects([job], Prefetch("images", queryset=GeneratedImage.objects.kept()))
    return job.piece_parts()


def _comments(image: GeneratedImage) -> list[Comment]:
    comments = list(image.comments.select_related("author", "image").prefetch_related("mentions"))
    for number, comment in enumerate((c for c in comments if c.box), start=1):
        comment.pin = number
        comment.pin_box = comment.box_percent()
    return comments


@require_POST
@login_required
def image_board(request: AppRequest, image_id: int) -> HttpResponse:
    """Put an image on a board, or take it off."""
    image, membership = get_image_for_user(request.user, image_id)
    require(membership.can_generate, "change boards")
    board = team_board(membership, request.POST.get("board"))
    if board is not None:
        # Not "remove": a control of that name would stand for the form's own remove(),
        # which htmx calls when it swaps the form out.
        if request.POST.get("take_off"):
            take_off_board(board, image)
        else:
            add_to_board(board, [image], request.user)
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    return render(
        request,
        "gallery/image.html#boards",
        {"image": image, "membership": membership, **_board_context(image, membership)},
    )


def _board_context(image: GeneratedImage, membership: Membership) -> dict[str, Any]:
    boards = list(Board.objects.filter(team_id=membership.team_id))
    on = set(image.boards.values_list("pk", flat=True))
    return {
        "boards_on": [b for b in boards if b.pk in on],
        "boards_off": [b for b in boards if b.pk not in on],
    }

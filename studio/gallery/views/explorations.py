"""An exploration's winner, sent to review: here, beside the review requests it makes."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from studio.audit.models import Entry, record
from studio.gallery.services import ask_reviewers
from studio.generation.models import GeneratedImage
from studio.generation.views.explore import get_exploration, grid_context, image_of, member
from studio.generation.votes import send_winner_to_review
from studio.http import AppRequest


@require_POST
@login_required
def exploration_winner(request: AppRequest, exploration_id: int, image_id: int) -> HttpResponse:
    """The winner marked, put (back) in review, and the team's other reviewers asked to
    review it."""
    membership = member(request)
    if not membership.can_review:
        raise PermissionDenied("Only reviewers and owners send an exploration's winner to review.")
    exploration = get_exploration(membership, exploration_id)
    image = image_of(exploration, image_id)
    before = send_winner_to_review(exploration, image, request.user)
    asked = ask_reviewers(image, membership)
    record(
        request,
        Entry.Action.REVIEW,
        image,
        team=membership.team,
        changes={
            "review_state": [before, GeneratedImage.Review.IN_REVIEW],
            "winner": [None, True],
            "asked": [None, asked or []],
        },
    )
    exploration.refresh_from_db()
    if request.htmx:
        context = grid_context(exploration, membership) | {
            "asked": asked,
            "asked_nobody": asked is None,
        }
        return render(request, "generation/exploration.html#grid", context)
    return redirect("exploration", exploration_id=exploration.pk)

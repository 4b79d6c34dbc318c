"""Asking a teammate for a review, from an image's panel."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from studio.accounts.models import Membership
from studio.gallery.access import as_id, get_image_for_user, require
from studio.gallery.models import ReviewRequest
from studio.gallery.services import ask_for_review
from studio.generation.models import GeneratedImage
from studio.http import AppRequest


def review_request_context(image: GeneratedImage, membership: Membership) -> dict[str, Any]:
    """Who may be asked (the team's owners and reviewers but the asker), and who has been
    asked since the image's last review."""
    reviewers = (
        Membership.objects.filter(
            team_id=membership.team_id,
            role__in=[Membership.Role.OWNER, Membership.Role.REVIEWER],
        )
        .exclude(user_id=membership.user_id)
        .select_related("user")
        .order_by("user__username")
    )
    return {
        "reviewers": list(reviewers),
        "review_requests": list(
            ReviewRequest.objects.open_for(image).select_related("reviewer", "requested_by")
        ),
    }


@require_POST
@login_required
def image_review_request(request: AppRequest, image_id: int) -> HttpResponse:
    image, membership = get_image_for_user(request.user, image_id)
    require(membership.can_generate, "ask for reviews")
    context = review_request_context(image, membership)
    chosen = as_id(request.POST.get("reviewer"))
    reviewer = next((m.user for m in context["reviewers"] if m.user_id == chosen), None)
    if reviewer is None:
        note, asked = "Choose an owner or a reviewer of the team.", False
    else:
        asked = ask_for_review(image, reviewer, request.user)
        name = reviewer.get_username()
        note = f"{name} is asked to review it." if asked else f"{name} was asked already."
    if not request.htmx:
        return redirect("gallery-image", image_id=image.pk)
    if asked:
        context = review_request_context(image, membership)
    context |= {"image": image, "membership": membership, "review_request_note": note}
    return render(request, "gallery/image.html#review-request", context)

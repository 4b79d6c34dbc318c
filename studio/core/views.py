from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes import views as contenttype_views
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from studio.accounts.access import current_membership
from studio.accounts.models import Membership, ModelPrice, QuotaCounter
from studio.dashscope.catalog import Kind, models_for
from studio.generation.models import GeneratedImage, Job, WorkerHeartbeat
from studio.http import AppRequest

logger = logging.getLogger(__name__)


@require_GET
@login_required
def home(request: AppRequest) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=request.user).select_related("team").order_by("team__name")
    )
    recent_jobs = Job.objects.filter(team__memberships__user=request.user).select_related("author")[
        :10
    ]
    context = {
        "memberships": memberships,
        "recent_jobs": recent_jobs,
        "text_to_image_models": models_for(Kind.TEXT_TO_IMAGE),
        "edit_models": models_for(Kind.EDIT),
    }
    membership = current_membership(request.user)
    if membership is not None:
        context |= at_a_glance(membership)
    return render(request, "core/home.html", context)


GLANCE_IMAGES = 8


def at_a_glance(membership: Membership) -> dict[str, Any]:
    """What is new for this person in their team: their latest images and the others',
    what waits for their review, and what is left of their quota and the team's budget."""
    now = timezone.now()
    images = GeneratedImage.objects.kept().filter(team_id=membership.team_id)
    glance: dict[str, Any] = {
        "membership": membership,
        "my_images": list(
            images.filter(job__author_id=membership.user_id)
            .select_related("job")
            .order_by("-created_at")[:GLANCE_IMAGES]
        ),
        "team_images": list(
            images.exclude(job__author_id=membership.user_id)
            .select_related("job", "job__author")
            .order_by("-created_at")[:GLANCE_IMAGES]
        ),
        "quota": QuotaCounter.images_left(membership, now),
        "budget": QuotaCounter.budget_left(membership.team, now),
        "currency": ModelPrice.currency_in_use(),
    }
    if membership.can_review:
        waiting = images.filter(review_state=GeneratedImage.Review.IN_REVIEW)
        glance["to_review"] = list(waiting.select_related("job").order_by("created_at")[:4])
        glance["to_review_count"] = waiting.count()
    return glance


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico on pages that link no icon, such as the admin's. Not a
    permanent redirect: the icon's address changes when its contents do."""
    return HttpResponseRedirect(static("favicon.svg"))


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        connection.ensure_connection()
    except DatabaseError:
        logger.exception("Health check could not reach the database")
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def healthz_worker(request: HttpRequest) -> JsonResponse:
    """200 while at least one worker cluster beats; for probes and monitors, no login."""
    try:
        workers = WorkerHeartbeat.fresh()
    except DatabaseError:
        logger.exception("Worker health check could not read the heartbeats")
        return JsonResponse({"status": "database unavailable"}, status=503)
    if not workers:
        return JsonResponse({"status": "no worker", "workers": []}, status=503)
    return JsonResponse({"status": "ok", "workers": workers})


def view_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """The admin's "view on site" link, answering 404 for an id that cannot be a key of
    that model (a job's UUID, say) where Django's own view lets the error through as a 500."""
    try:
        return contenttype_views.shortcut(request, content_type_id, object_id)
    except ValidationError:
        raise Http404("No such object.") from None

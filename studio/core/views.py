from __future__ import annotations

import logging

from django.contrib.auth.decorators import login_required
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from studio.accounts.models import Membership
from studio.dashscope.catalog import Kind, models_for
from studio.generation.models import Job
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
    return render(request, "core/home.html", context)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        connection.ensure_connection()
    except DatabaseError:
        logger.exception("Health check could not reach the database")
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})

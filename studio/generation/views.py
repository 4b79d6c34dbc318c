from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from studio.accounts.models import Membership
from studio.generation.models import Job
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


@require_GET
@login_required
def job_detail(request: AppRequest, job_id: UUID) -> HttpResponse:
    job, _membership = get_job_for_user(request, job_id)
    context = {
        "job": job,
        "events": job.events.all(),
        "images": job.images.all(),
        "position": job.queue_position(),
    }
    return render(request, "generation/job_detail.html", context)

"""Who may see which job, image and staged upload: the one place generation views ask.

Each helper returns what was asked for or raises Http404, never PermissionDenied: someone
outside a job's team is never told that the job exists. What a member's role allows is for
the view (and the service it calls) to decide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from django.http import Http404

from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage, Job, JobInput, StagedImage
from studio.generation.staging import is_uuid

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def get_job_for_user(user: User, job_id: UUID) -> tuple[Job, Membership]:
    """The job and the user's membership of its team; 404 for anyone outside the team."""
    job = Job.objects.select_related("team", "author").filter(pk=job_id).first()
    membership = Membership.objects.filter(team_id=job.team_id, user=user).first() if job else None
    if job is None or membership is None:
        raise Http404("No such job.")
    return job, membership


def get_job_image_for_user(
    user: User, job_id: UUID, index: int
) -> tuple[GeneratedImage, Membership]:
    """A result of the job and the user's membership; an image in the trash only for those
    who may restore it."""
    job, membership = get_job_for_user(user, job_id)
    image = job.images.filter(index=index).first()
    if image is None or not image.is_visible_to(membership):
        raise Http404("No such image.")
    return image, membership


def get_kept_image(job: Job, index: int) -> GeneratedImage:
    """A result of a job the caller may see, unless it is in the trash."""
    image = job.images.kept().filter(index=index).first()
    if image is None:
        raise Http404("No such image.")
    return image


def get_job_input_for_user(user: User, job_id: UUID, position: int) -> JobInput:
    """A reference image the job was sent with; 404 for anyone outside its team."""
    job, _membership = get_job_for_user(user, job_id)
    item = job.inputs.filter(position=position).first()
    if item is None:
        raise Http404("No such image.")
    return item


def get_staged_image_for_user(user: User, staged_id: UUID) -> StagedImage:
    """An image the user staged for an edit: nobody else's, not even a teammate's."""
    staged = StagedImage.objects.filter(pk=staged_id, owner=user).first()
    if staged is None:
        raise Http404("No such image.")
    return staged


def get_job_to_remix(membership: Membership, job_id: str, kind: str) -> Job:
    """A job of the team of this kind, to start a form from; 404 for any other."""
    job = (
        Job.objects.filter(pk=job_id, team_id=membership.team_id).first()
        if is_uuid(job_id)
        else None
    )
    if job is None or job.kind != kind:
        raise Http404("No such job to remix.")
    return job

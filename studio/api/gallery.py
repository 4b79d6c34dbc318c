"""The gallery through the API: the team's images under the pages' filters, and review."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest

from studio.api import schemas
from studio.api.auth import caller
from studio.api.endpoints import api, image_fields, may_write
from studio.gallery.forms import Cursor, GalleryFilter
from studio.gallery.services import set_review_state
from studio.generation.models import GeneratedImage


@api.get(
    "/gallery",
    response=schemas.GalleryPage,
    summary="The team's images, newest first, with the gallery's filters",
    description=(
        "Filters as the gallery page takes them: q (words of the prompt), author (a user "
        "id), model, kind, state, starred, board, kit, since and until (dates). A set of "
        "images is one entry. Pass `next` as `after` for the following page."
    ),
)
def gallery(request: HttpRequest, after: str = "") -> dict[str, Any]:
    membership = caller(request).membership
    filters = GalleryFilter(request.GET, membership)
    images, cursor = filters.page(Cursor.parse(after) if after else None)
    return {
        "images": [
            image_fields(request, image)
            | {
                "job_id": str(image.job_id),
                "model": image.job.model,
                "model_label": image.job.model_label,
                "prompt": image.job.prompt,
                "author": image.job.author.get_username(),
                "created_at": image.created_at,
            }
            for image in images
        ],
        "next": str(cursor) if cursor else None,
    }


@api.post(
    "/images/{image_id}/review",
    response=schemas.Image,
    summary="Set an image's review state (reviewers and owners)",
)
def review(request: HttpRequest, image_id: int, body: schemas.Review) -> dict[str, Any]:
    found = caller(request)
    may_write(found)
    if not found.membership.can_review:
        raise PermissionDenied("Only reviewers and owners set review states.")
    image = (
        GeneratedImage.objects.kept()
        .filter(pk=image_id, team_id=found.membership.team_id)
        .select_related("job", "team")
        .first()
    )
    if image is None:
        raise Http404("Your team has no image of this id.")
    if body.state not in GeneratedImage.Review.values:
        states = ", ".join(GeneratedImage.Review.values)
        raise InvalidState(f"A review state is one of: {states}.")
    if body.state != image.review_state:
        set_review_state([image], body.state, request)  # type: ignore[arg-type]
    return image_fields(request, image)


class InvalidState(ValueError):
    """A review state the studio does not have."""


@api.exception_handler(InvalidState)
def _invalid_state(request: HttpRequest, exc: Exception) -> Any:
    return api.create_response(
        request, {"code": "invalid", "message": str(exc), "field": "state"}, status=422
    )

"""Who may do what with a team's images: the one place every gallery view asks.

Anyone outside the team gets a 404, so a team's images are never confirmed to exist;
a member whose role does not allow an action gets a 403.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404

from studio.accounts.access import current_membership
from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage
from studio.http import AppRequest


def gallery_membership(request: AppRequest) -> Membership:
    membership = current_membership(request.user)
    if membership is None:
        raise Http404("No team.")
    return membership


def image_for(
    request: AppRequest, image_id: int, *, trashed: bool = False
) -> tuple[GeneratedImage, Membership]:
    """The image and the caller's membership of its team; 404 for anyone else.

    An image in the trash exists only for the owners who may restore it (`trashed`).
    """
    image = (
        GeneratedImage.objects.select_related("job", "job__author", "team", "reviewed_by")
        .filter(pk=image_id)
        .first()
    )
    membership = (
        Membership.objects.filter(team_id=image.team_id, user=request.user).first()
        if image
        else None
    )
    if image is None or membership is None:
        raise Http404("No such image.")
    if image.deleted_at is not None and not (trashed and membership.can_manage):
        raise Http404("No such image.")
    return image, membership


def team_images(membership: Membership, ids: list[str]) -> list[GeneratedImage]:
    """Those of `ids` that are the team's images (not in the trash), in the order given."""
    wanted = [int(i) for i in ids if str(i).isdigit()][:200]
    found = {
        image.pk: image
        for image in GeneratedImage.objects.select_related("job", "job__author", "team").filter(
            pk__in=wanted, team_id=membership.team_id, deleted_at__isnull=True
        )
    }
    return [found[i] for i in dict.fromkeys(wanted) if i in found]


def require(allowed: bool, action: str) -> None:
    if not allowed:
        raise PermissionDenied(f"Your role in this team does not allow you to {action}.")

"""Who may do what with a team's images: the one place every gallery view asks.

`get_image_for_user` follows the studio's convention (studio.accounts.access): the image
with the caller's membership of its team, or Http404, so a team's images are never
confirmed to exist to anyone outside it; a member whose role does not allow an action gets
a 403 from `require()`, asked by the view after the fetch.

Ids sent in a form's fields (a selection, a board picked in a menu) are not looked up this
way: `team_images()` and `team_board()` quietly leave out what is not the team's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.http import Http404

from studio.accounts.models import Membership
from studio.gallery.models import Board
from studio.generation.models import GeneratedImage

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def get_image_for_user(
    user: User, image_id: int, *, trashed: bool = False
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
        Membership.objects.filter(team_id=image.team_id, user=user).first() if image else None
    )
    if image is None or membership is None:
        raise Http404("No such image.")
    if image.deleted_at is not None and not (trashed and membership.can_manage):
        raise Http404("No such image.")
    return image, membership


def team_images(
    membership: Membership, ids: list[str], sets: Sequence[str] = ()
) -> list[GeneratedImage]:
    """Those of `ids` that are the team's images (not in the trash), in the order given,
    and after them the images of each of the team's sets named in `sets` (job ids), in
    the set's order: a set ticked as one card is all its images."""
    wanted = [pk for pk in map(as_id, ids) if pk is not None]
    wanted += set_image_ids(membership, sets)
    wanted = wanted[:200]
    found = {
        image.pk: image
        for image in GeneratedImage.objects.kept()
        .select_related("job", "job__author", "team")
        .filter(pk__in=wanted, team_id=membership.team_id)
    }
    return [found[i] for i in dict.fromkeys(wanted) if i in found]


def set_image_ids(membership: Membership, job_ids: Sequence[str]) -> list[int]:
    """The ids of the kept images of the team's sets among `job_ids`, set by set."""
    jobs = [job_id for job_id in map(_as_uuid, job_ids) if job_id is not None][:50]
    if not jobs:
        return []
    rows = (
        GeneratedImage.objects.kept()
        .filter(team_id=membership.team_id, job_id__in=jobs)
        .order_by("job_id", "index")
        .values_list("job_id", "pk")
    )
    by_job: dict[UUID, list[int]] = {}
    for job_id, pk in rows:
        by_job.setdefault(job_id, []).append(pk)
    return [pk for job_id in dict.fromkeys(jobs) for pk in by_job.get(job_id, [])]


def _as_uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None


def team_board(membership: Membership, board_id: str | None) -> Board | None:
    """The team's board of that id, or None (for another team's, or for what is no id)."""
    pk = as_id(board_id)
    return Board.objects.filter(team_id=membership.team_id, pk=pk).first() if pk else None


MAX_ID = 2**63 - 1  # the largest a database's bigint (and SQLite's integer) holds


def as_id(value: object) -> int | None:
    """A row id sent by a form, or None for anything else ("²" is a digit, not an id, and
    an id too large for the database is no row's)."""
    text = str(value)
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        return None
    number = int(text)
    return number if number <= MAX_ID else None


def require(allowed: bool, action: str) -> None:
    """403 unless the caller's role allows `action` (said in the refusal)."""
    if not allowed:
        raise PermissionDenied(f"Your role in this team does not allow you to {action}.")

"""The gallery's workflows: review, the trash and restoring from it, stars, comments and
boards. Each changes its rows and writes the audit entries and activity lines that go with
them, in one transaction where more than one row is written; the views only parse the
request, call one of these and draw the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from studio.accounts.models import Membership
from studio.audit.models import Activity, Entry, entry, record
from studio.dashscope.types import Box
from studio.gallery.models import Board, BoardImage, Comment, ReviewRequest, Star
from studio.gallery.templatetags.gallery_text import MENTION
from studio.generation.models import GeneratedImage
from studio.notifications import services as notifications

if TYPE_CHECKING:
    from studio.http import AppRequest


def set_review_state(images: list[GeneratedImage], state: str, request: AppRequest) -> None:
    """Review images: one statement each for the rows, the audit log and the activity."""
    if not images:
        return
    user, now, label = request.user, timezone.now(), GeneratedImage.Review(state).label
    with transaction.atomic():
        before = _states_to_change(images, state)
        changed = [image for image in images if image.pk in before]
        if not changed:
            return
        Entry.objects.bulk_create(
            entry(
                request,
                Entry.Action.REVIEW,
                image,
                team=image.team,
                changes={"review_state": [before[image.pk], state]},
            )
            for image in changed
        )
        GeneratedImage.objects.filter(pk__in=before).update(
            review_state=state, reviewed_by=user, reviewed_at=now
        )
        Activity.about(changed, user, Activity.Verb.REVIEWED, label)
        _tell_authors(changed, state, user)
    for image in changed:
        image.review_state = state


def _states_to_change(images: list[GeneratedImage], state: str) -> dict[int, str]:
    """The states of those of `images` that a review to `state` changes, by id.

    The states as they are now, not as the page was read: a colleague may have reviewed or
    trashed an image since. Locked, so two reviews one after the other each record what
    they really changed.
    """
    return dict(
        GeneratedImage.objects.select_for_update()
        .kept()
        .filter(pk__in=[image.pk for image in images])
        .exclude(review_state=state)
        .values_list("pk", "review_state")
    )


def trash_images(images: list[GeneratedImage], request: AppRequest) -> None:
    """Move images to the trash; those already there (a double click) are left alone."""
    user = request.user
    with transaction.atomic():
        fresh = set(
            GeneratedImage.objects.select_for_update()
            .kept()
            .filter(pk__in=[image.pk for image in images])
            .values_list("pk", flat=True)
        )
        trashed = [image for image in images if image.pk in fresh]
        if not trashed:
            return
        GeneratedImage.objects.filter(pk__in=fresh).update(
            deleted_at=timezone.now(), deleted_by=user
        )
        Entry.objects.bulk_create(
            entry(request, Entry.Action.DELETE, image, team=image.team) for image in trashed
        )
        Activity.about(trashed, user, Activity.Verb.DELETED)


def restore_image(image: GeneratedImage, request: AppRequest) -> bool:
    """Take an image out of the trash; False if it was no longer there (restored twice)."""
    restored = (
        GeneratedImage.objects.trashed()
        .filter(pk=image.pk)
        .update(deleted_at=None, deleted_by=None)
    )
    if not restored:
        return False
    record(request, Entry.Action.RESTORE, image, team=image.team)
    Activity.about([image], request.user, Activity.Verb.RESTORED)
    return True


def toggle_star(image: GeneratedImage, user: User) -> bool:
    """Star the image for `user`, or take her star off; whether it is starred now."""
    deleted, _ = Star.objects.filter(image=image, user=user).delete()
    if deleted:
        return False
    try:
        with transaction.atomic():
            Star.objects.create(image=image, user=user)
    except IntegrityError:
        pass  # starred twice at once: once is what was meant
    Activity.about([image], user, Activity.Verb.STARRED)
    return True


def star_images(images: list[GeneratedImage], user: User) -> int:
    """Star each of the images `user` has not starred yet (a set at once); how many were."""
    already = set(
        Star.objects.filter(image__in=images, user=user).values_list("image_id", flat=True)
    )
    new = [image for image in images if image.pk not in already]
    Star.objects.bulk_create([Star(image=image, user=user) for image in new], ignore_conflicts=True)
    if new:
        Activity.about(new, user, Activity.Verb.STARRED)
    return len(new)


def add_comment(image: GeneratedImage, user: User, body: str, box: Box | None) -> Comment:
    """A comment on the image (pinned to `box` if one is given), telling those it mentions."""
    with transaction.atomic():
        comment = Comment.objects.create(
            image=image, author=user, body=body, box=list(box) if box else None
        )
        names = set(MENTION.findall(body))
        if names:
            mentioned = list(
                User.objects.filter(username__in=names, memberships__team_id=image.team_id)
            )
            comment.mentions.set(mentioned)
            notifications.mentioned(
                [person.pk for person in mentioned],
                actor_id=user.pk,
                actor_name=user.get_username(),
                team_id=image.team_id,
                subject=image.job.prompt,
                comment=body,
                link=image_link(image),
            )
        Activity.about([image], user, Activity.Verb.COMMENTED, Truncator(body).chars(120))
    return comment


def image_link(image: GeneratedImage) -> str:
    return reverse("gallery-image", args=[image.pk])


def ask_for_review(image: GeneratedImage, reviewer: User, user: User) -> bool:
    """Ask `reviewer` to review the image and tell her; False if she was asked already
    since its last review (asked again, she is not told twice)."""
    with transaction.atomic():
        if ReviewRequest.objects.open_for(image).filter(reviewer=reviewer).exists():
            return False
        ReviewRequest.objects.create(image=image, reviewer=reviewer, requested_by=user)
        notifications.review_requested(
            reviewer.pk,
            actor_id=user.pk,
            actor_name=user.get_username(),
            team_id=image.team_id,
            subject=image.job.prompt,
            link=image_link(image),
        )
    return True


def ask_reviewers(image: GeneratedImage, membership: Membership) -> list[str] | None:
    """Ask each of the team's reviewers and owners but the one asking to review the
    image (an exploration's winner); the names of those asked now, or None when the team
    has nobody else to ask."""
    reviewers = User.objects.filter(
        memberships__team_id=image.team_id,
        memberships__role__in=(Membership.Role.OWNER, Membership.Role.REVIEWER),
    ).exclude(pk=membership.user_id)
    user = membership.user
    if not reviewers.exists():
        return None
    return [
        r.get_username() for r in reviewers.order_by("username") if ask_for_review(image, r, user)
    ]


def _tell_authors(changed: list[GeneratedImage], state: str, user: User) -> None:
    """Each author of reviewed images, once per review: of one image, a link to it; of
    several, to her images in that state in the gallery."""
    by_author: dict[int, list[GeneratedImage]] = {}
    for image in changed:
        by_author.setdefault(image.job.author_id, []).append(image)
    for author_id, images in by_author.items():
        link = (
            image_link(images[0])
            if len(images) == 1
            else f"{reverse('gallery')}?author={author_id}&state={state}"
        )
        notifications.review_changed(
            author_id,
            actor_id=user.pk,
            actor_name=user.get_username(),
            team_id=images[0].team_id,
            state=GeneratedImage.Review(state).label,
            subjects=[image.job.prompt for image in images],
            link=link,
        )


def open_board(membership: Membership, name: str, user: User) -> tuple[Board, bool]:
    """The team's board of that name, made if there is none; and whether it was made."""
    return Board.objects.get_or_create(
        team_id=membership.team_id, name=name, defaults={"created_by": user}
    )


def add_to_board(board: Board, images: list[GeneratedImage], user: User) -> None:
    BoardImage.objects.bulk_create(
        [BoardImage(board=board, image=image, added_by=user) for image in images],
        ignore_conflicts=True,  # already on it: nothing to do
    )


def add_new_to_board(board: Board, images: list[GeneratedImage], user: User) -> int:
    """Put images on a board; how many of them were not on it already."""
    already = set(
        BoardImage.objects.filter(board=board, image__in=images).values_list("image_id", flat=True)
    )
    add_to_board(board, images, user)
    return len(images) - len(already)


def take_off_board(board: Board, image: GeneratedImage) -> None:
    BoardImage.objects.filter(board=board, image=image).delete()

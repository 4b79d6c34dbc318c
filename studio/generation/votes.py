"""An exploration's grid as the team uses it: votes, one a person an image, and the winner
an owner or a reviewer sends on to review."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.urls import reverse

from studio.audit.models import Activity
from studio.generation.models import Exploration, GeneratedImage, Vote
from studio.notifications import services as notifications


def toggle_vote(image: GeneratedImage, user_id: int) -> bool:
    """Vote for the image, or take the vote back; whether the person now votes for it."""
    deleted, _ = Vote.objects.filter(image=image, user_id=user_id).delete()
    if deleted:
        return False
    Vote.objects.get_or_create(image=image, user_id=user_id)
    return True


def send_winner_to_review(exploration: Exploration, image: GeneratedImage, user: Any) -> str:
    """Mark the image the exploration's winner and put it (back) in review, said in the
    team's activity and to its author; the state it had before."""
    in_review = GeneratedImage.Review.IN_REVIEW
    with transaction.atomic():
        before = (
            GeneratedImage.objects.select_for_update()
            .values_list("review_state", flat=True)
            .get(pk=image.pk)
        )
        exploration.winner = image
        exploration.save(update_fields=["winner"])
        GeneratedImage.objects.filter(pk=image.pk).update(
            review_state=in_review, reviewed_by=None, reviewed_at=None
        )
        image.review_state = in_review
        Activity.about(
            [image], user, Activity.Verb.REVIEWED, "In review, as an exploration's winner"
        )
        notifications.review_changed(
            image.job.author_id,
            actor_id=user.pk,
            actor_name=user.get_username(),
            team_id=image.team_id,
            state=f"{in_review.label.lower()}, as the winner of an exploration",
            subjects=[image.job.prompt],
            link=reverse("gallery-image", args=[image.pk]),
        )
    return before

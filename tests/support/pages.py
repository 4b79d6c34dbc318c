"""The studio's URLs with every id there is, and the body of whatever they answer."""

from __future__ import annotations

from studio.api.models import AccessToken
from studio.gallery.models import Board
from studio.generation.models import (
    BrandKit,
    Exploration,
    GeneratedImage,
    Job,
    KitImage,
    StagedImage,
)
from studio.notifications.models import Notification


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def url_arguments(*, indexes: list[int]) -> dict[str, list]:
    """Every id there is now, as the values of the URL patterns' arguments."""
    return {
        "job_id": list(Job.objects.values_list("pk", flat=True)),
        "image_id": list(GeneratedImage.objects.values_list("pk", flat=True)),
        "board_id": list(Board.objects.values_list("pk", flat=True)) or [1],
        "notification_id": list(Notification.objects.values_list("pk", flat=True)) or [1],
        "staged_id": list(StagedImage.objects.values_list("pk", flat=True)),
        "kit_id": list(BrandKit.objects.values_list("pk", flat=True)) or [1],
        "exploration_id": list(Exploration.objects.values_list("pk", flat=True)) or [1],
        "token_id": list(AccessToken.objects.values_list("pk", flat=True)) or [1],
        "reference_id": list(KitImage.objects.values_list("pk", flat=True)) or [1],
        "index": indexes,
        "position": [1],
        "variant": ["thumb", "original"],
    }

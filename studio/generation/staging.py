"""The reference images of an edit, staged one by one as they arrive, until it is sent.

Each person's edit form is kept on the server (its images, their order and regions), so a
reload or another tab shows the same form. Before sending, the staged images are checked
against the chosen model, set aside where it cannot take them, and fitted to its limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.utils import timezone

from studio.accounts.models import Membership
from studio.dashscope.catalog import ImageInputRule, ModelSpec, Option, megabytes
from studio.dashscope.images import FORMATS_BY_MIME
from studio.dashscope.types import Box
from studio.generation.models import GeneratedImage, StagedImage
from studio.generation.normalise import (
    NormalisedImage,
    needs_refit,
    normalise,
    refit,
    refusal,
    size_text,
)
from studio.generation.parsers import parse_boxes, scale_boxes


@dataclass(frozen=True)
class InputUpload:
    """A reference image as create_job takes it: normalised, with its regions."""

    image: NormalisedImage
    boxes: list[Box] = field(default_factory=list)  # in the normalised image's pixels
    # The stored image it was made from, if any (its lineage): its row, job and index.
    source_image_id: int | None = None
    source_job_id: uuid.UUID | None = None
    source_index: int | None = None


def stage_image(
    membership: Membership,
    data: bytes,
    *,
    name: str,
    rule: ImageInputRule,
    source: GeneratedImage | None = None,
) -> StagedImage:
    """Check and normalise one reference image for a model; ImageRefused says why not.
    `source` is the stored image it was taken from, kept as the edit's lineage."""
    if not membership.can_generate:
        raise PermissionDenied("Viewers cannot edit images.")
    image = normalise(data, rule)
    staged = StagedImage(
        team_id=membership.team_id,
        owner_id=membership.user_id,
        mime=image.mime,
        width=image.width,
        height=image.height,
        bytes=len(image.data),
        sha256=image.sha256,
        adjustments=image.adjustments,
        name=name[:120],
        source_image=source,
    )
    # Last on its owner's edit form, where the card appears; the form is per person.
    staged.position = _next_position(membership)
    staged.image.save(f"input.{image.extension}", ContentFile(image.data), save=False)
    staged.save()
    return staged


def _on_form(membership: Membership) -> QuerySet[StagedImage]:
    """The person's staged images still on their edit form, in its order."""
    return StagedImage.objects.filter(
        owner_id=membership.user_id,
        team_id=membership.team_id,
        position__isnull=False,
        # The purge may not have run yet: a day old is gone all the same.
        created_at__gte=timezone.now() - StagedImage.KEEP_FOR,
    ).order_by("position", "created_at")


def _next_position(membership: Membership) -> int:
    last = _on_form(membership).values_list("position", flat=True).last()
    return 0 if last is None else last + 1


def staged_form(membership: Membership) -> list[tuple[str, str]]:
    """The person's edit form as they left it: (staged id, regions) in its order."""
    return [(str(pk), regions) for pk, regions in _on_form(membership).values_list("pk", "regions")]


# Far more than any model's regions take, as text; a bound on what one row keeps.
MAX_REGIONS_TEXT = 2000


def keep_form(
    membership: Membership, items: Sequence[tuple[str, str]], removed: Sequence[str] = ()
) -> None:
    """Remember the edit form's images, order and regions as the page shows them.

    Only what the person took off leaves the form: an image staged meanwhile (another tab,
    an upload still on its way) is kept, after the ones this page shows.
    """
    gone = {staged_id for staged_id in removed if is_uuid(staged_id)}
    shown = [staged_id for staged_id, _ in items if is_uuid(staged_id)]
    earlier = [str(pk) for pk in _on_form(membership).values_list("pk", flat=True)]
    rows = {
        str(s.pk): s
        for s in StagedImage.objects.filter(
            owner_id=membership.user_id, team_id=membership.team_id, pk__in=[*shown, *earlier]
        )
    }
    order = [pk for pk in dict.fromkeys([*shown, *earlier]) if pk in rows and pk not in gone]
    regions = dict(items)
    for place, pk in enumerate(order):
        rows[pk].position = place
        if pk in regions:
            rows[pk].regions = regions[pk][:MAX_REGIONS_TEXT]
    for pk in gone & rows.keys():
        rows[pk].position = None
    StagedImage.objects.bulk_update(rows.values(), ["position", "regions"])


def replace_form(membership: Membership, items: Sequence[tuple[str, str]]) -> None:
    """Make these images, and only these, the edit form's (a remix starts from its job's)."""
    _on_form(membership).update(position=None)
    keep_form(membership, items)


def take_off_form(membership: Membership, staged_ids: Sequence[str]) -> None:
    """Used in a job: the images leave the form, and stay readable until they expire (a
    page brought back with the browser's Back button may send them again)."""
    StagedImage.objects.filter(
        owner_id=membership.user_id, team_id=membership.team_id, pk__in=staged_ids
    ).update(position=None)


@dataclass(frozen=True)
class StagedInput:
    """One reference image of an edit form, in the order the designer gave."""

    staged: StagedImage
    boxes: list[Box] = field(default_factory=list)  # in the staged image's pixels
    boxes_text: str = ""  # as typed, when it could not be read as boxes
    problem: str = ""  # why it cannot be sent with the chosen model, if it cannot
    notes: list[str] = field(default_factory=list)  # what the studio did or will do to it
    refused: str = ""  # why the chosen model cannot take this image at all, if it cannot
    aside: str = ""  # why it is kept on the form but not sent, if it is set aside
    number: int = 0  # "image N" of the prompt, once it is known which images are sent

    @property
    def label(self) -> str:
        """How its buttons name it to a screen reader."""
        if self.aside:
            return f"the image not sent ({self.staged.width}×{self.staged.height})"
        return f"image {self.number}" if self.number else "this image"


def assess_inputs(
    membership: Membership, items: Sequence[tuple[str, str]], spec: ModelSpec
) -> list[StagedInput]:
    """The edit form's (staged id, boxes as text) pairs, checked for the chosen model.

    Unknown ids and other people's staged images are dropped: they can only come from a
    stale or forged form.
    """
    ids = [staged_id for staged_id, _ in items if is_uuid(staged_id)]
    found = {
        str(s.pk): s
        for s in StagedImage.objects.filter(
            pk__in=ids, owner_id=membership.user_id, team_id=membership.team_id
        ).select_related("source_image")
    }
    return [
        _assess(found[staged_id], text, spec) for staged_id, text in items if staged_id in found
    ]


def _assess(staged: StagedImage, text: str, spec: ModelSpec) -> StagedInput:
    """One staged image with its regions as typed, checked for the chosen model."""
    problem = ""
    boxes: list[Box] = []
    try:
        boxes = parse_boxes(text)
    except ValueError as exc:
        problem = str(exc)
    notes = list(staged.adjustments)
    refused = ""
    if spec.images is not None:
        refused = refusal(staged.width, staged.height, spec.images) or ""
        if refused:
            problem = f"{refused} ({spec.label})"
        else:
            notes += _fitting_notes(staged, spec, spec.images)
    if boxes and not spec.supports(Option.BBOX_LIST):
        notes.append(f"{spec.label} does not take regions; they will not be sent")
    return StagedInput(
        staged=staged,
        boxes=boxes,
        boxes_text="" if boxes or not problem else text,
        problem=problem,
        notes=notes,
        refused=refused,
    )


def _fitting_notes(staged: StagedImage, spec: ModelSpec, rule: ImageInputRule) -> list[str]:
    """What sending will do to an image the model takes, but not as it is."""
    if max(staged.width, staged.height) > rule.max_side:
        return [
            f"will be scaled down to fit {spec.label}'s {rule.max_side:,}-pixel sides when sent"
        ]
    if needs_refit(staged.width, staged.height, staged.bytes, rule):
        return [
            f"is {size_text(staged.bytes)}, over {spec.label}'s "
            f"{megabytes(rule.max_bytes)}: when sent it will be compressed harder or "
            "scaled down, and saved as JPEG only if staying lossless would cost over "
            "half its pixels"
        ]
    return []


def set_aside(
    inputs: Sequence[StagedInput], spec: ModelSpec, shown_aside: set[str] | None = None
) -> list[StagedInput]:
    """Which images are kept on the form but not sent with this model, each saying why.

    Drawn for a model (shown_aside None): those it cannot take, and those past the number
    it takes, so switching models never loses an image and switching back brings it back.
    Sent (shown_aside, what the page showed as set aside): only those; anything else the
    model cannot take is refused on its card, never quietly left out.
    """
    most = spec.images.count[1] if spec.images else 0
    over = f"Not sent with {spec.label}, which takes at most {most} image{'s' * (most != 1)}."
    result = []
    sent = 0
    for item in inputs:
        refused = ""
        if item.refused:  # "This image is 300×900; …" read on after "Not sent with X: "
            refused = f"Not sent with {spec.label}: {item.refused[0].lower()}{item.refused[1:]}"
        if shown_aside is None:
            aside = refused or (over if sent >= most else "")
        elif str(item.staged.pk) in shown_aside:
            aside = refused or (over if sent >= most else f"Not sent with {spec.label}.")
        else:
            aside = ""
        if aside:
            # Not sent, so nothing about it stops the rest from being sent.
            result.append(replace(item, aside=aside, problem=""))
        else:
            sent += 1
            result.append(replace(item, number=sent))
    return result


def uploads_for(inputs: Sequence[StagedInput], spec: ModelSpec) -> list[InputUpload]:
    """What create_job takes: each staged image fitted to the model, its boxes with it."""
    rule = spec.images
    assert rule is not None
    uploads = []
    for item in inputs:
        staged = item.staged
        image = NormalisedImage(
            data=staged.read(),
            format=FORMATS_BY_MIME[staged.mime],
            width=staged.width,
            height=staged.height,
            sha256=staged.sha256,
            adjustments=list(staged.adjustments),
        )
        fitted = refit(image, rule)
        boxes = item.boxes if spec.supports(Option.BBOX_LIST) else []
        boxes = scale_boxes(boxes, (image.width, image.height), (fitted.width, fitted.height))
        source = staged.source_image
        uploads.append(
            InputUpload(
                image=fitted,
                boxes=boxes,
                source_image_id=source.pk if source else None,
                source_job_id=source.job_id if source else None,
                source_index=source.index if source else None,
            )
        )
    return uploads


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

"""Brand kits: kept by a team's owners, applied by anyone in one click.

A kit's values are copied into the form, each editable there; its reference images are
normalised once when added and copied onto an edit form without being uploaded again.
Creating, changing and removing a kit is audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max, QuerySet
from django.db.models.fields.files import FieldFile

from studio.accounts.models import Membership, Team
from studio.audit.models import Entry, record
from studio.dashscope.catalog import (
    ImageInputRule,
    Kind,
    ModelSpec,
    Option,
    UnknownModel,
    get_model,
    models_for,
)
from studio.generation.models import BrandKit, KitImage, StagedImage
from studio.generation.normalise import ImageRefused, NormalisedImage, normalise
from studio.generation.parsers import palette_text, parse_palette
from studio.generation.sizes import size_choices
from studio.http import AppRequest

# What the audit log compares between a kit's two versions.
AUDITED_FIELDS = (
    "name",
    "prompt_template",
    "prompt_suffix",
    "negative_prompt",
    "model",
    "size",
    "color_palette",
    "watermark",
)
MOST_KIT_IMAGES = 9  # the most any model takes in one edit


def team_kits(team: Team | int) -> QuerySet[BrandKit]:
    return BrandKit.objects.filter(team=team).order_by("name")


def find_kit(membership: Membership, kit_id: object) -> BrandKit | None:
    """The team's kit of that id, or None for anything else (another team's, a typo)."""
    if not str(kit_id or "").isdigit():
        return None
    return team_kits(membership.team_id).filter(pk=int(str(kit_id))).first()


def kit_spec(kit: BrandKit) -> ModelSpec | None:
    try:
        return get_model(kit.model) if kit.model else None
    except UnknownModel:
        return None  # a model the catalog no longer has: the kit applies without one


def image_rule(spec: ModelSpec | None) -> ImageInputRule:
    """How a kit's reference images are normalised: for its model if that takes images;
    else as loosely as any editing model takes them, and fitted at sending if need be."""
    if spec is not None and spec.images is not None:
        return spec.images
    rules = [s.images for s in models_for(Kind.EDIT) if s.images is not None]
    return max(rules, key=lambda rule: (rule.max_bytes, rule.max_side))


# -- Keeping a kit ---------------------------------------------------------------------------


def kit_snapshot(kit: BrandKit) -> dict[str, Any]:
    values = {name: getattr(kit, name) for name in AUDITED_FIELDS}
    values["images"] = [image.name or f"Image {image.position + 1}" for image in kit.images.all()]
    return values


def save_kit(
    request: AppRequest,
    kit: BrandKit,
    uploads: Sequence[UploadedFile] = (),
    removed: Sequence[str] = (),
    *,
    before: dict[str, Any] | None = None,
) -> None:
    """Save the kit with its images added and taken off, and audit what changed.
    ImageRefused (nothing saved) names the upload that could not be used."""
    rule = image_rule(kit_spec(kit))
    # Read and normalised before anything is written: a refused file changes nothing.
    images = []
    for upload in uploads:
        try:
            images.append((upload.name or "", normalise(upload.read(), rule)))
        except ImageRefused as refused:
            raise ImageRefused(f"{upload.name}: {refused}") from None
    written: list[FieldFile] = []
    try:
        _save_kit(request, kit, images, removed, before, written)
    except BaseException:
        _delete_files(written)  # the rows went with the rollback; their files go too
        raise


def _save_kit(
    request: AppRequest,
    kit: BrandKit,
    images: list[tuple[str, NormalisedImage]],
    removed: Sequence[str],
    before: dict[str, Any] | None,
    written: list[FieldFile],
) -> None:
    with transaction.atomic():
        created = kit.pk is None
        kit.save()
        gone = kit.images.filter(pk__in=[pk for pk in removed if pk.isdigit()])
        files = [old.image for old in gone]
        gone.delete()
        # The files go once the rows have: a rollback keeps both.
        transaction.on_commit(partial(_delete_files, files))
        last = kit.images.aggregate(last=Max("position"))["last"]
        start = 0 if last is None else last + 1
        for place, (name, image) in enumerate(images, start=start):
            row = KitImage(
                kit=kit,
                position=place,
                mime=image.mime,
                width=image.width,
                height=image.height,
                bytes=len(image.data),
                sha256=image.sha256,
                adjustments=image.adjustments,
                name=name[:120],
            )
            row.image.save(f"kit.{image.extension}", ContentFile(image.data), save=False)
            written.append(row.image)
            row.save()
        after = kit_snapshot(kit)
        changes = {
            name: [None if created else (before or {}).get(name), value]
            for name, value in after.items()
            if created or (before or {}).get(name) != value
        }
        if changes:
            target = f"Brand kit {kit.name}"
            record(request, Entry.Action.KIT, target, team=kit.team, changes=changes)


def _delete_files(files: list[FieldFile]) -> None:
    for file in files:
        file.delete(save=False)


def remove_kit(request: AppRequest, kit: BrandKit) -> None:
    """Remove the kit and its images. Jobs that used it keep their settings and its name."""
    before = kit_snapshot(kit)
    files = [image.image for image in kit.images.all()]
    with transaction.atomic():
        kit.delete()
        record(
            request,
            Entry.Action.KIT,
            f"Brand kit {before['name']}",
            team=kit.team,
            changes={name: [value, None] for name, value in before.items()},
        )
        transaction.on_commit(partial(_delete_files, files))


# -- Applying a kit ----------------------------------------------------------------------------


def applied_values(
    kit: BrandKit, spec: ModelSpec, kind: Kind, prompt: str, previous: BrandKit | None = None
) -> dict[str, Any]:
    """The form's values with the kit applied to the model `spec`: its prompt around what
    was written (her own words, once taken out of the kit applied before), and each
    setting the model takes."""
    subject = previous.subject_of(prompt) if previous is not None else prompt
    values: dict[str, Any] = {"prompt": kit.prompt_for(subject), "kit": str(kit.pk)}
    if spec.supports(Option.NEGATIVE_PROMPT):
        values["negative_prompt"] = kit.negative_prompt
    if kit.color_palette and spec.supports(Option.COLOR_PALETTE):
        values["color_palette"] = palette_text(kit.color_palette)
    if spec.supports(Option.WATERMARK):
        values["watermark"] = kit.watermark
    if kit.size:
        shown = kit.size.replace("*", "×")
        if kit.size in dict(size_choices(spec, kind)):
            values["size"], values["custom_size"] = kit.size, ""
        elif "*" in kit.size and not spec.size.fixed:
            values["custom_size"] = shown
    return values


def kit_model(kit: BrandKit, offered: Sequence[ModelSpec]) -> str:
    """The kit's model when this form offers it, else "" (the form keeps its own)."""
    spec = kit_spec(kit)
    return spec.name if spec is not None and spec in offered else ""


def stage_kit_images(membership: Membership, kit: BrandKit) -> list[str]:
    """Put the kit's images on the person's edit form, after what is on it, each once:
    copies of the kit's, normalised when they were added. Their staged ids."""
    on_form = StagedImage.objects.filter(
        owner_id=membership.user_id, team_id=membership.team_id, position__isnull=False
    )
    there = set(on_form.values_list("kit_image_id", flat=True))
    last = on_form.aggregate(last=Max("position"))["last"]
    place = 0 if last is None else last + 1
    staged_ids = []
    for image in kit.images.all():
        if image.pk in there:
            continue
        staged = StagedImage(
            team_id=membership.team_id,
            owner_id=membership.user_id,
            mime=image.mime,
            width=image.width,
            height=image.height,
            bytes=image.bytes,
            sha256=image.sha256,
            adjustments=image.adjustments,
            name=image.name or f"{kit.name} {image.position + 1}",
            kit_image=image,
            position=place,
        )
        extension = str(image.image.name).rsplit(".", 1)[-1]
        staged.image.save(f"input.{extension}", ContentFile(image.read()), save=False)
        staged.save()
        staged_ids.append(str(staged.pk))
        place += 1
    return staged_ids


def dropped_values(kit: BrandKit, values: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values with the kit taken off: her own words out of its prompt, and
    what it set that she left as it was cleared."""
    dropped: dict[str, Any] = {"prompt": kit.subject_of(str(values.get("prompt", "")))}
    negative = str(values.get("negative_prompt", "")).strip()
    if negative and negative == kit.negative_prompt.strip():
        dropped["negative_prompt"] = ""
    if kit.color_palette:
        try:
            same = parse_palette(str(values.get("color_palette", ""))) == kit.color_palette
        except ValidationError:
            same = False
        if same:
            dropped["color_palette"] = ""
    return dropped


def kit_staged_ids(membership: Membership, kit: BrandKit) -> list[str]:
    """The person's staged images that are copies of the kit's."""
    rows = StagedImage.objects.filter(
        owner_id=membership.user_id, team_id=membership.team_id, kit_image__kit=kit
    )
    return [str(pk) for pk in rows.values_list("pk", flat=True)]

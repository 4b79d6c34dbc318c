"""Workflows that span jobs, their inputs, the quota and the queue."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from studio.accounts.models import Membership, QuotaCounter, QuotaExceeded
from studio.dashscope.catalog import (
    SEED_MAX,
    ImageInputRule,
    ModelSpec,
    Option,
    UnknownModel,
    get_model,
    megabytes,
)
from studio.dashscope.images import FORMATS_BY_MIME
from studio.dashscope.types import PLAIN_PARAMETERS, Box, GenerationRequest, InputImage
from studio.dashscope.validation import Problem, check_request, images_requested
from studio.generation import messages
from studio.generation.models import Job, JobInput, ModelPrice, QuotaCharge, StagedImage
from studio.generation.normalise import (
    NormalisedImage,
    needs_refit,
    normalise,
    refit,
    refusal,
    scale_boxes,
    size_text,
)
from studio.generation.worker import finish

PARAMETERS = (*PLAIN_PARAMETERS, "color_palette")


class JobRefused(Exception):
    """The job was not created; nothing was stored, reserved or charged."""

    status = 200  # the form is shown again, with the reasons next to the fields

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(" ".join(p.message for p in problems))


class SubmittingTooFast(JobRefused):
    status = 429


@dataclass(frozen=True)
class InputUpload:
    image: NormalisedImage
    boxes: list[Box] = field(default_factory=list)  # in the normalised image's pixels


def create_job(
    *,
    membership: Membership,
    model: str,
    prompt: str,
    negative_prompt: str = "",
    parameters: dict[str, Any] | None = None,
    inputs: Sequence[InputUpload] = (),
    now: datetime | None = None,
) -> Job:
    """Check, reserve quota for and queue a job; JobRefused says why it cannot be."""
    if not membership.can_generate:
        raise PermissionDenied("Viewers cannot generate images.")
    parameters = {k: v for k, v in (parameters or {}).items() if k in PARAMETERS and v is not None}
    try:
        spec = get_model(model)
    except UnknownModel:
        raise JobRefused(
            [Problem("model", f"{model!r} is not a model the studio offers.")]
        ) from None
    request = GenerationRequest.build(
        model=spec.name,
        prompt=prompt,
        negative_prompt=negative_prompt,
        parameters=parameters,
        images=[InputImage.from_bytes(upload.image.data) for upload in inputs],
        boxes=[upload.boxes for upload in inputs],
    )
    problems = check_request(request, asynchronous=spec.async_endpoint is not None)
    if problems:
        raise JobRefused(problems)
    count = images_requested(request)
    parameters["n"] = count  # always explicit: a provider default of 4 is never a surprise
    price = ModelPrice.objects.filter(model=spec.name).first()
    unit_price = price.price_per_image if price else Decimal(0)
    currency = price.currency if price else "USD"
    moment = now or timezone.now()
    # Found, or made, before the transaction: the first submissions of a day made the
    # day's counters inside it, and everyone else's waited on that insert until it
    # committed.
    counter_ids = QuotaCounter.current_ids(membership, moment)
    with _files_removed_unless_committed() as stored, transaction.atomic():
        # Locking the membership row serialises one person's submissions, so the count of
        # jobs in flight cannot be raced past its limit. Only that row: locking the joined
        # team and user rows too would block every foreign-key check against them (the
        # worker's inserts) and, with the quota counters, deadlock on PostgreSQL.
        member = (
            Membership.objects.select_for_update(of=("self",))
            .select_related("team", "user")
            .get(pk=membership.pk)
        )
        # Counted under the lock: concurrent submissions cannot slip past it together.
        limit = settings.STUDIO_SUBMITS_PER_MINUTE
        recent = Job.objects.filter(
            team=member.team, author=member.user, created_at__gte=moment - timedelta(minutes=1)
        ).count()
        if recent >= limit:
            raise SubmittingTooFast(
                [
                    Problem(
                        "__all__",
                        f"You have sent {recent} jobs in the last minute, the most the studio "
                        "takes from one person; wait a moment and send it again.",
                    )
                ]
            )
        # Read with the lock, so a permission changed a moment ago already applies.
        if not member.team.allows(spec.name):
            raise JobRefused(
                [Problem("model", f"{spec.label} is not enabled for your team; ask an owner.")]
            )
        in_flight = Job.objects.filter(
            team=member.team, author=member.user, status__in=Job.ACTIVE
        ).count()
        cap = member.jobs_in_flight_limit
        if in_flight >= cap:
            raise JobRefused(
                [
                    Problem(
                        "__all__",
                        f"You have {in_flight} jobs queued or running, the most you may have at "
                        "once. Wait for one to finish, or cancel one.",
                    )
                ]
            )
        job = Job.objects.create(
            team=member.team,
            author=member.user,
            kind=Job.Kind.EDIT if inputs else Job.Kind.TEXT_TO_IMAGE,
            model=spec.name,
            prompt=prompt,
            negative_prompt=negative_prompt,
            parameters=parameters,
            images_requested=count,
            created_at=moment,
        )
        for position, upload in enumerate(inputs, start=1):
            item = JobInput(
                job=job,
                position=position,
                mime=upload.image.mime,
                width=upload.image.width,
                height=upload.image.height,
                bytes=len(upload.image.data),
                sha256=upload.image.sha256,
                boxes=[list(b) for b in upload.boxes],
                adjustments=upload.image.adjustments,
            )
            item.image.save(
                f"{position}.{upload.image.extension}", ContentFile(upload.image.data), save=False
            )
            stored.append(item.image)
            item.save()
        # The same commit makes it true, or nothing of it is kept.
        job.log(f"Queued: {count} image{'s' if count != 1 else ''} reserved.")
        # Reserved last, just before the commit: the team's counters are shared by every
        # member and by the worker settling finished jobs, and their row locks are held from
        # here to the commit.
        try:
            reserved_ids = QuotaCounter.reserve(
                member,
                count,
                moment,
                cost=count * unit_price,
                currency=currency,
                counter_ids=counter_ids,
            )
        except QuotaExceeded as exc:
            raise JobRefused([Problem("__all__", str(exc))]) from None
        QuotaCharge.objects.create(
            job=job,
            kind=QuotaCharge.Kind.RESERVE,
            images=count,
            counter_ids=reserved_ids,
            unit_price=unit_price,
        )
        # Robust: waking the dispatcher runs after the commit, and a failure there must
        # not report the committed job as failed (nor take its files): the reconcile
        # schedule starts a dispatcher within a minute anyway.
        transaction.on_commit(_kick_dispatcher, robust=True)
    return job


@contextmanager
def _files_removed_unless_committed() -> Iterator[list[FieldFile]]:
    """Files written inside a transaction, deleted should it not commit: a rollback takes
    the rows back but leaves the files behind. Entered before the transaction, so a commit
    that fails counts too."""
    written: list[FieldFile] = []
    try:
        yield written
    except BaseException:
        for file in written:
            file.delete(save=False)
        raise


def _kick_dispatcher() -> None:
    from studio.generation.tasks import kick

    kick()


def _may_act_on(job: Job, membership: Membership) -> bool:
    return membership.team_id == job.team_id and (
        membership.user_id == job.author_id or membership.can_manage
    )


def cancel_job(job: Job, *, membership: Membership) -> str:
    """Cancel what can still be cancelled; the answer says what happened."""
    if not _may_act_on(job, membership):
        raise PermissionDenied("Only the author or a team owner can cancel a job.")
    job.refresh_from_db()
    # Only from the queue: a job the dispatcher is sending meanwhile may already be a task
    # the provider runs and bills, and must be followed to its images.
    if job.status == Job.Status.QUEUED and finish(
        job,
        Job.Status.CANCELED,
        message=messages.CANCELED_BEFORE_SENT,
        expect=(Job.Status.QUEUED,),
    ):
        return "Cancelled. Nothing was charged."
    # The request stands until the job ends, wherever it is by then: the dispatcher cancels
    # a job put back in the queue, the provider a task still waiting, and a sync job's step
    # a call not made yet.
    if Job.objects.filter(pk=job.pk, status__in=Job.CANCELLABLE).update(cancel_requested=True):
        job.log("Cancel requested.")
        return "Cancelling: unless the provider has started it, nothing will be charged."
    job.refresh_from_db()
    if job.is_open:
        return "It is already running at the provider and can no longer be cancelled."
    return "It has already finished."


def retry_job(job: Job, *, membership: Membership) -> Job:
    """Queue the same request again, as a new job charged to whoever retries it."""
    if not _may_act_on(job, membership):
        raise PermissionDenied("Only the author or a team owner can retry a job.")
    if job.is_open:
        raise JobRefused([Problem("__all__", "This job has not finished yet.")])
    return _again(job, membership, dict(job.parameters))


def _again(job: Job, membership: Membership, parameters: dict) -> Job:
    """The job's request, with `parameters`, as a new job of whoever asks: every check of
    create_job applies."""
    return create_job(
        membership=membership,
        model=job.model,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        parameters=parameters,
        inputs=_inputs_again(job),
    )


def variations_job(job: Job, *, membership: Membership) -> Job:
    """The same request with a new seed, as a new job charged to whoever asks for it.

    Anyone in the team who may generate can ask: a teammate's image is as good a start as
    one's own. The checks are create_job's, so quotas, the budget and the team's models
    apply as to any other job.
    """
    if membership.team_id != job.team_id:
        raise PermissionDenied("Variations are made from the team's own images.")
    parameters = dict(job.parameters)
    try:
        takes_seed = get_model(job.model).supports(Option.SEED)
    except UnknownModel:
        takes_seed = False  # create_job says why the model cannot be used
    parameters.pop("seed", None)
    if takes_seed:
        parameters["seed"] = new_seed(job.parameters.get("seed"))
    return _again(job, membership, parameters)


def new_seed(old: object = None) -> int:
    """A random seed in the provider's range, never the one the job had: the same seed
    would make the same picture again."""
    while True:
        seed = secrets.randbelow(SEED_MAX + 1)
        if seed != old:
            return seed


def _inputs_again(job: Job) -> list[InputUpload]:
    """A job's reference images as create_job takes them, read back from the media store."""
    inputs = []
    for item in job.inputs.all():
        with item.image.open("rb") as file:
            data = file.read()
        image = NormalisedImage(
            data=data,
            format=FORMATS_BY_MIME[item.mime],
            width=item.width,
            height=item.height,
            sha256=item.sha256,
        )
        inputs.append(InputUpload(image=image, boxes=[tuple(b) for b in item.boxes]))
    return inputs


# -- Reference images of an edit, staged as they arrive ---------------------------------


def stage_image(
    membership: Membership, data: bytes, *, name: str, rule: ImageInputRule
) -> StagedImage:
    """Check and normalise one reference image for a model; ImageRefused says why not."""
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
    from studio.generation.forms import parse_boxes

    ids = [staged_id for staged_id, _ in items if is_uuid(staged_id)]
    found = {
        str(s.pk): s
        for s in StagedImage.objects.filter(
            pk__in=ids, owner_id=membership.user_id, team_id=membership.team_id
        )
    }
    rule = spec.images
    result = []
    for staged_id, text in items:
        staged = found.get(staged_id)
        if staged is None:
            continue
        problem = ""
        boxes: list[Box] = []
        try:
            boxes = parse_boxes(text)
        except ValueError as exc:
            problem = str(exc)
        notes = list(staged.adjustments)
        refused = ""
        if rule is not None:
            refused = refusal(staged.width, staged.height, rule) or ""
            if refused:
                problem = f"{refused} ({spec.label})"
            elif max(staged.width, staged.height) > rule.max_side:
                notes.append(
                    f"will be scaled down to fit {spec.label}'s {rule.max_side:,}-pixel sides "
                    "when sent"
                )
            elif needs_refit(staged.width, staged.height, staged.bytes, rule):
                notes.append(
                    f"is {size_text(staged.bytes)}, over {spec.label}'s "
                    f"{megabytes(rule.max_bytes)}: when sent it will be compressed harder or "
                    "scaled down, and saved as JPEG only if staying lossless would cost over "
                    "half its pixels"
                )
        if boxes and not spec.supports(Option.BBOX_LIST):
            notes.append(f"{spec.label} does not take regions; they will not be sent")
        result.append(
            StagedInput(
                staged=staged,
                boxes=boxes,
                boxes_text="" if boxes or not problem else text,
                problem=problem,
                notes=notes,
                refused=refused,
            )
        )
    return result


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
        uploads.append(InputUpload(image=fitted, boxes=boxes))
    return uploads


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True

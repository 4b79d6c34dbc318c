"""Workflows that span jobs, their inputs, the quota and the queue.

Creating a job (checked, reserved against the quotas, queued in one commit), cancelling
it, and running it again as a retry or with a new seed. The reference images of an edit,
staged before the job exists, are studio.generation.staging's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from studio.accounts.models import Membership, ModelPrice, QuotaCounter, QuotaExceeded
from studio.dashscope.catalog import SEED_MAX, ModelSpec, Option, UnknownModel, get_model
from studio.dashscope.images import FORMATS_BY_MIME
from studio.dashscope.types import (
    INTERLEAVE_PARAMETERS,
    PLAIN_PARAMETERS,
    GenerationRequest,
    InputImage,
)
from studio.dashscope.validation import Problem, check_request, images_requested
from studio.generation import messages
from studio.generation.models import BrandKit, Job, JobInput, QuotaCharge
from studio.generation.normalise import NormalisedImage
from studio.generation.staging import InputUpload
from studio.generation.staging import stage_image as stage_image  # where callers look for it
from studio.generation.worker.outcomes import finish

PARAMETERS = (*PLAIN_PARAMETERS, *INTERLEAVE_PARAMETERS, "color_palette")


class JobRefused(Exception):
    """The job was not created; nothing was stored, reserved or charged."""

    status = 200  # the form is shown again, with the reasons next to the fields

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(" ".join(p.message for p in problems))


class SubmittingTooFast(JobRefused):
    status = 429


def create_job(
    *,
    membership: Membership,
    model: str,
    prompt: str,
    negative_prompt: str = "",
    parameters: dict[str, Any] | None = None,
    inputs: Sequence[InputUpload] = (),
    now: datetime | None = None,
    kit: BrandKit | None = None,
) -> Job:
    """Check, reserve quota for and queue a job; JobRefused says why it cannot be."""
    if not membership.can_generate:
        raise PermissionDenied("Viewers cannot generate images.")
    parameters = {k: v for k, v in (parameters or {}).items() if k in PARAMETERS and v is not None}
    spec = _offered_model(model)
    count = _images_checked(spec, prompt, negative_prompt, parameters, inputs)
    # Always explicit: a provider default of 4 (or 5 pictures in a piece) is never a surprise.
    if parameters.get("enable_interleave"):
        parameters["max_images"], parameters["n"] = count, 1  # a piece is one answer
    else:
        parameters["n"] = count
    unit_price, currency = _price(spec)
    moment = now or timezone.now()
    # Found, or made, before the transaction: the first submissions of a day made the
    # day's counters inside it, and everyone else's waited on that insert until it
    # committed.
    counter_ids = QuotaCounter.current_ids(membership, moment)
    with _files_removed_unless_committed() as stored, transaction.atomic():
        member = _locked(membership)
        _check_may_submit(member, spec, moment)
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
            kit=kit,
            kit_name=kit.name if kit else "",
        )
        _store_inputs(job, inputs, stored)
        # The same commit makes it true, or nothing of it is kept.
        job.log(f"Queued: {count} image{'s' if count != 1 else ''} reserved.")
        _reserve(member, job, moment, counter_ids, unit_price=unit_price, currency=currency)
        # Robust: waking the dispatcher runs after the commit, and a failure there must
        # not report the committed job as failed (nor take its files): the reconcile
        # schedule starts a dispatcher within a minute anyway.
        transaction.on_commit(_kick_dispatcher, robust=True)
    return job


def _offered_model(model: str) -> ModelSpec:
    try:
        return get_model(model)
    except UnknownModel:
        raise JobRefused(
            [Problem("model", f"{model!r} is not a model the studio offers.")]
        ) from None


def _images_checked(
    spec: ModelSpec,
    prompt: str,
    negative_prompt: str,
    parameters: dict[str, Any],
    inputs: Sequence[InputUpload],
) -> int:
    """How many images the request makes, once checked against the model's documented
    limits; JobRefused with every problem found."""
    request = GenerationRequest.build(
        model=spec.name,
        prompt=prompt,
        negative_prompt=negative_prompt,
        parameters=parameters,
        images=[InputImage.from_bytes(upload.image.data) for upload in inputs],
        boxes=[upload.boxes for upload in inputs],
    )
    # A piece of mixed text and images is streamed from the sync endpoint; the rest go
    # as the worker sends them.
    streamed = bool(request.enable_interleave)
    problems = check_request(
        request, asynchronous=spec.async_endpoint is not None and not streamed, streaming=streamed
    )
    if problems:
        raise JobRefused(problems)
    return images_requested(request)


def _locked(membership: Membership) -> Membership:
    """The membership row, locked to the end of the transaction.

    Locking it serialises one person's submissions, so the count of jobs in flight cannot
    be raced past its limit. Only that row: locking the joined team and user rows too
    would block every foreign-key check against them (the worker's inserts) and, with the
    quota counters, deadlock on PostgreSQL.
    """
    return (
        Membership.objects.select_for_update(of=("self",))
        .select_related("team", "user")
        .get(pk=membership.pk)
    )


def _check_may_submit(member: Membership, spec: ModelSpec, moment: datetime) -> None:
    """The checks made under the membership's lock, so concurrent submissions cannot slip
    past them together; JobRefused for the first that fails."""
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
    _check_in_flight(member)


def _check_in_flight(member: Membership) -> None:
    in_flight = Job.objects.filter(
        team=member.team, author=member.user, status__in=Job.ACTIVE
    ).count()
    if in_flight >= member.jobs_in_flight_limit:
        raise JobRefused(
            [
                Problem(
                    "__all__",
                    f"You have {in_flight} jobs queued or running, the most you may have at "
                    "once. Wait for one to finish, or cancel one.",
                )
            ]
        )


def _store_inputs(job: Job, inputs: Sequence[InputUpload], written: list[FieldFile]) -> None:
    """The job's reference images saved, in order; each file noted in `written` as soon as
    it is, to be removed should the transaction not commit."""
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
            source_image_id=upload.source_image_id,
            source_job_id=upload.source_job_id,
            source_index=upload.source_index,
        )
        item.image.save(
            f"{position}.{upload.image.extension}", ContentFile(upload.image.data), save=False
        )
        written.append(item.image)
        item.save()


def _price(spec: ModelSpec) -> tuple[Decimal, str]:
    """The model's price per image and its currency; free where no price is set."""
    price = ModelPrice.objects.filter(model=spec.name).first()
    return (price.price_per_image, price.currency) if price else (Decimal(0), "USD")


def _reserve(
    member: Membership,
    job: Job,
    moment: datetime,
    counter_ids: dict[tuple[int | None, str], int],
    *,
    unit_price: Decimal,
    currency: str,
) -> None:
    """The job's images reserved against the quotas, and the charge recorded.

    Reserved last, just before the commit: the team's counters are shared by every member
    and by the worker settling finished jobs, and their row locks are held from here to
    the commit.
    """
    count = job.images_requested
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
        inputs.append(
            InputUpload(
                image=image,
                boxes=[tuple(b) for b in item.boxes],
                # Run again, it came from the same image.
                source_image_id=item.source_image_id,
                source_job_id=item.source_job_id,
                source_index=item.source_index,
            )
        )
    return inputs

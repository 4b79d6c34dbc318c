"""Explore: one prompt sent to up to four models with up to four seeds each, in one submit.

Before anything is sent the plan says what each model will receive: the size it makes for
the shape chosen, what of the prompt it does not take, and why it cannot be sent at all.
Sent, every cell is an ordinary job (the fair queue, the provider's limits and the charge
for what was stored apply as to any job), and all of them are created and reserved in one
transaction: the exploration is queued whole or not at all.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from studio.accounts.models import Membership, ModelPrice, QuotaCounter, Team, money
from studio.dashscope.catalog import MODELS, SEED_MAX, Kind, ModelSpec, Option
from studio.dashscope.types import GenerationRequest
from studio.dashscope.validation import Problem, check_request, parse_size
from studio.generation.explore_references import Items, References, references_for
from studio.generation.forms import offered_models
from studio.generation.models import Exploration, ExplorationCell, Job
from studio.generation.modes import piece_only
from studio.generation.normalise import ImageRefused
from studio.generation.services import JobRefused, create_job
from studio.generation.sizes import size_choices
from studio.generation.staging import InputUpload, StagedInput, uploads_for

MOST_MODELS = 4
MOST_SEEDS = 4
SHAPES = {
    "1:1": "Square",
    "16:9": "Landscape 16:9",
    "4:3": "Landscape 4:3",
    "3:4": "Portrait 3:4",
    "9:16": "Portrait 9:16",
}


def explore_models(team: Team, *, references: bool = False) -> tuple[ModelSpec, ...]:
    """The models an exploration may use: those the team may use from a prompt alone (a
    model offered there only for pieces of text and images makes no single picture), and
    with reference images, those that edit them too; in the catalog's order."""
    specs = [
        spec
        for spec in offered_models(team, Kind.TEXT_TO_IMAGE)
        if not piece_only(spec, Kind.TEXT_TO_IMAGE)
    ]
    if references:
        specs += [spec for spec in offered_models(team, Kind.EDIT) if spec not in specs]
    order = {spec.name: place for place, spec in enumerate(MODELS)}
    return tuple(sorted(specs, key=lambda spec: order[spec.name]))


def _ratio(shape: str) -> float:
    width, height = (int(part) for part in shape.split(":"))
    return width / height


def _side_sizes(spec: ModelSpec, value: str) -> tuple[int, int] | None:
    """A size choice in pixels: a tier as its square, "W*H" as written."""
    if value in spec.size.tiers:
        side = spec.size.tiers[value]
        return side, side
    return parse_size(value)


@dataclass(frozen=True)
class Column:
    """One model of the exploration, as it will be sent."""

    spec: ModelSpec
    size: str  # as the provider takes it
    width: int
    height: int
    notes: tuple[str, ...] = ()  # what it does not take, or makes otherwise
    problems: tuple[str, ...] = ()  # why it cannot be sent
    price: Decimal | None = None
    inputs: tuple[StagedInput, ...] = ()  # the reference images it edits, if any

    @property
    def size_text(self) -> str:
        if self.inputs:
            return f"{self.size + ', ' if self.size else ''}shaped like the last image"
        return f"{self.width}×{self.height}"

    def parameters(self, seed: int) -> dict[str, Any]:
        parameters: dict[str, Any] = {"n": 1}
        if self.size:
            parameters["size"] = self.size
        if self.spec.supports(Option.SEED):
            parameters["seed"] = seed
        return parameters


def _sized(spec: ModelSpec, shape: str) -> tuple[str, int, int, str]:
    """The size the model makes for the shape: the nearest it offers, or one of its own
    near its default area where it takes any size; and a note when not that shape."""
    target = _ratio(shape)
    offered = [(value, _side_sizes(spec, value)) for value, _ in size_choices(spec)]
    sized = [(value, size) for value, size in offered if size is not None]
    # The nearest shape; of equals, the model's default, then the largest.
    value, (width, height) = min(
        sized,
        key=lambda item: (
            round(abs(math.log(item[1][0] / item[1][1] / target)), 3),
            item[0] != spec.size.default,
            -item[1][0] * item[1][1],
        ),
    )
    if abs(math.log(width / height / target)) <= 0.05:
        return value, width, height, ""
    own = None if spec.size.fixed else _own_size(spec, target)
    if own is not None:
        return f"{own[0]}*{own[1]}", own[0], own[1], ""
    return value, width, height, f"makes {width}×{height}, the nearest to {shape} it offers"


def _own_size(spec: ModelSpec, target: float) -> tuple[int, int] | None:
    """A size of the shape `target` at about the model's default area (a little over, for
    a minimum of pixels), in steps of 16, that the model's rules take; None if none."""
    default = _side_sizes(spec, spec.size.default)
    if default is None:
        return None
    area = default[0] * default[1]
    for step in (0, 1, 2):
        width = (int(math.sqrt(area * target)) // 16 + step) * 16
        height = (round(width / target) // 16) * 16
        parameters = {"size": f"{width}*{height}"}
        request = GenerationRequest.build(model=spec.name, prompt="-", parameters=parameters)
        if not [p for p in check_request(request, asynchronous=False) if p.field == "size"]:
            return width, height
    return None


def _column(
    spec: ModelSpec, prompt: str, negative: str, shape: str, price: Any, refs: References
) -> Column:
    if refs.edits:
        size, width, height, size_note = refs.size, 0, 0, ""
    else:
        size, width, height, size_note = _sized(spec, shape)
    notes = [*refs.notes, size_note] if size_note else list(refs.notes)
    if negative and not spec.supports(Option.NEGATIVE_PROMPT):
        notes.append("takes no “Avoid”: sent without it")
    if not spec.supports(Option.SEED):
        notes.append("takes no seed: each row is a new picture")
    request = GenerationRequest.build(
        model=spec.name,
        prompt=prompt or "-",
        negative_prompt=negative if spec.supports(Option.NEGATIVE_PROMPT) else "",
        parameters={"size": size, "n": 1} if size else {"n": 1},
    )
    asynchronous = spec.async_endpoint is not None
    # The images themselves are checked when sent (create_job); here, all the rest.
    problems = [*refs.problems] + [
        p.message
        for p in check_request(request, asynchronous=asynchronous)
        if not p.field.startswith(("images", "bbox_list"))
    ]
    return Column(spec, size, width, height, tuple(notes), tuple(problems), price, refs.sending)


@dataclass(frozen=True)
class Plan:
    """What one submit sends: each model's column, each seed's row."""

    prompt: str
    negative_prompt: str
    shape: str
    columns: tuple[Column, ...]
    seeds: tuple[int | None, ...]  # None: a new seed, chosen when sent
    currency: str = "USD"

    @property
    def images(self) -> int:
        return len(self.columns) * len(self.seeds)

    @property
    def cost(self) -> Decimal | None:
        """What it costs at most, when every model used has a price."""
        prices = [column.price for column in self.columns if column.price is not None]
        if not prices or len(prices) < len(self.columns):
            return None
        return sum(prices, Decimal(0)) * len(self.seeds)

    @property
    def cost_text(self) -> str:
        return money(self.cost) if self.cost is not None else ""

    @property
    def sendable(self) -> bool:
        return bool(self.columns) and not any(column.problems for column in self.columns)


def plan_exploration(
    membership: Membership,
    *,
    prompt: str,
    negative_prompt: str,
    model_names: list[str],
    seeds: list[int | None],
    shape: str,
    references: Items = (),
) -> Plan:
    """The plan of an exploration; `references`, the Edit form's images to send with it.
    A model that only edits is planned even without them, to say that it needs them (the
    form offers it when there are images on the Edit form)."""
    offered = {spec.name: spec for spec in explore_models(membership.team, references=True)}
    prices = ModelPrice.table()
    columns = tuple(
        _column(
            offered[name],
            prompt,
            negative_prompt,
            shape,
            prices.get(name),
            references_for(offered[name], membership, references),
        )
        for name in model_names
        if name in offered
    )
    return Plan(
        prompt=prompt,
        negative_prompt=negative_prompt,
        shape=shape,
        columns=columns,
        seeds=tuple(seeds),
        currency=ModelPrice.currency_in_use(),
    )


def start_exploration(
    membership: Membership, plan: Plan, *, now: datetime | None = None
) -> Exploration:
    """Queue every cell of the plan as a job, reserved in one transaction: all of them, or
    none (JobRefused says why, for the exploration as a whole)."""
    seeds = [seed if seed is not None else secrets.randbelow(SEED_MAX + 1) for seed in plan.seeds]
    moment = now or timezone.now()
    uploads = _fitted(plan)  # read and fitted once a model, before anything is written
    written: list[FieldFile] = []
    try:
        with transaction.atomic():
            exploration = Exploration.objects.create(
                team=membership.team,
                author=membership.user,
                prompt=plan.prompt,
                negative_prompt=plan.negative_prompt,
                shape=plan.shape,
                model_names=[column.spec.name for column in plan.columns],
                seeds=seeds,
                references=max((len(c.inputs) for c in plan.columns), default=0),
                created_at=moment,
            )
            for row, seed in enumerate(seeds):
                for place, column in enumerate(plan.columns):
                    # Each a moment after the last: the queue's order is the grid's.
                    moment += timedelta(microseconds=1)
                    job = _cell_job(membership, plan, column, seed, uploads[place], moment)
                    written += [item.image for item in job.inputs.all()]
                    ExplorationCell.objects.create(
                        exploration=exploration, job=job, row=row, column=place
                    )
    except JobRefused as refused:
        _delete_files(written)  # the rows went with the rollback: their files go too
        raise JobRefused([_as_a_whole(refused, membership, plan, moment)]) from None
    except BaseException:
        _delete_files(written)
        raise
    return exploration


def _fitted(plan: Plan) -> list[list[InputUpload]]:
    """Each column's reference images fitted to its model; JobRefused names one that
    cannot be."""
    fitted = []
    for column in plan.columns:
        try:
            fitted.append(uploads_for(column.inputs, column.spec) if column.inputs else [])
        except ImageRefused as refused:
            raise JobRefused(
                [Problem("__all__", f"Nothing was sent: {column.spec.label}: {refused}")]
            ) from None
    return fitted


def _cell_job(
    membership: Membership,
    plan: Plan,
    column: Column,
    seed: int,
    inputs: list[InputUpload],
    moment: datetime,
) -> Job:
    takes_negative = column.spec.supports(Option.NEGATIVE_PROMPT)
    return create_job(
        membership=membership,
        model=column.spec.name,
        prompt=plan.prompt,
        negative_prompt=plan.negative_prompt if takes_negative else "",
        parameters=column.parameters(seed),
        inputs=inputs,
        now=moment,
    )


def _delete_files(files: list[FieldFile]) -> None:
    for file in files:
        file.delete(save=False)


def _as_a_whole(
    refused: JobRefused, membership: Membership, plan: Plan, moment: datetime
) -> Problem:
    """Why the exploration was refused, said of all of it: the jobs one person may have
    in flight, the images left, the budget; else what its first refused job was told."""
    images = plan.images
    in_flight = Job.objects.filter(
        team_id=membership.team_id, author_id=membership.user_id, status__in=Job.ACTIVE
    ).count()
    most = membership.jobs_in_flight_limit
    if in_flight + images > most:
        return Problem(
            "__all__",
            f"This exploration sends {images} jobs; you may have {most} queued or running at "
            f"once and have {in_flight}. Nothing was sent: choose fewer models or seeds.",
        )
    for label, left, limit in QuotaCounter.images_left(membership, moment):
        if left < images:
            who = "Your team has" if label.endswith("for the team") else "You have"
            when = label.removesuffix(" for the team")
            return Problem(
                "__all__",
                f"{who} {left} of {limit} images left {when} and this exploration needs "
                f"{images}. Nothing was sent: choose fewer models or seeds.",
            )
    budget = QuotaCounter.budget_left(membership.team, moment)
    cost = plan.cost
    if budget is not None and cost is not None and cost > budget[0]:
        return Problem(
            "__all__",
            f"Your team has {budget[0]:.2f} {plan.currency} of its {budget[1]:.2f} "
            f"{plan.currency} budget left this month and this exploration may cost "
            f"{cost:.2f} {plan.currency}. Nothing was sent: choose fewer models or seeds.",
        )
    first = refused.problems[0]
    return Problem(first.field, f"Nothing was sent: {first.message}")

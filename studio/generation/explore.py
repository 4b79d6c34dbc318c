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
from django.urls import reverse
from django.utils import timezone

from studio.accounts.models import Membership, ModelPrice, QuotaCounter, Team, money
from studio.audit.models import Activity
from studio.dashscope.catalog import SEED_MAX, Kind, ModelSpec, Option
from studio.dashscope.types import GenerationRequest
from studio.dashscope.validation import Problem, check_request, parse_size
from studio.generation.forms import offered_models
from studio.generation.models import Exploration, ExplorationCell, GeneratedImage, Job, Vote
from studio.generation.modes import piece_only
from studio.generation.services import JobRefused, create_job
from studio.generation.sizes import size_choices
from studio.notifications import services as notifications

MOST_MODELS = 4
MOST_SEEDS = 4
SHAPES = {
    "1:1": "Square",
    "16:9": "Landscape 16:9",
    "4:3": "Landscape 4:3",
    "3:4": "Portrait 3:4",
    "9:16": "Portrait 9:16",
}


def explore_models(team: Team) -> tuple[ModelSpec, ...]:
    """The models an exploration may use: those the team may use from a prompt alone (a
    model offered there only for pieces of text and images makes no single picture)."""
    return tuple(
        spec
        for spec in offered_models(team, Kind.TEXT_TO_IMAGE)
        if not piece_only(spec, Kind.TEXT_TO_IMAGE)
    )


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

    @property
    def size_text(self) -> str:
        return f"{self.width}×{self.height}"

    def parameters(self, seed: int) -> dict[str, Any]:
        parameters: dict[str, Any] = {"size": self.size, "n": 1}
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


def _column(spec: ModelSpec, prompt: str, negative: str, shape: str, price: Any) -> Column:
    size, width, height, size_note = _sized(spec, shape)
    notes = [size_note] if size_note else []
    if negative and not spec.supports(Option.NEGATIVE_PROMPT):
        notes.append("takes no “Avoid”: sent without it")
    if not spec.supports(Option.SEED):
        notes.append("takes no seed: each row is a new picture")
    request = GenerationRequest.build(
        model=spec.name,
        prompt=prompt or "-",
        negative_prompt=negative if spec.supports(Option.NEGATIVE_PROMPT) else "",
        parameters={"size": size, "n": 1},
    )
    asynchronous = spec.async_endpoint is not None
    problems = [p.message for p in check_request(request, asynchronous=asynchronous)]
    return Column(spec, size, width, height, tuple(notes), tuple(problems), price)


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
    team: Team,
    *,
    prompt: str,
    negative_prompt: str,
    model_names: list[str],
    seeds: list[int | None],
    shape: str,
) -> Plan:
    offered = {spec.name: spec for spec in explore_models(team)}
    prices = ModelPrice.table()
    columns = tuple(
        _column(offered[name], prompt, negative_prompt, shape, prices.get(name))
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
                created_at=moment,
            )
            for row, seed in enumerate(seeds):
                for place, column in enumerate(plan.columns):
                    # Each a moment after the last: the queue's order is the grid's.
                    moment += timedelta(microseconds=1)
                    job = create_job(
                        membership=membership,
                        model=column.spec.name,
                        prompt=plan.prompt,
                        negative_prompt=(
                            plan.negative_prompt
                            if column.spec.supports(Option.NEGATIVE_PROMPT)
                            else ""
                        ),
                        parameters=column.parameters(seed),
                        now=moment,
                    )
                    ExplorationCell.objects.create(
                        exploration=exploration, job=job, row=row, column=place
                    )
    except JobRefused as refused:
        raise JobRefused([_as_a_whole(refused, membership, plan, moment)]) from None
    return exploration


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


# -- The grid --------------------------------------------------------------------------------


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

"""Quotas and budgets running out: told once per crossing of 80 % and of 100 % in a period.

Called when a job's charge settles, with the counters it settled (the person's day and
month, the team's day and month). Each crossing has a key naming its counter, which is a
period's own row, and the threshold: a later job in the same period crosses nothing new,
and the database refuses a second notification with the same key (two jobs settling at
once).
"""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse

from studio.accounts.models import Membership, QuotaCounter
from studio.notifications.models import Kind
from studio.notifications.services import notify

THRESHOLDS = (100, 80)  # highest first: a jump from 70 % to 100 % is told as 100 %
_PERIOD_WORDS = {"day": "today's", "month": "this month's"}


def crossed(spent: Decimal | int, room: Decimal | int) -> int | None:
    """The highest threshold `spent` has reached of `room`, or None."""
    if room <= 0:
        return None
    return next((t for t in THRESHOLDS if spent * 100 >= room * t), None)


def charge_settled(counter_ids: list[int]) -> None:
    for counter in QuotaCounter.objects.filter(pk__in=counter_ids).select_related("team"):
        if counter.user_id is not None:
            _person_quota(counter)
        elif counter.period == QuotaCounter.PeriodName.MONTH:
            _team_budget(counter)


def _person_quota(counter: QuotaCounter) -> None:
    user_id = counter.user_id
    if user_id is None:
        return
    membership = (
        Membership.objects.select_related("team")
        .filter(team_id=counter.team_id, user_id=user_id)
        .first()
    )
    if membership is None:
        return
    day = counter.period == QuotaCounter.PeriodName.DAY
    limit = membership.daily_limit if day else membership.monthly_limit
    if limit is None:
        return
    room = limit + counter.granted
    threshold = crossed(counter.used, room)
    if threshold is None:
        return
    text = (
        f"You have used {threshold} % of {_PERIOD_WORDS[counter.period]} images in "
        f"{counter.team.name}: {counter.used} of {room}."
    )
    notify(
        user_id,
        Kind.QUOTA,
        text,
        reverse("home"),
        team_id=counter.team_id,
        key=f"quota:{counter.pk}:{threshold}",
    )


def _team_budget(counter: QuotaCounter) -> None:
    team = counter.team
    if team.monthly_budget is None:
        return
    threshold = crossed(counter.cost_used, team.monthly_budget)
    if threshold is None:
        return
    text = (
        f"{team.name} has spent {threshold} % of this month's budget: "
        f"{counter.cost_used:.2f} of {team.monthly_budget:.2f}."
    )
    owners = Membership.objects.filter(team=team, role=Membership.Role.OWNER)
    for owner_id in owners.values_list("user_id", flat=True):
        notify(
            owner_id,
            Kind.QUOTA,
            text,
            reverse("home"),
            team_id=team.pk,
            key=f"budget:{counter.pk}:{threshold}",
        )

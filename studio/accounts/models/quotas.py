"""Quotas: images (and money) used and reserved per person and team, per day and month."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q

from studio.accounts.models.teams import Membership, Team


class QuotaExceeded(Exception):
    """A request would go past a limit; the message says what is left and when it renews."""


@dataclass(frozen=True)
class Period:
    name: str  # "day" or "month"
    starts_on: date
    renews_at: datetime

    @classmethod
    def containing(cls, name: str, moment: datetime) -> Period:
        today = moment.date()
        if name == "day":
            start, end = today, today + timedelta(days=1)
        else:
            start = today.replace(day=1)
            end = start + timedelta(days=calendar.monthrange(start.year, start.month)[1])
        return cls(name, start, datetime.combine(end, time.min, tzinfo=moment.tzinfo))

    def describe_renewal(self) -> str:
        if self.name == "day":
            return f"renews at {self.renews_at:%H:%M} UTC tomorrow"
        return f"renews on {self.renews_at:%-d %B}"


class QuotaCounterQuerySet(models.QuerySet["QuotaCounter"]):
    def current(self, period: str, moment: datetime) -> QuotaCounterQuerySet:
        """The counters of the day or month that contains `moment`."""
        return self.filter(period=period, starts_on=Period.containing(period, moment).starts_on)

    def of(self, team: Any, user: Any) -> QuotaCounterQuerySet:
        """One person's counters in a team, or with user None the team's own."""
        rows = self.filter(team=team)
        return rows.filter(user__isnull=True) if user is None else rows.filter(user=user)

    def of_person_and_team(self, membership: Any, moment: datetime) -> QuotaCounterQuerySet:
        """The person's and their team's counters of the day and the month containing
        `moment` (up to four)."""
        this_period = Q(period="day", starts_on=Period.containing("day", moment).starts_on) | Q(
            period="month", starts_on=Period.containing("month", moment).starts_on
        )
        return self.filter(
            this_period,
            Q(user__isnull=True) | Q(user=membership.user_id),
            team=membership.team_id,
        )


class QuotaCounter(models.Model):
    """Images used and reserved in one day or month, by one person or by a whole team.

    Reservations are one conditional UPDATE each, so concurrent submissions can never
    together pass a limit, on SQLite and PostgreSQL alike.
    """

    class PeriodName(models.TextChoices):
        DAY = "day", "Day"
        MONTH = "month", "Month"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="quota_counters")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quota_counters",
        help_text="Empty for the team as a whole.",
    )
    period = models.CharField(max_length=8, choices=PeriodName.choices)
    starts_on = models.DateField()
    used = models.PositiveIntegerField(default=0)
    reserved = models.PositiveIntegerField(default=0)
    # Extra images an admin granted for this period only, on top of the limit.
    granted = models.PositiveIntegerField(default=0)
    # Money, on the team's month counter only: spent on stored images, and held for jobs
    # still running, at each model's price when the job was created.
    cost_used = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    cost_reserved = models.DecimalField(max_digits=14, decimal_places=4, default=0)

    objects = QuotaCounterQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user", "period", "starts_on"],
                condition=Q(user__isnull=False),
                name="unique_person_quota_counter",
            ),
            models.UniqueConstraint(
                fields=["team", "period", "starts_on"],
                condition=Q(user__isnull=True),
                name="unique_team_quota_counter",
            ),
        ]

    def __str__(self) -> str:
        who = self.user or f"{self.team} (team)"
        return (
            f"{who}, {self.period} of {self.starts_on}: {self.used} used, {self.reserved} reserved"
        )

    @classmethod
    def reserve(
        cls,
        membership: Membership,
        images: int,
        moment: datetime,
        *,
        counter_ids: dict[tuple[int | None, str], int],
        cost: Decimal = Decimal(0),
        currency: str = "USD",
    ) -> list[int]:
        """Reserve `images` against every limit of the person and the team; the counters' ids.

        Call inside the transaction that creates the job, with `counter_ids` from
        current_ids() read before it: a refusal raises QuotaExceeded and the caller's
        rollback undoes the reservations already made.
        """
        ids = []
        for user_id, name, limit in cls._limits(membership):
            pk = counter_ids[(user_id, name)]
            rows = cls.objects.filter(pk=pk)
            if limit is not None:
                # The limit and any grant are read in the same statement that reserves:
                # a grant or a limit changed a moment ago applies, and is never raced.
                rows = rows.filter(reserved__lte=limit - images - F("used") + F("granted"))
            if not rows.update(reserved=F("reserved") + images):
                raise cls._refusal(pk, user_id, Period.containing(name, moment), limit, images)
            ids.append(pk)
        cls._reserve_money(membership.team, ids[-1], cost, currency, moment)
        return ids

    @classmethod
    def _refusal(
        cls, pk: int, user_id: int | None, period: Period, limit: int | None, images: int
    ) -> QuotaExceeded:
        """Why a reservation of `images` did not fit the counter `pk`: what is left of its
        limit (with any grant), and when it renews."""
        counter = cls.objects.get(pk=pk)
        room = limit + counter.granted if limit is not None else 0
        left = max(0, room - counter.used - counter.reserved) if limit else 0
        this = "today" if period.name == "day" else "this month"
        who = "You have" if user_id is not None else "Your team has"
        return QuotaExceeded(
            f"{who} {left} of {room} images left {this} and this request needs "
            f"{images}; the limit {period.describe_renewal()}."
        )

    @staticmethod
    def _limits(membership: Membership) -> tuple[tuple[int | None, str, int | None], ...]:
        """(user id, or None for the team's, period, limit or None) of every counter that
        applies to the person: their day and month, then the team's; the team's month last."""
        team = membership.team
        return (
            (membership.user_id, "day", membership.daily_limit),
            (membership.user_id, "month", membership.monthly_limit),
            (None, "day", team.images_per_day),
            (None, "month", team.images_per_month),
        )

    @classmethod
    def _reserve_money(
        cls, team: Team, counter_id: int, cost: Decimal, currency: str, moment: datetime
    ) -> None:
        """Hold `cost` on the team's month counter (the last of the ids), within its budget."""
        if not cost:
            return
        rows = cls.objects.filter(pk=counter_id)
        budget = team.monthly_budget
        if budget is not None:
            rows = rows.filter(cost_reserved__lte=budget - cost - F("cost_used"))
        if not rows.update(cost_reserved=F("cost_reserved") + cost):
            counter = cls.objects.get(pk=counter_id)
            assert budget is not None
            left = max(Decimal(0), budget - counter.cost_used - counter.cost_reserved)
            raise QuotaExceeded(
                f"Your team has {left:.2f} {currency} of its {budget:.2f} {currency} budget "
                f"left this month and this request may cost {cost:.2f} {currency}; the "
                f"budget {Period.containing('month', moment).describe_renewal()}."
            )

    @classmethod
    def images_left(cls, membership: Membership, moment: datetime) -> list[tuple[str, int, int]]:
        """(period, images left, limit) for each limit that applies to the person."""
        current = {
            (counter.user_id, counter.period): counter
            for counter in cls.objects.of_person_and_team(membership, moment)
        }
        rows = []
        for user_id, name, limit in cls._limits(membership):
            if limit is None:
                continue
            label = ("today" if name == "day" else "this month") + (
                "" if user_id is not None else " for the team"
            )
            counter = current.get((user_id, name))
            spent = (counter.used + counter.reserved) if counter else 0
            limit += counter.granted if counter else 0
            rows.append((label, max(0, limit - spent), limit))
        return rows

    @classmethod
    def budget_left(cls, team: Team, moment: datetime) -> tuple[Decimal, Decimal] | None:
        """(money left, budget) for the team this month, or None without a budget."""
        if team.monthly_budget is None:
            return None
        counter = cls.objects.of(team, None).current("month", moment).first()
        spent = (counter.cost_used + counter.cost_reserved) if counter else Decimal(0)
        return max(Decimal(0), team.monthly_budget - spent), team.monthly_budget

    @classmethod
    def clear_use(cls, membership: Membership, period: str, moment: datetime) -> int:
        """Set the person's images used this day or month back to 0; how many were cleared.

        Reservations of jobs still running stay and settle as usual. The team's own count
        keeps them: the provider made those images, and the team's limit is its spend.
        """
        with transaction.atomic():
            counter = (
                cls.objects.select_for_update()
                .of(membership.team_id, membership.user_id)
                .current(period, moment)
                .first()
            )
            if counter is None or not counter.used:
                return 0
            cls.objects.filter(pk=counter.pk).update(used=0)
            return counter.used

    @classmethod
    def grant(cls, membership: Membership, period: str, images: int, moment: datetime) -> None:
        """Let the person make `images` more in the current day or month."""
        counter = cls.current_for(membership.team, membership.user, period, moment)
        cls.objects.filter(pk=counter.pk).update(granted=F("granted") + images)

    @classmethod
    def current_ids(
        cls, membership: Membership, moment: datetime
    ) -> dict[tuple[int | None, str], int]:
        """The ids of the person's and the team's counters of this day and month, by (user id,
        or None for the team's, and period): read in one query, the missing made at zero."""
        ids: dict[tuple[int | None, str], int] = {
            (user_id, period): pk
            for pk, user_id, period in cls.objects.of_person_and_team(
                membership, moment
            ).values_list("pk", "user_id", "period")
        }
        for user_id, period, _limit in cls._limits(membership):
            if (user_id, period) not in ids:
                user = membership.user if user_id is not None else None
                ids[(user_id, period)] = cls.current_for(membership.team, user, period, moment).pk
        return ids

    @classmethod
    def current_for(cls, team: Team, user: Any, period: str, moment: datetime) -> QuotaCounter:
        """The counter of the period containing `moment`, made at zero if there is none."""
        counter, _ = cls.objects.get_or_create(
            team=team,
            user=user,
            period=period,
            starts_on=Period.containing(period, moment).starts_on,
        )
        return counter

    @classmethod
    def settle(
        cls,
        counter_ids: list[int],
        *,
        reserved: int,
        charged: int,
        unit_price: Decimal = Decimal(0),
    ) -> None:
        """Turn a reservation into use: charge what was made, release the rest.

        Row by row, in the order reserve() took them (the person's, then the team's; day,
        then month): a single UPDATE locks rows in whatever order the database reads them,
        and against a reservation taking the same team rows that can deadlock.
        """
        last = counter_ids[-1] if counter_ids else None
        for pk in counter_ids:
            changes = {"reserved": F("reserved") - reserved, "used": F("used") + charged}
            if pk == last and unit_price:
                # The team's month counter also holds the money (see reserve()).
                changes["cost_reserved"] = F("cost_reserved") - reserved * unit_price
                changes["cost_used"] = F("cost_used") + charged * unit_price
            cls.objects.filter(pk=pk).update(**changes)

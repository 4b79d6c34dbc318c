"""Usage for the admin: images made and what they cost, by day, person, model, team or
brand kit.

A job counts on the day it was requested. Images are those charged (stored); failed and
refused jobs are counted beside them with their error codes, so a bad day shows as one.
Money is what the ledger settled: each job's stored images at the price kept on its
reservation, so a later change to the price table leaves past months as they were billed,
and the report agrees with the budget. Models without a price count images and no money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    F,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Concat, TruncDate
from django.utils import timezone

from studio.accounts.models import ModelPrice
from studio.generation.models import Job, QuotaCharge

GROUPS = {
    "day": "Day",
    "person": "Person",
    "model": "Model",
    "team": "Team",
    "kit": "Brand kit",
}


def _keys(through: str = "") -> dict[str, Any]:
    """What rows are grouped by, read from a job or, `through` "job__", from a ledger row."""
    return {
        "day": TruncDate(f"{through}created_at"),
        "person": F(f"{through}author__username"),
        "model": F(f"{through}model"),
        # Names may repeat; the slug tells two teams of one name apart.
        "team": Concat(
            F(f"{through}team__name"),
            Value(" ("),
            F(f"{through}team__slug"),
            Value(")"),
            output_field=CharField(),
        ),
        # By the kit's name when the job used it, and its team's (kits of two teams may
        # share a name): a kit renamed or removed since still reads as the jobs were made.
        "kit": Case(
            When(**{f"{through}kit_name": ""}, then=Value("No kit")),
            default=Concat(
                F(f"{through}kit_name"),
                Value(" ("),
                F(f"{through}team__slug"),
                Value(")"),
                output_field=CharField(),
            ),
            output_field=CharField(),
        ),
    }


_KEYS = _keys()
_CHARGE_KEYS = _keys("job__")
FAILED = (Job.Status.FAILED, Job.Status.TIMED_OUT, Job.Status.CANCELED)


@dataclass
class UsageRow:
    key: str
    jobs: int = 0
    images: int = 0
    cost: Decimal = Decimal(0)
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def error_summary(self) -> str:
        return ", ".join(f"{code} ×{n}" for code, n in sorted(self.errors.items()))


@dataclass
class UsageReport:
    start: date
    end: date
    by: str
    rows: list[UsageRow]

    @property
    def total(self) -> UsageRow:
        total = UsageRow(key="Total")
        for row in self.rows:
            total.jobs += row.jobs
            total.images += row.images
            total.cost += row.cost
            total.failed += row.failed
            for code, n in row.errors.items():
                total.errors[code] = total.errors.get(code, 0) + n
        return total

    @property
    def currency(self) -> str:
        return ModelPrice.currency_in_use()

    @property
    def priced(self) -> bool:
        """Whether any model has a price: without one, every cost reads 0."""
        return ModelPrice.objects.exists()


def _jobs(start: date, end: date, team_id: int | None) -> QuerySet[Job]:
    zone = timezone.get_current_timezone()
    first = datetime.combine(start, time(), zone)
    after = datetime.combine(end + timedelta(days=1), time(), zone)
    jobs = Job.objects.filter(created_at__gte=first, created_at__lt=after)
    return jobs.filter(team_id=team_id) if team_id else jobs


def usage(start: date, end: date, by: str = "day", team_id: int | None = None) -> UsageReport:
    jobs = _jobs(start, end, team_id)
    rows: dict[str, UsageRow] = {}
    _count_jobs(rows, jobs, by)
    _add_costs(rows, jobs, by)
    _count_failures(rows, jobs, by)
    if by == "day":
        # Every day of the range, so a chart shows the quiet days as quiet.
        day = start
        while day <= end:
            _row(rows, day)
            day += timedelta(days=1)
    ordered = sorted(rows.values(), key=lambda r: r.key if by == "day" else (-r.images, r.key))
    return UsageReport(start=start, end=end, by=by, rows=ordered)


def _row(rows: dict[str, UsageRow], value: object) -> UsageRow:
    """The report's row for a group, made on first use."""
    label = value.isoformat() if isinstance(value, date) else str(value)
    return rows.setdefault(label, UsageRow(key=label))


def _count_jobs(rows: dict[str, UsageRow], jobs: QuerySet[Job], by: str) -> None:
    for item in (
        jobs.annotate(key=_KEYS[by])
        .values("key")
        .annotate(jobs=Count("id"), charged=Sum("images_charged"))
        .order_by()
    ):
        target = _row(rows, item["key"])
        target.jobs += item["jobs"]
        target.images += item["charged"] or 0


def _add_costs(rows: dict[str, UsageRow], jobs: QuerySet[Job], by: str) -> None:
    """What the ledger settled for the jobs: their stored images at the reserved price."""
    for item in (
        QuotaCharge.objects.filter(kind=QuotaCharge.Kind.SETTLE, job__in=jobs)
        .annotate(key=_CHARGE_KEYS[by])
        .values("key")
        .annotate(
            cost=Sum(F("images") * F("unit_price"), output_field=DecimalField(decimal_places=4))
        )
        .order_by()
    ):
        _row(rows, item["key"]).cost += item["cost"] or Decimal(0)


def _count_failures(rows: dict[str, UsageRow], jobs: QuerySet[Job], by: str) -> None:
    for item in (
        jobs.filter(status__in=FAILED)
        .annotate(key=_KEYS[by])
        .values("key", "error_code", "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        target = _row(rows, item["key"])
        target.failed += item["n"]
        code = item["error_code"] or item["status"]
        target.errors[code] = target.errors.get(code, 0) + item["n"]


CHART_BARS = 60


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


def chart_bars(report: UsageReport, *, width: int = 720, height: int = 200) -> list[Bar]:
    """Bars of images per row, laid out for an SVG the size given; drawn by the template.
    At most CHART_BARS: the latest days, or the rows with the most images."""
    rows = report.rows[-CHART_BARS:] if report.by == "day" else report.rows[:CHART_BARS]
    if not rows:
        return []
    top = max(max(r.images for r in rows), 1)
    step = width / len(rows)
    bars = []
    for index, item in enumerate(rows):
        bar_height = height * item.images / top
        bars.append(
            Bar(
                x=round(index * step + step * 0.1, 2),
                y=round(height - bar_height, 2),
                width=round(step * 0.8, 2),
                height=round(bar_height, 2),
                label=item.key,
                value=item.images,
            )
        )
    return bars

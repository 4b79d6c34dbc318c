"""A team's monthly budget in money: held when a job is created, settled for what was
stored, refused before anything is sent when it would be passed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from studio.accounts.models import ModelPrice, QuotaCounter, Team
from studio.generation.models import Job
from studio.generation.services import JobRefused
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.django_db


def month_counter(team: Team) -> QuotaCounter:
    return QuotaCounter.objects.get(team=team, user=None, period="month")


def with_budget(member, budget: str, price: str, model: str = "wan2.6-t2i") -> None:
    Team.objects.filter(pk=member.team_id).update(
        monthly_budget=Decimal(budget), member_jobs_in_flight=50
    )
    member.team.refresh_from_db()
    ModelPrice.objects.create(model=model, price_per_image=Decimal(price))


def test_a_request_that_would_pass_the_budget_is_refused_with_what_is_left(pipeline, member):
    with_budget(member, "0.10", "0.03")
    for _ in range(3):
        pipeline.submit(
            member, model="wan2.6-t2i", prompt="A cup", parameters={"size": "1280*1280", "n": 1}
        )
    with pytest.raises(JobRefused) as refused:
        pipeline.submit(
            member, model="wan2.6-t2i", prompt="A cup", parameters={"size": "1280*1280", "n": 1}
        )
    assert "Your team has 0.01 USD of its 0.10 USD budget left this month" in str(refused.value)
    assert "may cost 0.03 USD" in str(refused.value)
    assert Job.objects.count() == 3
    assert month_counter(member.team).cost_reserved == Decimal("0.09")


def test_the_money_settles_for_the_images_stored_and_is_released_on_failure(
    pipeline: Pipeline, member
):
    with_budget(member, "5.00", "0.25", model="wan2.5-t2i-preview")
    partial = pipeline.submit(
        member,
        model="wan2.5-t2i-preview",
        prompt="Four lamps #partial",
        parameters={"size": "1280*1280", "n": 4},
    )
    failed = pipeline.submit(
        member,
        model="wan2.5-t2i-preview",
        prompt="A lamp #fail",
        parameters={"size": "1280*1280", "n": 2},
    )
    assert month_counter(member.team).cost_reserved == Decimal("1.50")
    pipeline.drive()
    partial.refresh_from_db()
    failed.refresh_from_db()
    assert (partial.status, partial.images_charged) == (Job.Status.PARTIAL, 3)
    assert failed.status == Job.Status.FAILED
    counter = month_counter(member.team)
    assert counter.cost_used == Decimal("0.75") and counter.cost_reserved == 0
    left, budget = QuotaCounter.budget_left(member.team, pipeline.now())
    assert (left, budget) == (Decimal("4.25"), Decimal("5.00"))


def test_the_form_says_the_price_and_the_budget_left(client, member):
    with_budget(member, "2.00", "0.03")
    client.force_login(member.user)
    page = client.get(reverse("generate") + "?model=wan2.6-t2i").content.decode()
    assert "This request uses <strong data-cost-images>1 image</strong>" in page
    assert ">0.03 USD</strong>\n  at 0.03 USD an image." in page
    # A form sent back for a fix says the cost of what it asks for.
    page = client.post(
        reverse("generate"), {"model": "wan2.6-t2i", "prompt": "", "n": 3}
    ).content.decode()
    assert "This request uses <strong data-cost-images>3 images</strong>" in page
    assert ">0.09 USD</strong>" in page


def test_fractions_of_a_cent_in_a_price_are_shown_not_rounded_away(client, member):
    with_budget(member, "2.00", "0.035")
    client.force_login(member.user)
    page = client.get(reverse("generate") + "?model=wan2.6-t2i").content.decode()
    assert ">0.035 USD</strong>" in page
    assert "<strong>2.00 USD</strong> of the team's 2.00 USD budget left" in page

"""The usage report: totals by day, person, model and team, the CSV, and who may read it."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from studio.accounts.models import ModelPrice
from studio.generation.models import Job, QuotaCharge
from studio.generation.reports import usage
from tests.support.factories import create_job_row, create_membership, create_team, create_user

pytestmark = pytest.mark.django_db

MODELS = ["wan2.6-t2i", "qwen-image-max", "wan2.7-image-pro"]
PRICES = {"wan2.6-t2i": Decimal("0.03"), "qwen-image-max": Decimal("0.075")}


@pytest.fixture
def today():
    """The report's last day, read once: a test running across midnight still compares
    the same sixty days."""
    return timezone.localdate()


@pytest.fixture
def history(db, today):
    """1,000 jobs over 60 days by six people in two teams, some failed."""
    rnd = random.Random(7)
    teams = [create_team(name="North"), create_team(name="South")]
    people = [
        create_membership(team=teams[i % 2], user=create_user(username=f"p{i}")) for i in range(6)
    ]
    zone = timezone.get_current_timezone()
    jobs = []
    for _ in range(1000):
        member = rnd.choice(people)
        day = today - timedelta(days=rnd.randrange(60))
        failed = rnd.random() < 0.1
        jobs.append(
            Job(
                team=member.team,
                author=member.user,
                kind=Job.Kind.TEXT_TO_IMAGE,
                model=rnd.choice(MODELS),
                prompt="p",
                images_requested=4,
                status=Job.Status.FAILED if failed else Job.Status.SUCCEEDED,
                error_code=rnd.choice(["DataInspectionFailed", "InternalError"]) if failed else "",
                images_charged=0 if failed else rnd.randint(1, 4),
                created_at=timezone.datetime.combine(day, timezone.datetime.min.time(), zone)
                + timedelta(hours=rnd.randrange(24), minutes=rnd.randrange(60)),
            )
        )
    Job.objects.bulk_create(jobs)
    # Each job settled at the price of its day, as the worker settles it.
    QuotaCharge.objects.bulk_create(
        QuotaCharge(
            job=job,
            kind=QuotaCharge.Kind.SETTLE,
            images=job.images_charged,
            unit_price=PRICES.get(job.model, Decimal(0)),
        )
        for job in jobs
    )
    for model, price in PRICES.items():
        ModelPrice.objects.create(model=model, price_per_image=price)
    return jobs


def direct(jobs, key):
    images, failed = Counter(), Counter()
    for job in jobs:
        images[key(job)] += job.images_charged
        failed[key(job)] += job.status == Job.Status.FAILED
    return images, failed


@pytest.mark.parametrize(
    ("by", "key"),
    [
        ("day", lambda j: timezone.localtime(j.created_at).date().isoformat()),
        ("person", lambda j: j.author.username),
        ("model", lambda j: j.model),
        ("team", lambda j: f"{j.team.name} ({j.team.slug})"),
    ],
)
def test_totals_match_a_direct_count(history, today, by, key):
    report = usage(today - timedelta(days=59), today, by)
    images, failed = direct(history, key)
    shown = {row.key: row for row in report.rows}
    assert {k: r.images for k, r in shown.items() if r.images or r.jobs} == dict(images)
    assert {k: r.failed for k, r in shown.items() if r.failed} == {
        k: v for k, v in failed.items() if v
    }
    assert report.total.images == sum(j.images_charged for j in history)
    assert report.total.jobs == 1000
    if by == "day":
        assert len(report.rows) == 60  # quiet days too


def test_money_is_what_the_ledger_settled_even_after_a_price_change(history, today):
    # The provider raises its prices today: what was billed before stays as it was.
    ModelPrice.objects.filter(model="wan2.6-t2i").update(price_per_image=Decimal("0.5"))
    report = usage(today - timedelta(days=59), today, "model")
    costs = defaultdict(Decimal)
    for job in history:
        costs[job.model] += job.images_charged * PRICES.get(job.model, Decimal(0))
    assert {r.key: r.cost for r in report.rows} == {m: costs[m] for m in MODELS}
    assert costs["wan2.6-t2i"] > 0 and costs["wan2.7-image-pro"] == 0
    by_person = usage(today - timedelta(days=59), today, "person")
    assert by_person.total.cost == sum(costs.values())


def staff_reader():
    user = create_user(username="support", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    return user


def test_the_csv_matches_the_table(client, history, today):
    client.force_login(staff_reader())
    params = {
        "start": (today - timedelta(days=29)).isoformat(),
        "end": today.isoformat(),
        "by": "person",
    }
    page = client.get(reverse("admin-usage"), params).content.decode()
    response = client.get(reverse("admin-usage"), params | {"format": "csv"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["Person", "Jobs", "Images"]
    report = usage(today - timedelta(days=29), today, "person")
    expected = [[r.key, str(r.jobs), str(r.images)] for r in [*report.rows, report.total]]
    assert [row[:3] for row in rows[1:]] == expected
    for key, jobs, images in expected[:-1]:
        assert f'<td>{key}</td><td class="num">{jobs}</td><td class="num">{images}</td>' in page
    assert "data-usage-chart" in page and page.count("<rect ") == len(report.rows)


def test_usage_needs_staff_and_the_view_permission(client, history):
    member = create_membership(team=create_team(), user=create_user(username="plain"))
    client.force_login(member.user)
    assert client.get(reverse("admin-usage")).status_code == 302
    client.force_login(create_user(username="bare-staff", is_staff=True))
    assert client.get(reverse("admin-usage")).status_code == 403


def test_studio_health_shows_the_queue_errors_and_unstored_results(client):
    member = create_membership(team=create_team(), user=create_user(username="hq"))
    waiting = create_job_row(member)
    lost = create_job_row(
        member,
        model="qwen-image-max",
        status=Job.Status.FAILED,
        error_code="DownloadFailed",
        error_message="The result could not be downloaded.",
        finished_at=timezone.now(),
    )
    waiting.log("Provider call: submit", code="Throttling.RateQuota")
    client.force_login(staff_reader())
    page = client.get(reverse("admin-health")).content.decode()
    assert '<th scope="row">Queued</th><td>1</td>' in page
    assert "Throttling.RateQuota</code></th><td>1</td>" in page
    assert f"/admin/generation/job/{lost.pk}/change/" in page
    assert "not running" in page
    client.force_login(create_user(username="bare", is_staff=True))
    assert client.get(reverse("admin-health")).status_code == 403


def test_a_grouping_alone_in_the_address_reports_the_last_thirty_days_so(client, history, today):
    client.force_login(staff_reader())
    page = client.get(reverse("admin-usage"), {"by": "model"}).content.decode()
    report = usage(today - timedelta(days=29), today, "model")
    assert report.rows
    for row in report.rows:
        assert f"<td>{row.key}</td>" in page
    assert f'value="{(today - timedelta(days=29)).isoformat()}"' in page
    assert f'value="{today.isoformat()}"' in page


def test_two_teams_of_one_name_are_two_rows(today):
    for slug in ("pixel", "pixel-2"):
        member = create_membership(
            team=create_team(name="Pixel Works", slug=slug), user=create_user(username=slug)
        )
        create_job_row(member, images_charged=1, status=Job.Status.SUCCEEDED)
    report = usage(today - timedelta(days=1), today, "team")
    assert {row.key: row.images for row in report.rows} == {
        "Pixel Works (pixel)": 1,
        "Pixel Works (pixel-2)": 1,
    }


def test_a_chart_of_ninety_days_shows_the_latest_sixty(history, today):
    from studio.generation.reports import chart_bars

    bars = chart_bars(usage(today - timedelta(days=89), today, "day"))
    assert len(bars) == 60
    assert (bars[0].label, bars[-1].label) == (
        (today - timedelta(days=59)).isoformat(),
        today.isoformat(),
    )


def test_without_model_prices_costs_say_so_instead_of_reading_free(client):
    create_membership(team=create_team(name="Unpriced"), user=create_user(username="u"))
    staff = create_user(username="boss", is_staff=True)
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    report = client.get(reverse("admin-usage")).content.decode()
    assert "No model has a price yet, so every cost below reads 0." in report
    teams = client.get(reverse("admin:accounts_team_changelist")).content.decode()
    assert "no model prices set" in teams
    ModelPrice.objects.create(model="wan2.6-t2i", price_per_image=Decimal("0.03"))
    assert "No model has a price yet" not in client.get(reverse("admin-usage")).content.decode()
    teams = client.get(reverse("admin:accounts_team_changelist")).content.decode()
    assert "no model prices set" not in teams


def test_an_idle_dispatcher_reads_as_idle_with_when_it_last_ran(client):
    from studio.generation.models import LeaseTerm

    client.force_login(staff_reader())
    page = client.get(reverse("admin-health")).content.decode()
    assert "idle, with nothing to do" in page and "not running" not in page
    LeaseTerm.begin("dispatcher", "host:1:abc")
    LeaseTerm.end("dispatcher", "host:1:abc")
    page = client.get(reverse("admin-health")).content.decode()
    assert "idle, with nothing to do; it last ran at" in page


def test_view_on_site_with_an_id_that_is_no_jobs_key_is_not_found(client):
    from django.contrib.contenttypes.models import ContentType

    client.force_login(staff_reader())
    job_type = ContentType.objects.get_for_model(Job)
    assert client.get(f"/admin/r/{job_type.pk}/987654321/").status_code == 404
    # Still for staff only, as the admin's own.
    client.logout()
    assert client.get(f"/admin/r/{job_type.pk}/987654321/").status_code == 302

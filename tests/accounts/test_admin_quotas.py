"""The admin: quotas and model permissions, who may change them, and the audit log."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db.models import F
from django.urls import reverse

from studio.accounts.models import Membership
from studio.audit.models import Entry
from studio.generation.models import Job
from studio.generation.services import JobRefused, create_job
from tests.support.factories import (
    create_generated_image,
    create_membership,
    create_team,
    create_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def mid_month(monkeypatch):
    """One fixed moment for the whole test: quota counters are kept per day and month, and
    a test running across midnight or a month's end would count on two of them."""
    from datetime import UTC, datetime

    from django.utils import timezone

    moment = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: moment)


ONE_IMAGE = {
    "model": "wan2.6-t2i",
    "prompt": "A kettle",
    "parameters": {"size": "1280*1280", "n": 1},
}


@pytest.fixture
def member(db) -> Membership:
    team = create_team(name="Pixel Works", slug="pixel")
    team.member_jobs_in_flight = 100
    team.save()
    member = create_membership(team=team, user=create_user(username="dana"))
    Membership.objects.filter(pk=member.pk).update(images_per_month=10)
    member.refresh_from_db()
    return member


def staff(*permissions: str):
    user = create_user(username=f"staff{len(permissions)}", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label__in=["accounts", "audit"],
            codename__in=[
                "view_membership",
                "change_membership",
                "view_team",
                "change_team",
                "view_entry",
                *permissions,
            ],
        )
    )
    return user


def membership_form(member: Membership, **changes) -> dict:
    data = {
        "user": member.user_id,
        "team": member.team_id,
        "role": member.role,
        "images_per_day": member.images_per_day or "",
        "images_per_month": member.images_per_month or "",
        "jobs_in_flight": member.jobs_in_flight or "",
    }
    return data | changes


def spend(member: Membership, count: int) -> int:
    made = 0
    for _ in range(count):
        try:
            create_job(membership=Membership.objects.get(pk=member.pk), **ONE_IMAGE)
        except JobRefused:
            break
        made += 1
    return made


def test_raising_a_monthly_limit_from_10_to_12_lets_exactly_two_more_through(client, member):
    assert spend(member, 11) == 10
    client.force_login(staff("change_member_limits"))
    url = reverse("admin:accounts_membership_change", args=[member.pk])
    response = client.post(url, membership_form(member, images_per_month=12))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert spend(member, 5) == 2
    assert Job.objects.count() == 12
    entry = Entry.objects.get(action=Entry.Action.QUOTA)
    assert entry.changes == {"images_per_month": [10, 12]}
    assert entry.actor_name == "staff1" and entry.team == member.team


def test_without_the_quota_permission_usage_shows_and_limits_stay(client, member):
    spend(member, 3)
    client.force_login(staff())
    listing = client.get(reverse("admin:accounts_membership_changelist")).content.decode()
    assert "0 / 3 / 7" in listing  # used / reserved / left this month: three queued
    url = reverse("admin:accounts_membership_change", args=[member.pk])
    client.post(url, membership_form(member, images_per_month=500))
    member.refresh_from_db()
    assert member.images_per_month == 10
    assert not Entry.objects.filter(action=Entry.Action.QUOTA).exists()


def test_nobody_outside_staff_reaches_any_admin_page(client, member):
    client.force_login(member.user)
    urls = [reverse("admin:index")]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_the_audit_log_cannot_be_edited_even_by_a_superuser(client, member):
    root = create_user(username="root", is_staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)
    entry = Entry.objects.create(action=Entry.Action.QUOTA, target="x", actor_name="someone")
    change = reverse("admin:audit_entry_change", args=[entry.pk])
    assert client.get(reverse("admin:audit_entry_changelist")).status_code == 200
    assert client.post(change, {"target": "rewritten"}).status_code == 403
    assert client.post(reverse("admin:audit_entry_delete", args=[entry.pk])).status_code == 403
    entry.refresh_from_db()
    assert entry.target == "x"


def test_a_job_cannot_be_deleted_so_its_reservation_and_ledger_stay(client, member):
    root = create_user(username="root", is_staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)
    job = create_job(membership=member, **ONE_IMAGE)

    assert client.post(reverse("admin:generation_job_delete", args=[job.pk])).status_code == 403
    changelist = client.post(
        reverse("admin:generation_job_changelist"),
        {"action": "delete_selected", "_selected_action": [job.pk], "post": "yes"},
    )
    # Not an action here: refused ("No action selected"), back to the list.
    assert changelist.status_code == 302
    assert (
        "delete_selected"
        not in client.get(reverse("admin:generation_job_changelist")).content.decode()
    )
    assert Job.objects.filter(pk=job.pk).exists()
    assert job.quota_charges.count() == 1
    assert spend(member, 10) == 9  # the reservation still counts against the month


def team_form(team, **changes) -> dict:
    data = {
        "name": team.name,
        "slug": team.slug,
        "images_per_day": "",
        "images_per_month": "",
        "member_images_per_day": "",
        "member_images_per_month": "",
        "member_jobs_in_flight": team.member_jobs_in_flight,
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    return data | changes


def test_allowed_models_narrow_the_form_and_the_server_refuses_the_rest(client, member):
    client.force_login(staff("change_team_limits"))
    url = reverse("admin:accounts_team_change", args=[member.team_id])
    response = client.post(url, team_form(member.team, allowed_models=["wan2.6-t2i"]))
    assert response.status_code == 302, response.content.decode()[:3000]
    entry = Entry.objects.get(action=Entry.Action.PERMISSION)
    assert entry.changes == {"allowed_models": [[], ["wan2.6-t2i"]]}

    client.force_login(member.user)
    page = client.get(reverse("generate")).content.decode()
    assert 'value="wan2.6-t2i"' in page and 'value="qwen-image-max"' not in page
    forged = client.post(
        reverse("generate"),
        {"model": "qwen-image-max", "prompt": "A kettle", "size": "1664*928", "n": "1"},
    )
    assert "qwen-image-max is not a model your team may use." in forged.content.decode()
    assert not Job.objects.exists()
    with pytest.raises(JobRefused, match="not enabled for your team"):
        create_job(
            membership=member,
            **{**ONE_IMAGE, "model": "qwen-image-max", "parameters": {"size": "1664*928", "n": 1}},
        )
    # No edit model allowed: the edit form says so instead of offering one.
    assert client.get(reverse("edit")).status_code == 403


def test_member_changes_are_audited(client, member):
    client.force_login(staff("change_member_limits"))
    url = reverse("admin:accounts_membership_change", args=[member.pk])
    client.post(url, membership_form(member, role=Membership.Role.REVIEWER))
    entry = Entry.objects.get(action=Entry.Action.MEMBER)
    assert entry.changes == {"role": ["designer", "reviewer"]}


def test_a_membership_keeps_its_person_and_team_and_every_removal_is_audited(client, member):
    client.force_login(staff("change_member_limits", "delete_membership"))
    other_team = create_team(name="Zeta", slug="zeta")
    url = reverse("admin:accounts_membership_change", args=[member.pk])
    client.post(url, membership_form(member, team=other_team.pk, role=Membership.Role.OWNER))
    member.refresh_from_db()
    assert (member.team.slug, member.role) == ("pixel", Membership.Role.OWNER)

    # On the team's page, a row's person cannot be swapped for another either.
    stranger = create_user(username="stranger")
    row = {
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-0-id": member.pk,
        "memberships-0-team": member.team_id,
        "memberships-0-user": stranger.pk,
        "memberships-0-role": Membership.Role.OWNER,
    }
    team_page = reverse("admin:accounts_team_change", args=[member.team_id])
    assert client.post(team_page, team_form(member.team) | row).status_code == 302
    member.refresh_from_db()
    assert member.user.username == "dana"

    colleague = create_membership(team=member.team, user=create_user(username="ravi"))
    changelist = reverse("admin:accounts_membership_changelist")
    client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [member.pk, colleague.pk], "post": "yes"},
    )
    assert not Membership.objects.exists()
    removed = Entry.objects.filter(action=Entry.Action.MEMBER, changes__role__1=None)
    assert sorted(e.target for e in removed) == sorted([str(member), str(colleague)])


def test_a_grant_out_of_range_is_refused_with_its_range(client, member):
    client.force_login(staff("change_member_limits"))
    changelist = reverse("admin:accounts_membership_changelist")
    for amount in ("0", "100001", "9" * 30, "two"):
        action = {"action": "grant_images", "_selected_action": [member.pk], "amount": amount}
        page = client.post(changelist, action, follow=True).content.decode()
        assert "from 1 to 100,000" in page, amount
    assert not Entry.objects.filter(action=Entry.Action.GRANT).exists()


def test_resetting_a_persons_use_frees_their_limit_and_the_team_keeps_its_count(client, member):
    from django.utils import timezone

    from studio.accounts.models import QuotaCounter, Team

    Team.objects.filter(pk=member.team_id).update(images_per_month=15)
    assert spend(member, 12) == 10
    Job.objects.update(status=Job.Status.SUCCEEDED)
    QuotaCounter.objects.update(used=F("reserved"), reserved=0)  # as if all settled
    client.force_login(staff("change_member_limits"))
    action = {"action": "reset_period", "_selected_action": [member.pk]}
    client.post(reverse("admin:accounts_membership_changelist"), action)

    assert spend(member, 12) == 5  # the team's 15 hold: it used 10 already
    entries = Entry.objects.filter(action=Entry.Action.QUOTA).order_by("id")
    assert [e.changes for e in entries] == [
        {"used this day": [10, 0]},
        {"used this month": [10, 0]},
    ]
    team = QuotaCounter.objects.of(member.team_id, None).current("month", timezone.now()).get()
    assert team.used + team.reserved == 15


def test_generating_reviewing_deleting_and_downloading_are_audited(client, member, media):
    client.force_login(member.user)
    client.post(
        reverse("generate"),
        {"model": "wan2.6-t2i", "prompt": "A kettle", "size": "1280*1280", "n": "1"},
        REMOTE_ADDR="203.0.113.7",
    )
    generated = Entry.objects.get(action=Entry.Action.GENERATE)
    assert (generated.actor, generated.address) == (member.user, "203.0.113.7")
    assert generated.changes["model"] == [None, "wan2.6-t2i"]

    image = create_generated_image(member)
    Membership.objects.filter(pk=member.pk).update(role=Membership.Role.OWNER)
    client.post(reverse("gallery-review", args=[image.pk]), {"state": "rejected"})
    client.post(reverse("gallery-delete", args=[image.pk]))
    client.post(reverse("gallery-restore", args=[image.pk]))
    client.post(reverse("gallery-bulk"), {"action": "zip", "image": [image.pk]})
    actions = list(Entry.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["generate", "review", "delete", "restore", "download"]
    assert Entry.objects.get(action="review").changes == {"review_state": ["in_review", "rejected"]}


def test_granting_extra_images_is_audited_and_lets_exactly_those_through(client, member):
    assert spend(member, 12) == 10
    changelist = reverse("admin:accounts_membership_changelist")
    action = {
        "action": "grant_images",
        "_selected_action": [member.pk],
        "amount": "3",
        "period": "month",
    }
    client.force_login(staff())  # may read, may not grant
    client.post(changelist, action)
    assert spend(member, 5) == 0
    client.force_login(staff("change_member_limits"))
    assert client.post(changelist, action).status_code == 302
    assert spend(member, 5) == 3
    entry = Entry.objects.get(action=Entry.Action.GRANT)
    assert entry.changes == {"granted this month": [None, 3]}
    from django.utils import timezone

    from studio.accounts.models import QuotaCounter

    left = QuotaCounter.images_left(Membership.objects.get(pk=member.pk), timezone.now())
    assert ("this month", 0, 13) in left


def test_what_is_left_counts_the_persons_and_the_teams_use_not_a_colleagues(
    member, django_assert_num_queries
):
    from django.utils import timezone

    from studio.accounts.models import QuotaCounter, Team

    Team.objects.filter(pk=member.team_id).update(images_per_day=50)
    colleague = create_membership(team=member.team, user=create_user(username="busy"))
    spend(colleague, 4)
    spend(member, 3)
    member = Membership.objects.select_related("team", "user").get(pk=member.pk)
    with django_assert_num_queries(1):
        left = QuotaCounter.images_left(member, timezone.now())
    assert left == [("this month", 7, 10), ("today for the team", 43, 50)]


def test_the_member_list_sorts_by_images_used_this_month(client, member):
    busy = create_membership(team=member.team, user=create_user(username="busy"))
    spend(busy, 4)
    spend(member, 1)
    client.force_login(staff())
    changelist = reverse("admin:accounts_membership_changelist")
    columns = client.get(changelist).context["cl"].list_display
    by_month = columns.index("this_month")
    page = client.get(changelist, {"o": f"-{by_month}"}).content.decode()
    assert page.index(">busy<") < page.index(">dana<")
    assert "0 / 4 / ∞" in page and "0 / 1 / 9" in page  # busy has no monthly limit


def test_the_team_list_shows_the_teams_own_use_this_period(client, member):
    from studio.accounts.models import Team

    Team.objects.filter(pk=member.team_id).update(images_per_month=100)
    spend(member, 3)
    client.force_login(staff())
    page = client.get(reverse("admin:accounts_team_changelist")).content.decode()
    assert "0 / 3 / 97" in page


def test_every_model_price_is_in_one_currency(client, member):
    from decimal import Decimal

    from studio.accounts.models import ModelPrice

    root = create_user(username="root", is_staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)
    ModelPrice.objects.create(model="wan2.6-t2i", price_per_image=Decimal("0.03"))
    add = reverse("admin:accounts_modelprice_add")
    other = {"model": "qwen-image-2.0-pro", "price_per_image": "0.20"}
    refused = client.post(add, other | {"currency": "CNY"})
    assert refused.status_code == 200
    assert "The other prices are in USD" in refused.content.decode()
    assert client.post(add, other | {"currency": "usd"}).status_code == 302
    assert ModelPrice.objects.get(model="qwen-image-2.0-pro").currency == "USD"


def test_a_bookmark_to_the_price_list_from_before_the_move_still_arrives(client):
    root = create_user(username="root", is_staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)

    moved = client.get("/admin/generation/modelprice/add/?model=wan2.6-t2i")

    assert moved.status_code == 302
    assert moved["Location"] == "/admin/accounts/modelprice/add/?model=wan2.6-t2i"
    assert client.get(moved["Location"]).status_code == 200


def test_the_old_price_address_is_for_staff_and_a_form_sent_to_it_arrives_whole(client):
    anonymous = client.get("/admin/generation/modelprice/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]

    root = create_user(username="root", is_staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)
    sent = client.post("/admin/generation/modelprice/add/", {"model": "wan2.6-t2i"})
    assert sent.status_code == 307
    assert sent["Location"] == "/admin/accounts/modelprice/add/"

"""Personal access tokens: made and revoked by their person, shown once, kept hashed,
listed and revoked by the staff, audited; and what a token opens in the API."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from studio.accounts.models import Membership
from studio.api.models import AccessToken, digest_of
from studio.audit.models import Entry

pytestmark = pytest.mark.django_db


def make_token(client, user, **fields) -> str:
    client.force_login(user)
    data = {"name": "Spreadsheet batch", "scope": "read", "lifetime": "90"} | fields
    page = client.post(reverse("tokens"), data, follow=True).content.decode()
    found = re.search(r"data-token>(stu_[A-Za-z0-9_\-]+)<", page)
    assert found, page[:2000]
    return found[1]


def test_a_token_is_shown_once_and_kept_only_as_its_digest(client, designer):
    secret = make_token(client, designer)
    token = AccessToken.objects.get()
    assert token.digest == digest_of(secret) and secret not in str(
        list(AccessToken.objects.values())
    )
    assert (token.name, token.scope, token.user) == ("Spreadsheet batch", "read", designer)
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
    again = client.get(reverse("tokens")).content.decode()
    assert secret not in again and token.shown in again and "never used" in again
    assert client.get(reverse("tokens"))["Cache-Control"].startswith("max-age=0")
    entry = Entry.objects.get(action=Entry.Action.TOKEN)
    assert entry.target == f"Access token Spreadsheet batch ({token.shown}…)"
    assert secret not in str(entry.changes)


def test_revoked_by_its_person_and_not_by_another(client, designer, owner):
    secret = make_token(client, designer)
    token = AccessToken.objects.get()
    client.force_login(owner)
    assert client.post(reverse("token-revoke", args=[token.pk])).status_code == 404
    client.force_login(designer)
    client.post(reverse("token-revoke", args=[token.pk]))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AccessToken.find(secret) is None
    assert Entry.objects.filter(action=Entry.Action.TOKEN).count() == 2


def api(client, path: str, secret: str | None, **extra):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.get(f"/api/v1{path}", headers=headers, **extra)


def test_what_opens_nothing_says_how_to_get_in(client, designer):
    secret = make_token(client, designer)
    client.logout()  # the API reads the token, never the session
    for key in (None, "stu_nope", secret[:-2], "sk-0123456789abcdef"):
        answer = api(client, "/me", key)
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthenticated"
        assert "Authorization: Bearer" in answer.json()["message"]
    assert api(client, "/me", secret).json() == {
        "username": "dan",
        "team": "Acme Design",
        "role": "designer",
        "scope": "read",
    }
    token = AccessToken.objects.get()
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    assert api(client, "/me", secret).status_code == 401


def test_a_token_of_a_team_she_left_opens_nothing(client, designer, team):
    secret = make_token(client, designer)
    Membership.objects.filter(user=designer, team=team).delete()
    assert api(client, "/me", secret).status_code == 401


def test_each_use_records_when_and_from_where(client, designer):
    secret = make_token(client, designer)
    api(client, "/me", secret, REMOTE_ADDR="203.0.113.9")
    token = AccessToken.objects.get()
    assert token.last_used_address == "203.0.113.9"
    assert timezone.now() - token.last_used_at < timedelta(seconds=5)
    page = client.get(reverse("tokens")).content.decode()
    assert "from 203.0.113.9" in page


def test_the_staff_list_and_revoke_tokens_without_seeing_them(client, designer, db):
    from django.contrib.auth.models import User

    secret = make_token(client, designer)
    staff = User.objects.create_superuser("root", "root@example.com", "x")
    client.force_login(staff)
    listing = client.get("/admin/api/accesstoken/").content.decode()
    assert "Spreadsheet batch" in listing and secret not in listing
    token = AccessToken.objects.get()
    client.post(
        "/admin/api/accesstoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert AccessToken.find(secret) is None

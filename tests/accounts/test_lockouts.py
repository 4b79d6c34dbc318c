"""The login lockout: a username locked after repeated failures, an address trying many
usernames, the client's address behind proxies, and the limits from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.db.models import F
from django.test import Client
from django.urls import reverse

from tests.support.emulation import ROOT
from tests.support.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str, password: str, *, url: str = "/accounts/login/", **kw):
    return client.post(url, {"username": username, "password": password}, **kw)


def test_repeated_failures_lock_the_username_out_with_a_page_saying_until_when(
    client, designer, owner
):
    for _ in range(4):
        response = log_in(client, designer.username, "wrong")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in response.content.decode()
    fifth = log_in(client, designer.username, "wrong")
    until = AccessAttempt.objects.get().attempt_time + timedelta(minutes=15)
    page = " ".join(fifth.content.decode().split())
    assert fifth.status_code == 429
    assert f"this account is locked until {until:%H:%M} UTC (in 15 minutes)" in page
    assert "ask a staff member to unlock it" in page and 'name="password"' in page
    assert "script-src 'self'" in fifth["Content-Security-Policy"]

    # The right password changes nothing now, and neither does another address.
    for address in ("127.0.0.1", "203.0.113.9"):
        refused = log_in(client, designer.username, DEFAULT_PASSWORD, REMOTE_ADDR=address)
        assert refused.status_code == 429 and "locked until" in refused.content.decode()
        assert "_auth_user_id" not in client.session
    # A colleague behind the same address is not locked out.
    assert log_in(Client(), owner.username, DEFAULT_PASSWORD).status_code == 302

    # Once the lockout has run its course, the right password works.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=15, seconds=1))
    assert log_in(client, designer.username, DEFAULT_PASSWORD).url == reverse("home")


def test_a_successful_login_starts_the_count_again(client, designer):
    for _ in range(4):
        assert log_in(client, designer.username, "wrong").status_code == 200
    assert log_in(client, designer.username, DEFAULT_PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(4):
        assert log_in(client, designer.username, "wrong").status_code == 200
    assert log_in(client, designer.username, DEFAULT_PASSWORD).status_code == 302


def test_the_admin_login_counts_too_and_staff_unlock_in_the_admin(client, designer, owner):
    owner.is_staff = owner.is_superuser = True
    owner.save()
    admin_login = reverse("admin:login")
    for _ in range(4):
        assert log_in(client, designer.username, "wrong", url=admin_login).status_code == 200
    locked = log_in(client, designer.username, "wrong", url=admin_login)
    assert locked.status_code == 429 and "locked until" in locked.content.decode()
    assert log_in(client, designer.username, DEFAULT_PASSWORD).status_code == 429

    staff = Client()
    staff.force_login(owner)
    listing = staff.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert designer.username in listing and "wrong" not in listing
    attempt = AccessAttempt.objects.get(username=designer.username)
    assert "wrong" not in attempt.post_data  # the password is never kept
    unlock = staff.post(
        reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"}
    )
    assert unlock.status_code == 302
    assert log_in(client, designer.username, DEFAULT_PASSWORD).status_code == 302


def test_one_address_trying_many_usernames_is_refused_for_a_while(
    client, designer, owner, settings
):
    settings.STUDIO_LOGIN_ADDRESS_FAILURES = 6
    # One failure each for six usernames, real or not: each far under its own limit.
    for name in ("ana", "ben", "cy", "dee", owner.username, designer.username):
        assert log_in(client, name, "wrong", REMOTE_ADDR="198.51.100.7").status_code == 200

    refused = log_in(client, designer.username, DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.7")
    page = " ".join(refused.content.decode().split())
    first = AccessFailureLog.objects.order_by("attempt_time").first().attempt_time
    until = first + timedelta(minutes=15)
    assert refused.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed logins have come from your network" in page
    assert f"refused until {until:%H:%M} UTC (in 15 minutes)" in page
    # Refused tries are not counted, so the time the page gives holds.
    assert AccessFailureLog.objects.count() == 6
    # The same people from elsewhere are not held back.
    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert log_in(elsewhere, designer.username, DEFAULT_PASSWORD).status_code == 302

    # Once the oldest failure is older than the lockout, the address may try again.
    AccessFailureLog.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=15))
    welcome = log_in(client, designer.username, DEFAULT_PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert welcome.status_code == 302


def test_behind_trusted_proxies_the_clients_address_is_the_one_they_saw(client, settings):
    from django.test import RequestFactory

    from studio.http import client_address

    def address(remote: str, forwarded: str | None) -> str | None:
        headers = {"REMOTE_ADDR": remote}
        if forwarded is not None:
            headers["HTTP_X_FORWARDED_FOR"] = forwarded
        return client_address(RequestFactory().get("/", **headers))

    # Without a proxy, what the client writes in X-Forwarded-For is ignored.
    assert address("198.51.100.7", "10.9.9.9") == "198.51.100.7"
    settings.STUDIO_TRUSTED_PROXIES = 1
    # Our proxy appends the address it was reached from; what stands left of it is the
    # client's own writing.
    assert address("10.0.0.2", "6.6.6.6, 198.51.100.7") == "198.51.100.7"
    assert address("10.0.0.2", "2001:db8::1") == "2001:db8::1"
    assert address("10.0.0.2", None) == "10.0.0.2"
    assert address("10.0.0.2", "not-an-address") == "10.0.0.2"
    settings.STUDIO_TRUSTED_PROXIES = 2
    assert address("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.1") == "198.51.100.7"

    # The lockout counts that address, not the proxy's.
    settings.STUDIO_TRUSTED_PROXIES = 1
    log_in(client, "ana", "wrong", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert AccessFailureLog.objects.get().ip_address == "198.51.100.7"


def test_failed_login_records_a_month_old_are_dropped_by_the_reconcile_schedule(client):
    from studio.generation.tasks import reconcile

    log_in(client, "ana", "wrong")
    log_in(client, "ben", "wrong")
    AccessFailureLog.objects.filter(username="ana").update(
        attempt_time=F("attempt_time") - timedelta(days=31)
    )
    reconcile()
    assert list(AccessFailureLog.objects.values_list("username", flat=True)) == ["ben"]


def test_the_test_clients_login_still_works(client, designer):
    assert client.login(username=designer.username, password=DEFAULT_PASSWORD)
    assert client.get(reverse("home")).status_code == 200
    assert not Client().login(username=designer.username, password="wrong")


def test_the_failure_limit_and_lockout_length_come_from_the_environment():
    env = {
        **os.environ,
        "DJANGO_SECRET_KEY": "x",
        "STUDIO_LOGIN_FAILURES": "3",
        "STUDIO_LOGIN_LOCKOUT_MINUTES": "40",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import studio.settings as s; print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["3", "0:40:00"], result.stderr

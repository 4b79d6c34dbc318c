"""The security baseline: deploy checks, the Content-Security-Policy, CSRF everywhere, the
login lockout."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.test import Client
from django.urls import reverse

from tests.emulation import ROOT
from tests.factories import DEFAULT_PASSWORD, named_patterns

pytestmark = pytest.mark.django_db


def test_the_deploy_check_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECURE": "true",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "studio.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_html_pages_carry_a_policy_without_inline_or_eval_script(client, owner, team):
    client.force_login(owner)
    for name in ("home", "generate", "edit", "gallery", "gallery-activity", "gallery-trash"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        policy = response["Content-Security-Policy"]
        script = re.search(r"script-src ([^;]*)", policy)[1]
        assert script == "'self'", (name, policy)
        assert "frame-ancestors 'none'" in policy
        # Nothing the policy would block: no inline script anywhere in the page.
        html = response.content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (name, tag)
        assert not re.search(r"<[^>]+\son[a-z]+=", html), name  # no inline handlers


def test_every_state_changing_url_refuses_a_request_without_the_csrf_token(owner, team):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)
    samples = {
        "image_id": 1,
        "job_id": "00000000-0000-0000-0000-000000000000",
        "index": 0,
        "position": 1,
        "variant": "thumb",
        "staged_id": "00000000-0000-0000-0000-000000000000",
    }
    checked = 0
    for name, pattern in named_patterns().items():
        kwargs = {k: samples[k] for k in pattern.pattern.converters}
        url = reverse(name, kwargs=kwargs)
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            response = browser.post(url, {}, **headers)
            # Refused by the CSRF check before the view could act, or not a POST view.
            if response.status_code == 403:
                assert b"CSRF verification failed" in response.content, name
            else:
                assert response.status_code == 405, (name, response.status_code)
            checked += 1
    assert checked > 20


def test_a_person_sending_too_many_jobs_a_minute_gets_a_429_with_a_reason(
    client, settings, member, media
):
    settings.STUDIO_SUBMITS_PER_MINUTE = 3
    member.team.member_jobs_in_flight = 50
    member.team.save()
    client.force_login(member.user)
    form = {"model": "wan2.6-t2i", "prompt": "A kettle", "size": "1280*1280", "n": "1"}
    for _ in range(3):
        assert client.post(reverse("generate"), form).status_code == 302
    response = client.post(reverse("generate"), form)
    assert response.status_code == 429
    assert "You have sent 3 jobs in the last minute" in response.content.decode()
    from studio.generation.models import Job

    assert Job.objects.count() == 3


# -- login lockout -----------------------------------------------------------------------


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

"""The security baseline: the deploy check, the Content-Security-Policy, CSRF everywhere,
and each person's rate of jobs.

The rest of it, by the code it checks: the login lockout (tests/accounts/test_lockouts.py),
uploads and served files (tests/generation/test_uploads.py), result downloads
(tests/generation/worker/test_download_limits.py), and the scan of everything the studio
shows, logs and stores for secrets (tests/test_secrets.py)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.test import Client
from django.urls import reverse

from tests.support.emulation import ROOT
from tests.support.factories import named_patterns

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
        "board_id": 1,
        "kit_id": 1,
        "exploration_id": 1,
        "token_id": 1,
        "reference_id": 1,
        "notification_id": 1,
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

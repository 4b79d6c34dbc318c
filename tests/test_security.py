"""The security baseline: deploy checks, the Content-Security-Policy, CSRF everywhere, the
login lockout, and a scan of everything the studio shows, logs and stores for secrets."""

from __future__ import annotations

import importlib
import itertools
import logging
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.apps import apps
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ, Task
from django_q.signing import SignedPackage
from django_q.tasks import _sync, async_task

from studio.accounts.models import Membership
from studio.dashscope.client import DashScopeClient, RetryPolicy, Timeouts
from studio.gallery.models import Board
from studio.generation.models import GeneratedImage, Job, JobEvent, StagedImage
from studio.generation.worker import run_step
from tests.emulation import (
    API_KEY,
    ROOT,
    ServedEmulator,
    make_image,
    start_served_emulator,
    stop,
)
from tests.factories import (
    DEFAULT_PASSWORD,
    create_membership,
    create_team,
    create_user,
    named_patterns,
)

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


# -- the secret scan -----------------------------------------------------------------------
# Real work end to end with a recognisable key: jobs sent through the forms, run by
# django-q2's own worker code (the tasks the forms queued, as a cluster would run them)
# against a served emulator whose result URLs carry `Signature=`; then every log record,
# every page and partial a designer and a staff owner can open, and every row of the
# database, django-q2's queue and task results included, are searched for the key, `sk-`
# and `Signature=`.

# `sk-` not after a letter ("task-" is not a key); a signature with a value.
SECRET_IN_LOG = re.compile(r"(?<![A-Za-z])sk-(?!\*\*\*)|Signature=(?!\*\*\*)")
# Pages and rows have no business with even a redacted one.
SECRET_ANYWHERE = re.compile(r"(?<![A-Za-z])sk-|Signature=")


@pytest.fixture
def scan_emulator(tmp_path) -> Iterator[ServedEmulator]:
    served = start_served_emulator(
        tmp_path / "emulator.jsonl",
        "--pending-seconds",
        "0.2",
        "--running-seconds",
        "0.4",
        "--max-running",
        "20",
        "--submits-per-second",
        "50",
        # The first result download fails once: the client tries it again.
        "--fault",
        "result:500x1",
    )
    yield served
    stop(served)


def run_worker_until(done: Callable[[], bool], seen: list[dict], *, seconds: float = 120) -> None:
    """Hand each queued task to django-q2's worker and monitor (`_sync`, the package's own
    simulation of a task travelling through the cluster, which saves the task's result
    row), keeping each decoded queue payload, until `done`."""
    end = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < end, "the worker did not finish in time"
        queued = OrmQ.objects.order_by("id").first()
        if queued is None:
            # What the reconcile schedule does every minute: restart the dispatcher.
            async_task("studio.generation.tasks.reconcile")
            time.sleep(0.1)
            continue
        seen.append(SignedPackage.loads(queued.payload))
        queued.delete()
        _sync(queued.payload)


def all_finished() -> bool:
    return not Job.objects.filter(status__in=Job.OPEN).exists() and not OrmQ.objects.exists()


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def site_pages(browser: Client, who: str, samples: dict[str, list]) -> dict[str, bytes]:
    """Every GET of the site's own URLconf with every sample id, plain and as htmx."""
    pages: dict[str, bytes] = {}
    for name, pattern in named_patterns().items():
        converters = list(pattern.pattern.converters)
        for values in itertools.product(*(samples[c] for c in converters)):
            url = reverse(name, kwargs=dict(zip(converters, values, strict=True)))
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = browser.get(url, **headers)
                if response.status_code != 405:
                    assert_scripts_only_from_the_studio(response, url)
                    pages[f"{who} GET {url} {headers}"] = body_of(response)
    return pages


def assert_scripts_only_from_the_studio(response, url: str) -> None:
    """Every HTML answer, page or htmx partial, carries the policy."""
    if response.get("Content-Type", "").startswith("text/html"):
        policy = response.get("Content-Security-Policy", "")
        assert re.search(r"script-src 'self'(;|$)", policy), (url, policy)


def admin_pages(staff: Client) -> dict[str, bytes]:
    """The admin's index, reports, and the list and change pages of every registered model."""
    urls = [reverse("admin:index"), reverse("admin-usage"), reverse("admin-health")]
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        urls.append(reverse(f"{prefix}_changelist"))
        for pk in model._default_manager.values_list("pk", flat=True)[:20]:
            urls.append(reverse(f"{prefix}_change", args=[pk]))
    pages = {}
    for url in urls:
        response = staff.get(url)
        assert response.status_code == 200, url
        assert_scripts_only_from_the_studio(response, url)
        pages[f"staff GET {url}"] = body_of(response)
    return pages


def url_arguments(*, indexes: list[int]) -> dict[str, list]:
    """Every id there is now, as the values of the URL patterns' arguments."""
    return {
        "job_id": list(Job.objects.values_list("pk", flat=True)),
        "image_id": list(GeneratedImage.objects.values_list("pk", flat=True)),
        "board_id": list(Board.objects.values_list("pk", flat=True)) or [1],
        "staged_id": list(StagedImage.objects.values_list("pk", flat=True)),
        "index": indexes,
        "position": [1],
        "variant": ["thumb", "original"],
    }


def database_rows() -> dict[str, str]:
    rows = {}
    for model in apps.get_models():
        for number, row in enumerate(model._default_manager.values()):
            if model is OrmQ:
                row["payload"] = SignedPackage.loads(row["payload"])
            rows[f"{model._meta.label} #{number}"] = repr(row)
    return rows


def log_lines(records: list[logging.LogRecord]) -> list[str]:
    """Each record as every configured handler would write it, and as the test log does."""
    test_log = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    formatters = {id(test_log): test_log}
    for logger in [logging.root, *logging.root.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            formatter = handler.formatter or logging.Formatter()
            formatters[id(formatter)] = formatter
    return [f.format(record) for record in records for f in formatters.values()]


def leaks(texts: dict[str, str] | dict[str, bytes], key: str, pattern: re.Pattern) -> list[str]:
    found = []
    for where, text in texts.items():
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if key in text or pattern.search(text):
            found.append(where)
    return found


@pytest.mark.django_db(transaction=True)  # the worker's threads need committed data
def test_no_log_page_or_row_holds_the_api_key_or_a_signed_url(
    settings, tmp_path, caplog, monkeypatch, scan_emulator
):
    key = f"sk-{secrets.token_hex(16)}"
    settings.DASHSCOPE_API_KEY = key
    settings.DASHSCOPE_BASE_URL = scan_emulator.base_url
    settings.DASHSCOPE_EMULATED = True
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUDIO_PROVIDER_RUNNING_PER_MODEL = 20
    settings.STUDIO_PROVIDER_SUBMITS_PER_SECOND = 50
    # Short dispatcher slices, so the test can look between them.
    monkeypatch.setattr("studio.generation.tasks.DISPATCH_SLICE_SECONDS", 2)
    for name in ["", *logging.root.manager.loggerDict]:
        caplog.set_level(logging.DEBUG, logger=name or None)
    # The reconcile schedule, as its migration makes it: another transactional test may
    # have flushed it.
    importlib.import_module("studio.generation.migrations.0002_reconcile_schedule").create_schedule(
        apps, None
    )

    team = create_team(name="Night Shift", slug="night")
    team.member_jobs_in_flight = 50
    team.save()
    designer = create_user(username="dana")
    create_membership(team=team, user=designer, role=Membership.Role.DESIGNER)
    owner = create_user(username="olga", is_staff=True)
    owner.is_superuser = True
    owner.save()
    create_membership(team=team, user=owner, role=Membership.Role.OWNER)
    person, staff = Client(), Client()
    person.force_login(designer)
    staff.force_login(owner)

    # Sent through the forms: images made (one download failing once and tried again), a
    # task the provider fails, a prompt it refuses, a sync model, and an edit.
    t2i = {"model": "wan2.6-t2i", "size": "1280*1280", "n": "2"}
    for form in (
        t2i | {"prompt": "A lighthouse at dusk"},
        t2i | {"prompt": "A kettle #fail", "n": "1"},
        t2i | {"prompt": "A crowd #unsafe", "n": "1"},
        {"model": "qwen-image-max", "prompt": "A sign saying OPEN", "size": "1664*928", "n": "1"},
    ):
        assert person.post(reverse("generate"), form).status_code == 302, form
    staged = person.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("cup.png", make_image(800, 600)), "model": "wan2.7-image-pro"},
    )
    assert staged.status_code == 200
    edit = {
        "model": "wan2.7-image-pro",
        "prompt": "Make the cup in image 1 blue",
        "size": "2K",
        "n": "1",
        "input": [str(StagedImage.objects.get().pk)],
    }
    assert person.post(reverse("edit"), edit).status_code == 302
    payloads: list[dict] = []
    run_worker_until(all_finished, payloads)

    # One more job whose download fails until the worker pauses it: while it waits with its
    # signed URLs in hand, look at what the people and the staff can see of it.
    scan_emulator.control("faults", {"faults": "result:500x4"})
    assert (
        person.post(reverse("generate"), t2i | {"prompt": "A harbour", "n": "1"}).status_code == 302
    )
    waiting = Job.objects.get(prompt="A harbour")
    run_worker_until(
        lambda: Job.objects.filter(
            pk=waiting.pk, status=Job.Status.DOWNLOADING, download_failures__gte=1
        ).exists(),
        payloads,
    )
    waiting.refresh_from_db()
    assert "Signature=" in waiting.result_urls[0]  # held in its row, for the worker only
    pages: dict[str, bytes] = {}
    for who, browser in (("designer", person), ("owner", staff)):
        for url in (reverse("job-detail", args=[waiting.pk]), reverse("recent-jobs")):
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                pages[f"{who} GET {url} {headers} (downloading)"] = body_of(
                    browser.get(url, **headers)
                )
    for url in (reverse("admin:generation_job_change", args=[waiting.pk]), reverse("admin-health")):
        pages[f"staff GET {url} (downloading)"] = body_of(staff.get(url))
    run_worker_until(all_finished, payloads)

    outcomes = dict(Job.objects.values_list("prompt", "status"))
    assert outcomes == {
        "A lighthouse at dusk": Job.Status.SUCCEEDED,
        "A kettle #fail": Job.Status.FAILED,
        "A crowd #unsafe": Job.Status.FAILED,
        "A sign saying OPEN": Job.Status.SUCCEEDED,
        "Make the cup in image 1 blue": Job.Status.SUCCEEDED,
        "A harbour": Job.Status.SUCCEEDED,
    }
    assert JobEvent.objects.filter(code="DataInspectionFailed").exists()
    assert JobEvent.objects.filter(code="InternalError.Algo").exists()

    # Everything the people and the staff can open, with every id there is.
    person.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("mug.png", make_image(800, 600)), "model": "wan2.7-image-pro"},
    )
    samples = url_arguments(indexes=[0, 1])
    pages |= site_pages(person, "designer", samples)
    pages |= site_pages(staff, "owner", samples)
    pages |= admin_pages(staff)
    rows = database_rows()
    rows |= {f"queued task {i}": repr(payload) for i, payload in enumerate(payloads)}
    logs = dict(enumerate(log_lines(caplog.records)))

    assert leaks(pages, key, SECRET_ANYWHERE) == []
    assert leaks(rows, key, SECRET_ANYWHERE) == []
    assert leaks(logs, key, SECRET_IN_LOG) == []

    # And the scan saw what it was meant to: the pages, the tasks, the signed URLs going by.
    assert len(pages) > 200
    assert sum("/admin/" in where for where in pages) > 50
    tasks = {row.func for row in Task.objects.all()}
    assert {"studio.generation.tasks.dispatch", "studio.generation.tasks.run_job_step"} <= tasks
    assert len(payloads) >= Task.objects.count() >= 4
    # The scan read the schedule's row, and django-q's own records of the tasks it ran.
    assert any(where.startswith("django_q.Schedule #") for where in rows)
    assert any(where.startswith("django_q.Success #") for where in rows)
    task_ids = [job.provider_task_id for job in Job.objects.exclude(provider_task_id="")]
    assert all(any(task_id in line for line in logs.values()) for task_id in task_ids)
    assert any("Signature=***" in line for line in logs.values())  # scrubbed on the way


# -- uploads and served files --------------------------------------------------------------


NOT_IMAGES = {
    "page.png": b"<!doctype html><html><body><script>alert(document.cookie)</script>",
    "logo.png": b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
    # PNG's magic bytes in front of a page: sniffed as PNG, read as nothing.
    "polyglot.png": b"\x89PNG\r\n\x1a\n<html><script>alert(1)</script></html>",
    "animation.png": b"GIF89a\x01\x00\x01\x00<script>alert(1)</script>",
}


@pytest.mark.parametrize("name", NOT_IMAGES)
def test_a_file_that_is_not_an_accepted_image_is_refused_whatever_its_name(
    client, designer, settings, tmp_path, name
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(designer)
    response = client.post(
        reverse("stage-input"),
        {
            "file": SimpleUploadedFile(name, NOT_IMAGES[name], "image/png"),
            "model": "wan2.7-image-pro",
        },
        HTTP_HX_REQUEST="true",
    )
    card = response.content.decode()
    assert response.status_code == 422 and "data-refused" in card
    assert "<script>" not in card and "onload=" not in card
    assert not StagedImage.objects.exists()
    assert not (tmp_path / "media").exists() or not any((tmp_path / "media").rglob("*.*"))


def test_an_image_with_a_script_behind_it_is_stored_as_its_pixels_only(
    client, designer, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    client.force_login(designer)
    polyglot = make_image(600, 600) + b"<script>alert(1)</script>"
    response = client.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("x.png", polyglot), "model": "wan2.7-image-pro"},
    )
    assert response.status_code == 200
    served = client.get(reverse("staged-image", args=[StagedImage.objects.get().pk]))
    body = body_of(served)
    assert served["Content-Type"] == "image/png" and b"<script>" not in body
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Content-Security-Policy"].startswith("default-src 'none'")


def test_every_file_the_studio_serves_is_an_image_the_browser_will_not_run(
    pipeline, member, client
):
    from tests.pipeline import upload

    client.force_login(member.user)
    pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    pipeline.submit(
        member,
        model="wan2.7-image-pro",
        prompt="The boat in image 1, at night",
        parameters={"size": "2K", "n": 1},
        inputs=[upload(800, 600)],
    )
    pipeline.drive()
    client.post(
        reverse("stage-input"),
        {"file": SimpleUploadedFile("cup.png", make_image(800, 600)), "model": "wan2.7-image-pro"},
    )
    samples = url_arguments(indexes=[0])
    files = {}
    for name, pattern in named_patterns().items():
        converters = list(pattern.pattern.converters)
        for values in itertools.product(*(samples[c] for c in converters)):
            url = reverse(name, kwargs=dict(zip(converters, values, strict=True)))
            for query in ("", "?download=1"):
                response = client.get(url + query)
                kind = response.get("Content-Type", "").split(";")[0]
                if response.status_code == 200 and kind not in ("text/html", "application/json"):
                    files[(name, url + query)] = response
    image = GeneratedImage.objects.first()
    files[("gallery-bulk", "zip")] = client.post(
        reverse("gallery-bulk"), {"action": "zip", "image": [image.pk]}
    )

    for (_name, url), response in files.items():
        assert response["X-Content-Type-Options"] == "nosniff", url
        if response["Content-Type"] in ("image/png", "image/jpeg", "image/webp"):
            assert response["Content-Security-Policy"].startswith("default-src 'none'"), url
        else:
            assert response["Content-Disposition"].startswith("attachment;"), url
    assert {name for name, _ in files} == {"staged-image", "job-input", "job-image", "gallery-bulk"}
    downloads = [r for (n, url), r in files.items() if n == "job-image" and "download" in url]
    assert downloads and all(r["Content-Disposition"].startswith("attachment;") for r in downloads)


# -- result downloads through the worker -----------------------------------------------------


def test_result_downloads_that_never_end_are_cut_off_and_store_nothing(
    pipeline, member, media, result_server
):
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 2}
    )
    step = pipeline.until_handed_over(job)
    # The provider hands out URLs whose bodies never end: one endless, one trickling.
    Job.objects.filter(pk=job.pk).update(
        result_urls=[result_server.url("endless"), result_server.url("trickle")]
    )
    client = DashScopeClient(
        api_key=API_KEY,
        base_url="https://dashscope-intl.aliyuncs.com/api/v1",
        route=result_server.route,
        max_download_bytes=256 * 1024,
        timeouts=Timeouts(download=1.0),
        retry=RetryPolicy(attempts=1),
    )
    started = time.monotonic()
    run_step(step, client, limits=pipeline.limits, now=pipeline.now)
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    codes = list(job.events.exclude(code="").values_list("code", flat=True))
    # The endless body is cut at the cap once (the same URL would be as large again); the
    # trickle at the deadline, after which the job waits to try again later.
    assert codes.count("ResultTooLarge") == 1 and codes.count("DownloadTimeout") == 1
    assert elapsed < 1.0 + 2.0
    assert job.status == Job.Status.DOWNLOADING and job.download_failures == 1
    assert not GeneratedImage.objects.exists()
    assert not media.exists() or not any(path.is_file() for path in media.rglob("*"))
    assert len(result_server.requests) == 2


def test_a_step_stops_retrying_slow_downloads_before_its_task_would_be_killed(
    pipeline, member, media, result_server, monkeypatch
):
    """The cluster kills a task past its timeout as if it had crashed, spending one of the
    job's few attempts. A step's downloads stop retrying in time, and the job waits to try
    again in another step, its attempts untouched."""
    import studio.generation.worker as worker

    monkeypatch.setattr(worker, "STEP_SECONDS", 1.5)
    job = pipeline.submit(
        member, model="wan2.6-t2i", prompt="A boat", parameters={"size": "1280*1280", "n": 1}
    )
    step = pipeline.until_handed_over(job)
    Job.objects.filter(pk=job.pk).update(result_urls=[result_server.url("trickle")])
    # As configured for the worker: a minute per download, four tries.
    client = DashScopeClient(
        api_key=API_KEY,
        base_url="https://dashscope-intl.aliyuncs.com/api/v1",
        route=result_server.route,
    )
    started = time.monotonic()
    run_step(step, client, limits=pipeline.limits, now=pipeline.now)
    elapsed = time.monotonic() - started

    job.refresh_from_db()
    assert 1.5 <= elapsed < 1.5 + 1.0
    assert job.status == Job.Status.DOWNLOADING and job.download_failures == 1
    assert job.attempts == 0 and not job.lease_owner
    assert not GeneratedImage.objects.exists()


def test_a_steps_time_fits_inside_the_clusters_task_timeout():
    from django.conf import settings

    from studio.generation.tasks import DISPATCH_SLICE_SECONDS
    from studio.generation.worker import STEP_SECONDS

    step, killed_after = STEP_SECONDS, settings.Q_CLUSTER["timeout"]
    # A download may overrun the step's time by a connect and a read timeout.
    overrun = Timeouts().connect + Timeouts().read
    # The dispatcher's slice ends after the pass under way, which may be waiting on a
    # submit (a connect and a read timeout too); then it waits for the downloads it began.
    assert DISPATCH_SLICE_SECONDS + overrun + step + overrun < killed_after
    # A sync step makes one provider call (a refusal waits in the studio's queue, not in
    # the step), and its downloads start no retry once the step's time is up.
    assert Timeouts().connect + Timeouts().generate + overrun < killed_after

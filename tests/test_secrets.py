"""The secret scan: no API key or signed URL in any log line, page or row.

Real work end to end with a recognisable key: jobs sent through the forms, run by
django-q2's own worker code (the tasks the forms queued, as a cluster would run them)
against a served emulator whose result URLs carry `Signature=`; then every log record, every
page and partial a designer and a staff owner can open, and every row of the database,
django-q2's queue and task results included, are searched for the key, `sk-` and
`Signature=`.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator

import pytest
from django.apps import apps
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ, Task
from django_q.signing import SignedPackage
from django_q.tasks import _sync, async_task

from studio.accounts.models import Membership
from studio.generation.models import Job, JobEvent, StagedImage
from tests.support.emulation import ServedEmulator, make_image, start_served_emulator, stop
from tests.support.factories import create_membership, create_team, create_user, named_patterns
from tests.support.pages import body_of, url_arguments

pytestmark = pytest.mark.django_db

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
    monkeypatch.setattr("studio.generation.worker.runner.DISPATCH_SLICE_SECONDS", 2)
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

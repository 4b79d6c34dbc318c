"""Browser tests: Debian's Chromium driven by Playwright against a live studio.

The studio is served by pytest-django's live server; its worker is the real dispatcher,
run in a thread of the test process, talking to the served emulator. Screenshots go to
`.test-artifacts/screenshots/` to be looked at.

Without Chromium these tests are skipped, except where STUDIO_REQUIRE_BROWSER=1 (CI), where
a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage, Job
from tests.support.emulation import ROOT, ServedEmulator
from tests.support.factories import create_membership, create_team, create_user

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("STUDIO_TEST_ARTIFACTS", ROOT / ".test-artifacts"))
# The flags this machine's closed network needs; see the browser notes in the README.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _require_browser() -> None:
    required = os.environ.get("STUDIO_REQUIRE_BROWSER") == "1"
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing = f"Chromium is not at {CHROMIUM} (apt-get install -y chromium)"
    if missing:
        if required:
            pytest.fail(f"Browser tests are required here but {missing}.")
        pytest.skip(f"Browser tests skipped: {missing}.")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    _require_browser()
    # Playwright's sync API runs an event loop in this thread; Django's guard against ORM
    # calls from async code would otherwise refuse the test's own queries.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def designer_member(transactional_db) -> Membership:
    team = create_team(name="Pixel Works", slug="pixel")
    user = create_user(username="dana")
    return create_membership(team=team, user=user, role=Membership.Role.DESIGNER)


def signed_in_context(browser: Any, live_server: Any, user: Any, **options: Any) -> Any:
    """A browser context signed in as `user`: a laptop-sized window unless `options` say
    otherwise (a phone's viewport, touch)."""
    from django.conf import settings as django_settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    options.setdefault("viewport", {"width": 1440, "height": 900})
    context = browser.new_context(base_url=live_server.url, **options)
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": session.session_key,
                "url": live_server.url,
            }
        ]
    )
    context.set_default_timeout(15_000)
    return context


def finished_job(
    member: Membership,
    prompt: str,
    *,
    count: int = 1,
    size: tuple[int, int] = (640, 640),
    minutes_ago: int = 0,
    model: str = "wan2.6-t2i",
    picture: Callable[[int], Any] | None = None,
) -> Job:
    """A finished job with `count` images of `size` stored, original and thumbnail, as the
    worker leaves it; `picture(index)` draws each (a flat colour by default)."""
    import io
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.utils import timezone
    from PIL import Image

    at = timezone.now() - timedelta(minutes=minutes_ago)
    width, height = size
    job = Job.objects.create(
        team=member.team,
        author=member.user,
        kind=Job.Kind.TEXT_TO_IMAGE,
        model=model,
        prompt=prompt,
        parameters={"size": f"{width}*{height}", "n": count},
        images_requested=count,
        status=Job.Status.SUCCEEDED,
        created_at=at,
    )
    for index in range(count):
        drawn = (
            picture(index)
            if picture
            else Image.new("RGB", size, (60 + 40 * index % 195, 120, 200 - 30 * index % 200))
        )
        full, thumb = io.BytesIO(), io.BytesIO()
        drawn.save(full, format="PNG")
        small = (max(1, width * 256 // max(size)), max(1, height * 256 // max(size)))
        drawn.resize(small).save(thumb, format="WEBP")
        image = GeneratedImage(
            job=job,
            team=member.team,
            index=index,
            width=width,
            height=height,
            bytes=len(full.getvalue()),
            sha256="0" * 64,
            created_at=at,
        )
        image.image.save(f"results/{job.pk}/{index}.png", ContentFile(full.getvalue()), save=False)
        image.thumbnail.save(
            f"thumbs/{job.pk}/{index}.webp", ContentFile(thumb.getvalue()), save=False
        )
        image.save()
    return job


@pytest.fixture
def page(browser, live_server, designer_member, settings, tmp_path) -> Iterator[Any]:
    """A signed-in designer's tab on a laptop-sized window."""
    settings.MEDIA_ROOT = tmp_path / "media"
    context = signed_in_context(browser, live_server, designer_member.user)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # Anything the Content-Security-Policy blocked is reported on the console.
    blocked: list[str] = []
    tab.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not blocked, f"Blocked by the Content-Security-Policy: {blocked}"


def serious_accessibility_problems(page: Any) -> list[str]:
    """What axe-core finds of impact serious or critical on the page as it stands."""
    from axe_playwright_python.sync_playwright import Axe

    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in Axe().run(page).response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def screenshot(page: Any, name: str) -> Path:
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class ThreadWorker:
    """The real dispatcher, with downloads in threads, run until stopped."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="browser-test-worker", daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection

        from studio.generation.worker.provider import get_client
        from studio.generation.worker.runner import dispatch_for

        client = get_client(retries=False)
        downloads = get_client()
        try:
            while not self.stopping.is_set():
                if not dispatch_for(0.5, client, "browser-test", downloads=downloads):
                    self.stopping.wait(0.2)
        except BaseException as error:
            self.error = error
        finally:
            client.close()
            downloads.close()
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30)


@pytest.fixture
def worker(served_emulator: ServedEmulator, settings, monkeypatch) -> Iterator[ServedEmulator]:
    """Jobs created in the browser run to the end against the served emulator. A sync
    call (a streamed piece, a sync-only model) is made by a job step, which the dispatcher
    hands to the task queue; no queue runs here, so each such step runs in a thread."""
    from studio.generation import tasks
    from studio.generation.worker import dispatcher

    settings.DASHSCOPE_BASE_URL = served_emulator.base_url
    settings.DASHSCOPE_EMULATED = True
    settings.DASHSCOPE_API_KEY = "sk-browser-test"
    steps: list[threading.Thread] = []

    def run_step(job_id: str) -> None:
        from django.db import connection

        try:
            tasks.run_job_step(job_id)
        finally:
            connection.close()

    def enqueue(job: Job) -> None:
        steps.append(threading.Thread(target=run_step, args=(str(job.pk),), daemon=True))
        steps[-1].start()

    monkeypatch.setattr(dispatcher, "enqueue_job_step", enqueue)
    running = ThreadWorker()
    running.thread.start()
    yield served_emulator
    running.stop()
    for step in steps:
        step.join(timeout=30)
    if running.error:
        raise running.error


def received(emulator: ServedEmulator, model: str) -> list[dict[str, Any]]:
    """The bodies the emulator received for a model, oldest first."""
    bodies = []
    for line in emulator.log_path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        body = entry.get("body")
        if isinstance(body, dict) and body.get("model") == model:
            bodies.append(body)
    return bodies


def stored_image(
    member, prompt: str, color: tuple[int, int, int], minutes_ago: int, size=(640, 640)
):
    """A finished job with one image of one colour on disk, as the worker leaves it."""
    job = finished_job(
        member,
        prompt,
        size=size,
        minutes_ago=minutes_ago,
        picture=lambda _: Image.new("RGB", size, color),
    )
    return job.images.get()


def job_ended(job_id: object, timeout: float = 60.0) -> Job:
    """The job once it has ended, run by the `worker` fixture; its history if it does not."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if not job.is_open:
            return job
        time.sleep(0.2)
    history = [str(event) for event in Job.objects.get(pk=job_id).events.all()]
    raise AssertionError(f"Job {job_id} did not end in time: {history}")

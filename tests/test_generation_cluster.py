"""The real worker (`manage.py qcluster` processes) against the served emulator, killed.

These tests share the test database with the cluster subprocesses, so they run with real
transactions. The reconcile schedule runs once a minute; to keep the tests short they call
the same reconcile function every two seconds, as a faster schedule would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from django.db import connection

from studio.accounts.models import Membership, QuotaCounter
from studio.generation.models import GeneratedImage, Job
from studio.generation.services import create_job
from studio.generation.tasks import reconcile
from tests.emulation import ROOT, ServedEmulator, start_served_emulator, stop
from tests.factories import create_membership, create_team, create_user

pytestmark = pytest.mark.django_db(transaction=True)
# How the worker is started, here and in compose.yaml (tests/test_deploy.py compares).
WORKER_COMMAND = ["manage.py", "qcluster"]
T2I = {
    "model": "wan2.6-t2i",
    "prompt": "A harbour at night",
    "parameters": {"size": "1280*1280", "n": 1},
}


def database_url() -> str:
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


class Cluster:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *WORKER_COMMAND],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)  # the whole group: every worker too
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # SIGTERM to the cluster's main process only: it stops its workers itself, and
            # signalling them too would leave it waiting for workers already gone.
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)  # anything left behind


@pytest.fixture
def fleet(tmp_path, settings) -> Iterator[tuple[ServedEmulator, Callable[[], Cluster]]]:
    settings.MEDIA_ROOT = tmp_path / "media"
    emulator = start_served_emulator(
        tmp_path / "emulator.jsonl",
        "--pending-seconds",
        "0.2",
        "--running-seconds",
        "4",
        "--max-running",
        "20",
        "--submits-per-second",
        "50",
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "STUDIO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DASHSCOPE_BASE_URL": emulator.base_url,
        "DASHSCOPE_API_KEY": "sk-cluster-test",
        "STUDIO_PROVIDER_RUNNING_PER_MODEL": "20",
        "STUDIO_PROVIDER_SUBMITS_PER_SECOND": "50",
        "STUDIO_DISPATCHER_LEASE_SECONDS": "6",
    }
    clusters: list[Cluster] = []

    def new_cluster() -> Cluster:
        cluster = Cluster(env, tmp_path / "cluster.log")
        clusters.append(cluster)
        return cluster

    yield emulator, new_cluster
    for cluster in clusters:
        cluster.stop()
    stop(emulator)


def wait_for(
    condition: Callable[[], bool], seconds: float, *, every: Callable[[], None] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        if every:
            every()
        time.sleep(0.5)


def emulator_stats(emulator: ServedEmulator) -> dict:
    return httpx.get(emulator.base_url.removesuffix("/api/v1") + "/_emulator/stats").json()


def make_member() -> Membership:
    team = create_team(name="Night Shift", slug="night")
    team.member_jobs_in_flight = 50
    team.save()
    return create_membership(team=team, user=create_user(username="nora"))


def test_sigkill_of_the_whole_cluster_loses_and_duplicates_nothing(fleet, settings):
    emulator, new_cluster = fleet
    member = make_member()
    jobs = [create_job(membership=member, **T2I) for _ in range(20)]
    first = new_cluster()
    first.start()
    wait_for(lambda: emulator_stats(emulator)["tasks"].get("RUNNING", 0) == 20, 60)
    first.kill()
    assert Job.objects.filter(status__in=Job.OPEN).count() == 20

    second = new_cluster()
    second.start()
    wait_for(lambda: not Job.objects.filter(status__in=Job.OPEN).exists(), 120, every=reconcile)
    outcomes = set(Job.objects.values_list("status", "error_code", "error_message"))
    assert {status for status, _, _ in outcomes} == {Job.Status.SUCCEEDED}, outcomes
    assert emulator_stats(emulator)["counts"]["submitted"] == 20
    assert GeneratedImage.objects.count() == 20
    assert GeneratedImage.objects.values("job").distinct().count() == 20
    files = sorted((settings.MEDIA_ROOT / "results").rglob("*.png"))
    assert len(files) == 20
    person = QuotaCounter.objects.get(user=member.user, period="day")
    assert (person.used, person.reserved) == (20, 0)
    assert all(job.provider_task_id for job in Job.objects.filter(pk__in=[j.pk for j in jobs]))


def test_a_cluster_killed_while_a_submit_is_in_flight_adopts_the_task(fleet):
    emulator, new_cluster = fleet
    member = make_member()
    # The emulator creates the task, then holds its answer: the kill lands in between.
    httpx.post(
        emulator.base_url.removesuffix("/api/v1") + "/_emulator/faults",
        json={"faults": "submit:slow=30x1"},
    )
    job = create_job(membership=member, **T2I)
    first = new_cluster()
    first.start()
    wait_for(lambda: emulator_stats(emulator)["counts"].get("submitted", 0) == 1, 30)
    first.kill()
    job.refresh_from_db()
    assert job.status == Job.Status.SUBMITTING and not job.provider_task_id

    second = new_cluster()
    second.start()
    wait_for(lambda: not Job.objects.filter(status__in=Job.OPEN).exists(), 120, every=reconcile)
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error_message
    assert emulator_stats(emulator)["counts"]["submitted"] == 1
    assert job.images.count() == 1

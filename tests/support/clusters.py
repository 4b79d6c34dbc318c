"""Real worker clusters (`manage.py qcluster` processes) against a served emulator.

A pytest plugin: the `fleet` fixture starts the emulator and any clusters a test asks
for, and stops every one of them afterwards, killed or not.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from studio.accounts.models import Membership
from studio.generation.models import GeneratedImage, Job
from studio.generation.tasks import reconcile
from tests.support.emulation import ROOT, ServedEmulator, start_served_emulator, stop
from tests.support.factories import create_membership, create_team, create_user
from tests.support.waiting import wait_for

# How the worker is started, here and in compose.yaml (tests/ops/test_deploy.py compares).
WORKER_COMMAND = ["manage.py", "qcluster"]


def database_url() -> str:
    settings = connection.settings_dict
    if settings["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:"
        f"{settings['PORT'] or 5432}/{settings['NAME']}"
    )


QCLUSTER = [sys.executable, *WORKER_COMMAND]
# The same cluster, except that steps on a "#crash-worker" job kill their own process.
CRASHING_QCLUSTER = [sys.executable, "tests/support/crashing_qcluster.py"]


class Cluster:
    def __init__(self, env: dict[str, str], log: Path, argv: list[str]) -> None:
        self.env, self.log, self.argv = env, log, argv
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pids(self) -> set[int]:
        """The cluster's processes: its session leader and every worker in its group."""
        assert self.process is not None
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The fields after the command name (which may hold spaces): state, ppid, pgrp.
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:
                    found.add(int(stat.parent.name))
        return found

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


class Fleet:
    """A served emulator and the clusters started against it, all stopped at the end."""

    def __init__(self, tmp_path: Path, media: Path) -> None:
        self.tmp_path, self.media = tmp_path, media
        self.emulator: ServedEmulator | None = None
        self.env: dict[str, str] = {}
        self.clusters: list[Cluster] = []

    def start_emulator(self, *, running_seconds: float, max_running: int, **env: str) -> None:
        self.emulator = start_served_emulator(
            self.tmp_path / "emulator.jsonl",
            "--pending-seconds",
            "0.2",
            "--running-seconds",
            str(running_seconds),
            "--max-running",
            str(max_running),
            "--submits-per-second",
            "50",
        )
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "STUDIO_MEDIA_ROOT": str(self.media),
            "DASHSCOPE_BASE_URL": self.emulator.base_url,
            "DASHSCOPE_EMULATED": "true",
            "DASHSCOPE_API_KEY": "sk-cluster-test",
            "STUDIO_PROVIDER_RUNNING_PER_MODEL": str(max_running),
            "STUDIO_PROVIDER_SUBMITS_PER_SECOND": "50",
            "STUDIO_DISPATCHER_LEASE_SECONDS": "6",
            **env,
        }

    def new_cluster(self, argv: list[str] = QCLUSTER) -> Cluster:
        cluster = Cluster(self.env, self.tmp_path / f"cluster-{len(self.clusters)}.log", argv)
        self.clusters.append(cluster)
        return cluster

    def stats(self) -> dict:
        assert self.emulator is not None
        return self.emulator.control("stats")

    def close(self) -> None:
        for cluster in self.clusters:
            cluster.stop()
        if self.emulator:
            stop(self.emulator)


@pytest.fixture
def fleet(tmp_path, settings) -> Iterator[Fleet]:
    settings.MEDIA_ROOT = tmp_path / "media"
    world = Fleet(tmp_path, settings.MEDIA_ROOT)
    yield world
    world.close()


# -- A job for the clusters to run, and what they should have stored -------------------------

T2I = {
    "model": "wan2.6-t2i",
    "prompt": "A harbour at night",
    "parameters": {"size": "1280*1280", "n": 1},
}


def make_member() -> Membership:
    team = create_team(name="Night Shift", slug="night")
    team.member_jobs_in_flight = 50
    team.save()
    return create_membership(team=team, user=create_user(username="nora"))


def wait_until_done(seconds: float) -> None:
    wait_for(lambda: not Job.objects.filter(status__in=Job.OPEN).exists(), seconds, every=reconcile)


def assert_each_job_stored_once(count: int, media: Path) -> None:
    assert GeneratedImage.objects.count() == count
    assert GeneratedImage.objects.values("job").distinct().count() == count
    assert len(sorted((media / "results").rglob("*.png"))) == count

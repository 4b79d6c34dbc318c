"""A real worker (`manage.py qcluster`) seen alive by its heartbeat, and stopped by SIGTERM.

Like tests/ops/test_cluster.py, these share the test database with the cluster's
processes, so they run with real transactions.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from studio.generation.models import Job, LeaseTerm, WorkerHeartbeat, WorkerLease
from studio.generation.services import create_job
from studio.generation.worker import shutdown
from studio.generation.worker.runner import dispatch_for
from tests.support.clusters import (
    QCLUSTER,
    T2I,
    Cluster,
    assert_each_job_stored_once,
    database_url,
    make_member,
    wait_until_done,
)
from tests.support.compose import read_compose
from tests.support.emulation import ROOT
from tests.support.pipeline import answer_held, in_background, make_pipeline
from tests.support.waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_env(tmp_path, settings) -> dict[str, str]:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STUDIO_WORKER_HEARTBEAT_SECONDS = 1
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "STUDIO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "STUDIO_WORKER_HEARTBEAT_SECONDS": "1",
        "DASHSCOPE_API_KEY": "sk-lifecycle-test",
    }


@pytest.fixture
def clusters(worker_env, tmp_path) -> Iterator[list[Cluster]]:
    started: list[Cluster] = []
    yield started
    for cluster in started:
        cluster.stop()


def run(env: dict[str, str], argv: list[str]) -> int:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=60).returncode


def compose_worker_probe() -> list[str]:
    """The worker's health check in compose.yaml, run with this interpreter."""
    kind, python, *argv = read_compose()["services"]["worker"]["healthcheck"]["test"]
    assert (kind, python) == ("CMD", "python")
    return [sys.executable, *argv]


def test_a_running_cluster_is_seen_alive_and_a_killed_one_is_not(
    client, worker_env, clusters, tmp_path
):
    cluster = Cluster(worker_env, tmp_path / "cluster.log", QCLUSTER)
    clusters.append(cluster)
    cluster.start()
    # The worker is idle: no job, no task. Its heartbeat shows it anyway.
    wait_for(lambda: WorkerHeartbeat.objects.exists(), 30)

    response = client.get("/healthz/worker")
    assert response.status_code == 200
    (worker,) = response.json()["workers"]
    assert f":{cluster.process.pid}:" in worker["name"]
    assert run(worker_env, compose_worker_probe()) == 0
    assert run(worker_env, [sys.executable, "manage.py", "worker_health"]) == 0

    cluster.kill()
    # Three intervals of silence: the row is still there, but no longer fresh.
    wait_for(lambda: client.get("/healthz/worker").status_code == 503, 15, interval=0.2)
    assert WorkerHeartbeat.objects.exists()
    assert client.get("/healthz/worker").status_code == 503
    assert run(worker_env, compose_worker_probe()) == 1
    assert run(worker_env, [sys.executable, "manage.py", "worker_health"]) == 1


SIGNAL_TARGETS = {
    # What `docker stop` and Kubernetes do: the container's main process only.
    "main process": lambda process: process.send_signal(signal.SIGTERM),
    # What systemd (KillMode=control-group), supervisord's stopasgroup and a shell's
    # `kill -- -PGID` do: every process of the cluster at once.
    "process group": lambda process: os.killpg(process.pid, signal.SIGTERM),
}


@pytest.mark.parametrize("target", SIGNAL_TARGETS)
def test_sigterm_lets_a_running_download_finish_and_frees_the_dispatcher(target, fleet, settings):
    fleet.start_emulator(
        running_seconds=1,
        max_running=20,
        # The default: a dispatcher that dies holding it blocks its successor for 45 s.
        STUDIO_DISPATCHER_LEASE_SECONDS="45",
        STUDIO_WORKER_HEARTBEAT_SECONDS="1",
    )
    fleet.emulator.control("faults", {"faults": "result:slow=3x*"})  # every download: 3 s
    member = make_member()
    jobs = [create_job(membership=member, **T2I) for _ in range(3)]
    first = fleet.new_cluster()
    first.start()
    downloading = Job.objects.filter(status=Job.Status.DOWNLOADING).exclude(lease_owner="")
    wait_for(downloading.exists, 60)
    in_hand = downloading.first()
    # Jobs that arrive just before the stop are left for the next cluster.
    jobs += [create_job(membership=member, **T2I) for _ in range(2)]

    signalled = time.monotonic()
    SIGNAL_TARGETS[target](first.process)
    lease_free_at = stored_at = None
    while first.process.poll() is None:
        assert time.monotonic() - signalled < 30, "the cluster did not stop within 30 s"
        now = time.monotonic()
        if lease_free_at is None and not WorkerLease.is_held("dispatcher"):
            lease_free_at = now
        if stored_at is None and in_hand.images.exists():
            stored_at = now
        time.sleep(0.05)
    stopped_in = time.monotonic() - signalled

    assert first.process.returncode == 0
    assert stopped_in < 20
    assert not first.pids()  # nothing of the cluster is left behind
    # The download under way finished, once, and was stored.
    in_hand.refresh_from_db()
    assert in_hand.status == Job.Status.SUCCEEDED, in_hand.error_message
    assert (in_hand.images.count(), in_hand.attempts) == (1, 1)
    # The dispatcher gave its lease up at once, before the download was done.
    assert lease_free_at is not None and stored_at is not None
    assert lease_free_at < stored_at
    assert not WorkerLease.is_held("dispatcher")
    # No step was cut off holding its job, and the stopped cluster left no heartbeat.
    assert not Job.objects.filter(status=Job.Status.DOWNLOADING).exclude(lease_owner="")
    assert not WorkerHeartbeat.objects.exists()
    assert Job.objects.filter(status__in=Job.OPEN).exists()

    second = fleet.new_cluster()
    started = time.monotonic()
    second.start()
    wait_for(lambda: WorkerLease.is_held("dispatcher"), 30)
    # Its dispatcher started as soon as the cluster was up, not after the 45 s lease.
    assert time.monotonic() - started < 15
    wait_until_done(90)

    finished = Job.objects.filter(pk__in=[job.pk for job in jobs])
    assert {job.status for job in finished} == {Job.Status.SUCCEEDED}
    # One step per job, each started once: no attempt was spent on a stop.
    assert {job.attempts for job in finished} == {1}
    assert_each_job_stored_once(len(jobs), settings.MEDIA_ROOT)
    assert fleet.stats()["counts"]["submitted"] == len(jobs)


def test_a_dispatcher_slice_begun_while_the_cluster_stops_frees_its_lease_at_once(
    monkeypatch, member, media
):
    """A dispatch task still in the cluster's queue when the stop began runs all the same;
    it must neither hold the lease nor queue a successor the stopping cluster would run."""
    stopping = multiprocessing.get_context("fork").Event()
    stopping.set()
    monkeypatch.setattr(shutdown, "_stopping", stopping)
    world = make_pipeline()
    job = create_job(membership=member, **T2I)
    handed_over = []
    try:
        began = time.monotonic()
        still_open = dispatch_for(
            10, world.client, "stopping-worker", hand_over=lambda: handed_over.append(1)
        )
        took = time.monotonic() - began
    finally:
        world.close()

    assert still_open is False and handed_over == []
    assert took < 2
    assert not WorkerLease.is_held("dispatcher")
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED  # left for the next cluster, untouched


def test_a_dispatcher_waiting_on_the_provider_keeps_its_lease(monkeypatch, settings, member, media):
    """A submit may wait half a minute for the provider's answer, and a pass may send
    several. The dispatcher still waiting is alive: no second one may start meanwhile and
    take its unanswered submit for one whose dispatcher died, failing a job whose task the
    provider is about to run and bill."""
    settings.STUDIO_DISPATCHER_LEASE_SECONDS = 0.6
    world = make_pipeline()
    job = create_job(membership=member, **T2I)
    answer = answer_held(monkeypatch, world.client, "submit")
    try:
        waiting = in_background(lambda: dispatch_for(3, world.client, "waiting-dispatcher"))
        # Over three leases' worth of waiting for the answer: a fixed wait, as the time
        # passing is what would lose an unrenewed lease; there is no event to wait for.
        time.sleep(2.0)
        dispatch_for(1, world.client, "second-dispatcher")
        answer.set()
        waiting.join(timeout=10)
    finally:
        answer.set()
        world.close()

    assert not LeaseTerm.objects.filter(lease="dispatcher", owner="second-dispatcher").exists()
    job.refresh_from_db()
    assert job.status in (Job.Status.PENDING, Job.Status.RUNNING), job.error_message
    assert job.provider_task_id
    assert world.emulator.stats()["counts"]["submitted"] == 1

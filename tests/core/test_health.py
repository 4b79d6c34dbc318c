import socket
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connections
from django.db.models.functions import Now

from studio.generation.models import WorkerHeartbeat


def test_healthz_reports_ok_without_login(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_returns_503_when_the_database_is_unreachable(client, db):
    wrapper_class = type(connections["default"])
    refused = DatabaseError("connection refused")

    with mock.patch.object(wrapper_class, "ensure_connection", side_effect=refused):
        response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] != "ok"


def test_healthz_rejects_post(client, db):
    assert client.post("/healthz").status_code == 405


# -- the worker's heartbeat ------------------------------------------------------------------

THIS_HOST = socket.gethostname()


def heartbeat(name: str, *, host: str = THIS_HOST, seconds_ago: float = 0) -> None:
    WorkerHeartbeat.beat(name, host=host, pid=4321)
    WorkerHeartbeat.objects.filter(name=name).update(beat_at=Now() - timedelta(seconds=seconds_ago))


def test_worker_health_lists_the_clusters_that_beat(client, db, settings):
    settings.STUDIO_WORKER_HEARTBEAT_SECONDS = 10
    heartbeat(f"{THIS_HOST}:11:fresh-cluster", seconds_ago=4)
    heartbeat("elsewhere:12:stale-cluster", host="elsewhere", seconds_ago=31)

    response = client.get("/healthz/worker")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    (worker,) = body["workers"]
    assert worker["name"] == f"{THIS_HOST}:11:fresh-cluster"
    assert 3.5 <= worker["age_seconds"] <= 6


def test_worker_health_is_503_when_every_heartbeat_is_stale(client, db, settings):
    settings.STUDIO_WORKER_HEARTBEAT_SECONDS = 10
    heartbeat(f"{THIS_HOST}:11:old-cluster", seconds_ago=31)

    response = client.get("/healthz/worker")

    assert response.status_code == 503
    assert response.json() == {"status": "no worker", "workers": []}
    assert "no-store" in response["Cache-Control"]


def test_worker_health_is_503_before_any_worker_started(client, db):
    assert client.get("/healthz/worker").status_code == 503


def test_worker_health_rejects_post(client, db):
    assert client.post("/healthz/worker").status_code == 405


def test_the_web_health_check_is_never_cached(client, db):
    assert "no-store" in client.get("/healthz")["Cache-Control"]


def test_worker_health_command_exits_0_while_a_cluster_beats(db, capsys):
    heartbeat("elsewhere:12:busy-cluster", host="elsewhere", seconds_ago=1)

    call_command("worker_health")

    assert "elsewhere:12:busy-cluster: beat" in capsys.readouterr().out


def test_worker_health_this_host_ignores_clusters_on_other_hosts(db):
    heartbeat("elsewhere:12:busy-cluster", host="elsewhere", seconds_ago=1)

    with pytest.raises(CommandError, match=f"No worker heartbeat on {THIS_HOST}") as failure:
        call_command("worker_health", "--this-host")

    assert failure.value.returncode == 1


def test_heartbeats_of_long_dead_clusters_are_pruned_by_the_reconcile_schedule(db):
    from studio.generation.tasks import reconcile

    heartbeat("a:1:died-yesterday", seconds_ago=2 * 3600)
    heartbeat("b:2:died-a-minute-ago", seconds_ago=60)

    reconcile()

    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["b:2:died-a-minute-ago"]


def test_every_page_has_an_icon(client, db):
    """Without one, every admin page logs a failed request for /favicon.ico."""
    from django.contrib.staticfiles import finders

    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (302, "/static/favicon.svg")
    with open(finders.find("favicon.svg"), "rb") as icon:
        assert icon.read().startswith(b"<svg")
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page

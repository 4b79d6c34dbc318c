from unittest import mock

from django.db import DatabaseError, connections


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

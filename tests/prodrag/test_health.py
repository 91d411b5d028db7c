"""Probes and the database outage: /healthz, /readyz, and 503s that recover by themselves."""

import pytest
from django.conf import settings as django_settings
from django.test import Client

from prodrag.celery import app
from prodrag.embedded_db import embedded_server_stop, embedded_server_uri
from tests.api import api_client


def test_healthz_answers_whatever_the_host_and_touches_nothing():
    # No django_db mark: any database access would raise here.
    response = Client(HTTP_HOST="10.9.8.7:8000").get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_each_check_when_everything_is_up():
    response = Client(HTTP_HOST="10.9.8.7:8000").get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "embedding"}
    assert body["checks"]["database"]["detail"].startswith("pgvector 0.8")
    assert body["checks"]["embedding"]["detail"] == (
        f"{django_settings.EMBEDDING_MODEL} ({django_settings.EMBEDDING_DIMENSIONS} dimensions)"
    )
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_fails_when_the_broker_is_unreachable(monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["ok"] is False
    assert "refused" in checks["broker"]["detail"].lower()
    assert checks["database"]["ok"] and checks["embedding"]["ok"]


@pytest.mark.django_db(transaction=True)
def test_database_outage_fails_readiness_answers_503_and_recovers_by_itself(handbook):
    """GIVEN a running app with a reader's token
    WHEN the embedded database server is stopped
    THEN readiness fails, the API answers 503 in its error shape with Retry-After, the chat
    page answers a 503 page; and once the server is started again, the same requests succeed
    without restarting anything."""
    if not django_settings.EMBEDDED_DATABASE:
        pytest.skip("stops and starts the embedded server; DATABASE_URL points elsewhere")
    owner = handbook["leave.md"].owner
    api = api_client(owner)
    browser = Client()
    browser.force_login(owner)
    query = {"query": "annual leave", "k": 3}
    assert api.post("/api/v1/search/", query, format="json").status_code == 200
    assert _broker_round_trip() == {"probe": "before"}

    pgdata = django_settings.PGDATA
    assert embedded_server_stop(pgdata=pgdata)
    try:
        ready = Client().get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"]["ok"] is False

        down = api.post("/api/v1/search/", query, format="json")
        assert down.status_code == 503
        assert down["Retry-After"] == "5"
        assert down.json()["error"]["code"] == "database_unavailable"

        page = browser.get("/chat/")
        assert page.status_code == 503
        assert b"briefly unavailable" in page.content
    finally:
        embedded_server_uri(pgdata=pgdata, dbname=django_settings.DATABASES["default"]["NAME"])

    assert Client().get("/readyz").status_code == 200
    found = api.post("/api/v1/search/", query, format="json")
    assert found.status_code == 200
    assert found.json()["passages"]
    assert browser.get("/chat/").status_code == 200
    # The broker's pooled connection died with the old server; a message still goes through.
    assert _broker_round_trip("after") == {"probe": "after"}


def _broker_round_trip(value: str = "before") -> dict:
    with app.connection_for_write() as broker:
        queue = broker.SimpleQueue("prodrag-test-outage")
        queue.put({"probe": value})
        message = queue.get(timeout=10)
        message.ack()
        queue.close()
    return message.payload


@pytest.mark.django_db
def test_readyz_tells_anonymous_callers_in_production_only_what_is_ok(settings, monkeypatch):
    """Addresses and error texts are for operators: without the metrics token, a production
    /readyz says which checks pass, not where the broker is or why a check failed."""
    settings.PRODUCTION, settings.METRICS_TOKEN = True, "s3cret"
    settings.ALLOWED_HOSTS = ["*"]
    monkeypatch.setattr(app.conf, "broker_url", "redis://:pw@127.0.0.1:1/0")

    anonymous = Client().get("/readyz", secure=True)
    operator = Client().get("/readyz", secure=True, HTTP_AUTHORIZATION="Bearer s3cret")

    assert anonymous.status_code == operator.status_code == 503
    assert anonymous.json()["checks"]["broker"] == {"ok": False}
    assert "127.0.0.1" not in anonymous.content.decode()
    assert "refused" in operator.json()["checks"]["broker"]["detail"].lower()
    assert "127.0.0.1" in operator.content.decode()

"""GET /healthz for load balancers: 200 while the database answers, 503 when it does not, and
never a redirect or a host error (a balancer checks over plain HTTP with its own Host)."""

from __future__ import annotations

import pytest
from django.db import OperationalError


@pytest.mark.django_db
def test_healthz_ok_with_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_is_unreachable(client, monkeypatch):
    from backoffice import health

    class Broken:
        def cursor(self):
            raise OperationalError("connection refused")

        def close(self):
            pass

    monkeypatch.setattr(health, "connection", Broken())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


@pytest.mark.django_db
def test_healthz_answers_behind_https_redirect_and_for_any_host(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["charge.example.com"]
    response = client.get("/healthz", HTTP_HOST="10.0.0.7:8001")
    assert response.status_code == 200
    # Every other path still gets the redirect / host check.
    assert client.get("/", HTTP_HOST="charge.example.com").status_code == 301
    assert client.get("/", HTTP_HOST="10.0.0.7:8001").status_code == 400


@pytest.mark.django_db
def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405

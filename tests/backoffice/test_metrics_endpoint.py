"""GET /metrics: closed unless configured, then the bearer token or an allow-listed network."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backoffice import metrics

TOKEN = "s3cret-scrape-token-0123456789"


@pytest.fixture
def closed(settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    return settings


def names(body: bytes) -> set[str]:
    return {family.name for family in text_string_to_metric_families(body.decode())}


def test_metrics_are_404_when_neither_token_nor_network_is_set(client, closed):
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_need_the_bearer_token(client, closed):
    closed.METRICS_TOKEN = TOKEN
    for header in (None, "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"):
        extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
        response = client.get("/metrics", **extra)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"evportal_" not in response.content
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "evportal_ocpp_connected_chargers" in names(response.content)
    assert "evportal_outbound_deliveries" in names(response.content)


def test_metrics_from_an_allow_listed_network_need_no_token(client, closed):
    closed.METRICS_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    # Outside the network, with only networks configured, it does not exist.
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 404
    # With a token too, an outsider may still come with the token.
    closed.METRICS_TOKEN = TOKEN
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 401
    ok = client.get("/metrics", REMOTE_ADDR="10.2.0.1", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200


def test_metrics_answer_before_the_https_redirect_and_for_any_host(client, closed):
    closed.METRICS_TOKEN = TOKEN
    closed.SECURE_SSL_REDIRECT = True
    closed.ALLOWED_HOSTS = ["charge.example.com"]
    response = client.get(
        "/metrics", HTTP_HOST="10.0.0.7:8001", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200
    assert client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def run_django(code: str, **env: str) -> subprocess.CompletedProcess:
    """Set Django up in a fresh process with `env` and run `code` there."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "DEBUG": "true", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bad_network_in_the_setting_stops_the_start():
    result = run_django("pass", METRICS_ALLOWED_NETWORKS="10.0.0.0/33")
    assert result.returncode != 0
    assert "METRICS_ALLOWED_NETWORKS" in result.stderr


def test_a_periodic_task_success_is_recorded_and_other_tasks_are_not(settings):
    from prometheus_client import REGISTRY

    name = "evportal_periodic_task_last_success_timestamp_seconds"
    periodic = sorted(metrics.periodic_task_names())[0]
    metrics.task_succeeded(periodic, now=1_800_000_000.0)
    metrics.task_succeeded("roaming.session_started", now=1_800_000_001.0)
    assert REGISTRY.get_sample_value(name, {"task": periodic}) == 1_800_000_000.0
    assert REGISTRY.get_sample_value(name, {"task": "roaming.session_started"}) is None


@pytest.mark.django_db
def test_an_eager_periodic_task_run_records_its_success():
    from celery import current_app
    from prometheus_client import REGISTRY

    name = "evportal_periodic_task_last_success_timestamp_seconds"
    task = "roaming.deliveries_sweep"
    assert task in metrics.periodic_task_names()
    before = REGISTRY.get_sample_value(name, {"task": task}) or 0.0
    current_app.loader.import_default_modules()
    current_app.tasks[task].apply(throw=True)
    assert (REGISTRY.get_sample_value(name, {"task": task}) or 0.0) > before


def test_log_format_json_writes_one_object_per_line_and_plain_stays_the_default():
    code = (
        "import logging; log = logging.getLogger('chargers.x'); log.warning('left %s', 'CP-1')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('failed')"
    )
    result = run_django(code, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines[0]["level"] == "WARNING" and lines[0]["logger"] == "chargers.x"
    assert lines[0]["message"] == "left CP-1" and isinstance(lines[0]["process"], int)
    assert lines[0]["time"]
    assert lines[1]["message"] == "failed" and "ZeroDivisionError" in lines[1]["exc_info"]
    plain = run_django(code)
    assert plain.returncode == 0 and "WARNING chargers.x: left CP-1" in plain.stderr
    assert run_django("pass", LOG_FORMAT="xml").returncode != 0  # a typo stops the start

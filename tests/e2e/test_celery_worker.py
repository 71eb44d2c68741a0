"""A real Celery worker takes a task from the Redis broker and does the work in the database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from authorization.models import Token
from tests.conftest import _test_database_url
from tests.factories import MspFactory
from tests.msp_server import FakeMsp

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not settings.REDIS_URL and os.environ.get("REQUIRE_SERVICES") != "true",
        reason="needs Redis as the Celery broker (REDIS_URL); CI runs it",
    ),
]


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")
def test_worker_pulls_msp_tokens_from_a_task_sent_through_redis(transactional_db):
    from portal.celery import app

    msp_server = FakeMsp(
        tokens=[{"uid": "0C0001", "valid": True}, {"uid": "0C0002", "valid": False}]
    )
    MspFactory(live_validation_url=msp_server.url)
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DEBUG": "true",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CONN_MAX_AGE": "0",
        "MSP_URL_ALLOWLIST": "127.0.0.1",
    }  # the stub MSP listens on loopback
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--loglevel=warning",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        app.send_task("authorization.msp_tokens_pull_all")  # through the broker, never in-process
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline and Token.objects.filter(uid__startswith="0C").count() < 2
        ):
            time.sleep(0.2)
        assert Token.objects.filter(uid__startswith="0C").count() == 2
        assert Token.objects.get(uid="0C0002").valid is False
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        msp_server.close()
        from django.db import connections

        connections.close_all()

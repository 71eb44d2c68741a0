"""The real server (uvicorn, Django's psycopg pool) with every pool connection held by requests
stuck on a row lock: the next request waits DB_POOL_TIMEOUT, then gets a 503 with Retry-After and
a plain sentence (not a 500), and once the stuck requests finish the pool serves again."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.db import connection, transaction
from rest_framework.authtoken.models import Token

from backoffice.models import Organization
from tests.conftest import start_live_server, stop_live_server
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

POOL = 2  # DB_POOL_SIZE of the server below


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def test_an_exhausted_pool_is_a_503_and_recovers(postgresql_only, tmp_path):
    organization = OrganizationFactory(name="Before")
    owner = MembershipFactory(organization=organization, role="owner").user
    headers = {"Authorization": f"Token {Token.objects.create(user=owner).key}"}
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        DEBUG="false",  # Django's error handlers, not its debug page
        SECRET_KEY="pool-test-" + "x" * 50,
        ALLOW_SANDBOX_PAYMENTS="true",
        DB_EXECUTOR_THREADS="1",
        DB_POOL_SIZE=str(POOL),
        DB_POOL_TIMEOUT="1",
    )
    base = f"http://127.0.0.1:{server.port}"
    locked, release = threading.Event(), threading.Event()
    stuck: list[int] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                Organization.objects.select_for_update().get(pk=organization.pk)
                locked.set()
                release.wait()
        finally:
            locked.set()
            connection.close()

    def rename(name: str) -> None:
        answer = httpx.patch(
            f"{base}/api/v1/organizations/{organization.pk}/",
            json={"name": name},
            headers=headers,
            timeout=120,
        )
        stuck.append(answer.status_code)

    holder = threading.Thread(target=hold)
    writers = [threading.Thread(target=rename, args=(f"After {n}",)) for n in range(POOL)]
    try:
        holder.start()
        locked.wait()
        for writer in writers:
            writer.start()
        while _waiting_on_locks() < POOL:  # each writer holds a pool connection, waiting
            time.sleep(0.02)
        busy = httpx.get(f"{base}/api/v1/organizations/", headers=headers, timeout=120)
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "5"
        assert busy.json()["detail"].startswith("The database is busy or out of reach")
        release.set()
        for writer in writers:
            writer.join()
        assert stuck == [200] * POOL
        again = httpx.get(f"{base}/api/v1/organizations/", headers=headers, timeout=120)
        assert again.status_code == 200
        assert again.json()["results"][0]["name"].startswith("After")
    finally:
        release.set()
        holder.join()
        stop_live_server(server)

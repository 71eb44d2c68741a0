"""PostgreSQL connections of a real server process stay within their documented bound.

Under ASGI every request runs on a thread of its own; with persistent connections each thread
kept one, and a few concurrent API clients ran PostgreSQL out of connections (issue 33 item 3).
The bound is DB_POOL_SIZE + DB_ASYNC_POOL_SIZE (README, "Connections"). The server's
connections are counted in pg_stat_activity by the client ports its process holds, so a
connection opened outside the two pools is counted too.

After an outage the pooled connections are dead; the next request and the next charger
handshake must not fail on one (item 6). The outage is made with pg_terminate_backend on this
server's own backends only.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import psutil
import psycopg
import pytest
import websockets
from django.conf import settings

from tests.conftest import SERVER_POOLS, _test_database_url, start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="counts PostgreSQL server connections"),
]

WRITES = 200
CLIENTS = 8
PASSWORD = "bound-pass-123456"


def _server_backends(pg: psycopg.Connection, pid: int) -> list[int]:
    """Backend pids of the connections the server process holds to PostgreSQL."""
    pg_port = int(settings.DATABASES["default"].get("PORT") or 5432)
    try:
        sockets = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return []
    ports = [s.laddr.port for s in sockets if s.raddr and s.raddr.port == pg_port]
    if not ports:
        return []
    rows = pg.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND client_port = ANY(%s)",
        [ports],
    ).fetchall()
    return [row[0] for row in rows]


class Sampler(threading.Thread):
    """Counts the server's connections every 20 ms until stopped; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        with psycopg.connect(_test_database_url(), autocommit=True) as pg:
            while not self._stop_event.is_set():
                self.peak = max(self.peak, len(_server_backends(pg, self.pid)))
                self.samples += 1
                time.sleep(0.02)

    def stop(self) -> int:
        self._stop_event.set()
        self.join(timeout=10)
        return self.peak


async def _sign_in(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    reply = await client.post("/api/v1/auth/token/", json={"username": email, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Token {reply.json()['token']}"}


async def _burst(base_url: str, email: str, property_id: int) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        headers = await _sign_in(client, email)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(WRITES):
            queue.put_nowait(n)
        statuses: list[int] = []

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                reply = await client.post(
                    "/api/v1/chargers/",
                    json={"station_id": f"BOUND-{n:04d}", "property": property_id},
                    headers=headers,
                )
                statuses.append(reply.status_code)

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        return statuses


async def _boot(ws_url: str, station_id: str, id_tag: str | None = None) -> list[list]:
    """BootNotification (and Authorize of `id_tag`) over a new socket; the replies."""
    async with websockets.connect(
        f"{ws_url}/ocpp/{station_id}", subprotocols=["ocpp1.6"], open_timeout=20
    ) as ws:
        calls = [("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})]
        if id_tag:
            calls.append(("Authorize", {"idTag": id_tag}))
        replies = []
        for n, (action, payload) in enumerate(calls):
            await ws.send(json.dumps([2, f"call-{n}", action, payload]))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
        return replies


def _owner_and_property() -> tuple[str, int]:
    prop = PropertyFactory()
    user = MembershipFactory(organization=prop.organization, role="owner").user
    user.set_password(PASSWORD)
    user.save()
    return user.email or user.username, prop.pk


@pytest.fixture
def server(tmp_path):
    # Production's defaults: nothing about connections set (CONN_MAX_AGE unset means 60, the
    # pools their production sizes rather than the test servers' smaller ones).
    production = dict.fromkeys(SERVER_POOLS, "")
    live = start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal", CONN_MAX_AGE="", **production)
    yield live
    stop_live_server(live)


def test_a_burst_of_api_writes_stays_within_the_connection_bound(server):
    bound = settings.DB_POOL_SIZE + settings.DB_ASYNC_POOL_SIZE
    email, property_id = _owner_and_property()
    charger = ChargerFactory(station_id="BOUND-CP")
    sampler = Sampler(server.process.pid)
    sampler.start()
    try:
        assert asyncio.run(_boot(server.ws_url, charger.station_id))[0][0] == 3  # async pool
        statuses = asyncio.run(_burst(server.url, email, property_id))
    finally:
        peak = sampler.stop()
    assert sampler.samples > 10
    assert sorted(set(statuses)) == [201], [s for s in statuses if s != 201][:5]
    assert len(statuses) == WRITES
    assert 0 < peak <= bound, f"{peak} connections, bound {bound}"


def test_the_first_request_and_handshake_after_an_outage_do_not_fail_on_stale_connections(
    server,
):
    email, property_id = _owner_and_property()
    charger = ChargerFactory(station_id="STALE-CP")
    TokenFactory(uid="04A1B2C3", organization=charger.property.organization)
    assert asyncio.run(_boot(server.ws_url, charger.station_id, "04A1B2C3"))[1][0] == 3
    assert sorted(set(asyncio.run(_burst(server.url, email, property_id)))) == [201]

    # The outage: PostgreSQL ends every connection of this server (and only of this server).
    with psycopg.connect(_test_database_url(), autocommit=True) as pg:
        backends = _server_backends(pg, server.process.pid)
        assert backends  # the pools kept idle connections
        for backend in backends:
            pg.execute("SELECT pg_terminate_backend(%s)", [backend])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            alive = pg.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [backends]
            ).fetchone()
            if alive and alive[0] == 0:
                break
            time.sleep(0.05)

    async def after() -> tuple[int, list[list]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            headers = await _sign_in(client, email)
            created = await client.post(
                "/api/v1/chargers/",
                json={"station_id": "AFTER-OUTAGE", "property": property_id},
                headers=headers,
            )
        return created.status_code, await _boot(server.ws_url, charger.station_id, "04A1B2C3")

    status, (boot, authorize) = asyncio.run(after())
    assert status == 201
    assert boot[0] == 3 and boot[2]["status"] == "Accepted", boot
    assert authorize[0] == 3 and authorize[2]["idTagInfo"]["status"] == "Accepted", authorize

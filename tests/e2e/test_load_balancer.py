"""End to end: two real server processes behind HAProxy with deploy/haproxy/ocpp-cluster.cfg.

Both processes (`manage.py serve`) share the test's PostgreSQL database and Redis, so the
channel layer crosses processes. Twenty chargers written from the OCPP-J text connect through
HAProxy; `balance leastconn` spreads them over both processes (Charger.connection_process holds
the key of the process that holds the socket). A command POSTed to EACH process's own API goes
to a charger held by the OTHER process and the charger's answer comes back (HTTP 200 with the
answer only that charger gives). Headers the application believes from a trusted proxy cannot be
forged through the balancer; the TLS listener admits a profile-3 charger by its certificate; a
process whose database is unreachable fails /healthz and gets no chargers, and when every process
fails its check (a database outage) they all still take connections.

Needs PostgreSQL and Redis (the CI=true pass); on SQLite or the in-memory channel layer the
processes would not share state and the test is skipped.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from django.conf import settings

from tests.conftest import (
    LiveServer,
    free_port,
    release_servers,
    reserve_servers,
    start_live_server,
    stop_live_server,
)
from tests.e2e.test_tls_profiles import tls_setup  # noqa: F401 - the CA and certificates, as a fixture
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "haproxy" / "ocpp-cluster.cfg"
FLEET = 20
CALL_TIMEOUT_S = 20
CLIENT_SOURCE = "127.0.0.3"  # the chargers' address: not the proxy's (127.0.0.1)


def _free_port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


def _wait_for(what: str, check, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


@pytest.fixture
def shared_services() -> None:
    if not settings.IS_POSTGRES or not settings.REDIS_URL:
        pytest.skip(
            "two server processes must share PostgreSQL and Redis (the CI=true pass): "
            "on SQLite or the in-memory channel layer they share nothing"
        )
    if shutil.which("haproxy") is None:
        if os.environ.get("REQUIRE_SERVICES") == "true":
            pytest.fail("haproxy is not installed (make test installs it)")
        pytest.skip("haproxy is not installed (apt-get install haproxy; make test does it)")


class Haproxy:
    def __init__(self, backends: list[LiveServer], **extra_env: str) -> None:
        self.port, self.stats_port = _free_port(), _free_port()
        env = {
            **os.environ,
            "OCPP_BIND": f"127.0.0.1:{self.port}",
            "OCPP_STATS_BIND": f"127.0.0.1:{self.stats_port}",
            "OCPP_MAXCONN": "2000",
            **extra_env,
        }
        for number, backend in enumerate(backends, 1):
            env[f"OCPP_APP_{number}"] = f"127.0.0.1:{backend.port}"
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(CONFIG)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.ws_url = f"ws://127.0.0.1:{self.port}/ocpp"

    def server_status(self) -> dict[str, str]:
        """HAProxy's view of each server of the backend (UP, DOWN, "UP 1/3", "no check", ...)."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.stats_port}/;csv", timeout=5).text
        except httpx.HTTPError:
            return {}
        rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows if row["pxname"] == "csms"}

    def stop(self) -> str:
        self.process.terminate()
        try:
            output, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        return output.decode(errors="replace")


@pytest.fixture
def cluster(
    shared_services, transactional_db, tmp_path, monkeypatch
) -> Iterator[tuple[list[LiveServer], Haproxy]]:
    """Two server processes (same database, same Redis) trusting HAProxy on 127.0.0.1, and HAProxy."""
    env = {
        "OCPP_JOURNAL_DIR": tmp_path / "journal",
        "OCPP_TRUSTED_PROXIES": "127.0.0.1",
        "OCPP_CALL_TIMEOUT": CALL_TIMEOUT_S,
    }
    servers: list[LiveServer] = []
    proxy = None
    both = reserve_servers(2)
    try:
        servers.append(start_live_server(**env))
        servers.append(start_live_server(**env))
        proxy = Haproxy(servers)
        _wait_for(
            "HAProxy to see both processes healthy",
            lambda: (
                proxy.server_status().get("app1") == "UP"
                and proxy.server_status().get("app2") == "UP"
            ),
        )
        yield servers, proxy
    finally:
        output = proxy.stop() if proxy is not None else ""
        for server in servers:
            stop_live_server(server)
        release_servers(both)
        if output and "ALERT" in output:
            print(output[-2000:])


class Fleet:
    """Chargers written from the OCPP-J text, run on their own event loop in a thread: each boots
    through the balancer, then answers every CALL; DataTransfer with its own station id, so an
    answer that came back through the API can only be that charger's."""

    def __init__(self, url: str, station_ids: list[str]) -> None:
        self.url, self.station_ids = url, station_ids
        self.calls: dict[str, list[str]] = {sid: [] for sid in station_ids}
        self.booted: set[str] = set()
        self.errors: list[str] = []
        self.ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> Fleet:
        self._thread.start()
        if not self.ready.wait(60) or self.errors:
            raise AssertionError(
                f"chargers did not all boot through the balancer: {self.errors[:3]}"
            )
        return self

    def __exit__(self, *exc) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        tasks = [asyncio.create_task(self._charger(sid)) for sid in self.station_ids]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _charger(self, station_id: str) -> None:
        try:
            async with websockets.connect(
                f"{self.url}/{station_id}", subprotocols=["ocpp1.6"], local_addr=(CLIENT_SOURCE, 0)
            ) as ws:
                await ws.send(
                    json.dumps(
                        [
                            2,
                            "boot",
                            "BootNotification",
                            {"chargePointVendor": "LB", "chargePointModel": "Spread"},
                        ]
                    )
                )
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert reply[:2] == [3, "boot"] and reply[2]["status"] == "Accepted", reply
                self.booted.add(station_id)
                if len(self.booted) == len(self.station_ids):
                    self.ready.set()
                async for text in ws:
                    frame = json.loads(text)
                    if frame[0] != 2:
                        continue
                    self.calls[station_id].append(frame[2])
                    answer = {"status": "Accepted"}
                    if frame[2] == "DataTransfer":
                        answer["data"] = station_id
                    await ws.send(json.dumps([3, frame[1], answer]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors.append(f"{station_id}: {exc!r}")
            self.ready.set()


def _holders(station_ids: list[str]) -> dict[str, str]:
    from chargers.models import Charger

    rows = Charger.objects.filter(station_id__in=station_ids).values_list(
        "station_id", "connection_process"
    )
    return {sid: process for sid, process in rows if process}


def _holder_from_thread(station_id: str) -> str:
    """The process holding `station_id`'s socket, polled from a worker thread whose database
    connection is closed afterwards (an open one would keep the test database from being dropped)."""
    from django.db import connection

    try:
        return _wait_for("the connection recorded", lambda: _holders([station_id]).get(station_id))
    finally:
        connection.close()


def _process_of(server: LiveServer, keys: set[str]) -> str:
    """The process key (hostname-pid-random, chargers.connections.process.KEY) of this server process."""
    (key,) = [k for k in keys if f"-{server.process.pid}-" in k]
    return key


def test_chargers_spread_over_two_processes_and_commands_cross_them(cluster) -> None:
    servers, proxy = cluster
    prop = PropertyFactory()
    user = MembershipFactory(organization=prop.organization, role="owner").user
    station_ids = [f"LB-{n:03d}" for n in range(FLEET)]
    for sid in station_ids:
        ChargerFactory(property=prop, station_id=sid)

    with Fleet(proxy.ws_url, station_ids) as fleet:
        holders = _wait_for(
            "every charger's connection recorded",
            lambda: (h := _holders(station_ids)) and len(h) == FLEET and h,
        )
        keys = set(holders.values())
        # Both processes hold chargers, evenly (leastconn: each new socket to the emptier one).
        assert len(keys) == 2, holders
        by_server = [_process_of(server, keys) for server in servers]
        held = {key: sorted(sid for sid, k in holders.items() if k == key) for key in by_server}
        assert all(len(sids) >= FLEET // 2 - 1 for sids in held.values()), held

        # The balancer spreads the API too; here each process's own API is called directly.
        token = httpx.post(
            f"{servers[0].url}/api/v1/auth/token/",
            json={"username": user.username, "password": "secret-pass-123"},
            timeout=30,
        )
        headers = {"Authorization": f"Token {token.json()['token']}"}
        for api, other in ((servers[0], by_server[1]), (servers[1], by_server[0])):
            target = held[other][0]
            before = list(fleet.calls[target])
            response = httpx.post(
                f"{api.url}/api/v1/chargers/{target}/commands/DataTransfer/",
                json={"vendorId": "LB", "messageId": "who"},
                headers=headers,
                timeout=CALL_TIMEOUT_S + 10,
            )
            # The charger held by the other process got the CALL, and its own answer came back.
            assert (response.status_code, response.json()) == (
                200,
                {"status": "Accepted", "response": {"status": "Accepted", "data": target}},
            ), f"API of port {api.port} -> {target} held by {other}"
            assert fleet.calls[target] == [*before, "DataTransfer"]
        assert fleet.errors == []

    from chargers.models import Command

    answered = Command.objects.filter(action="DataTransfer").values_list(
        "charger__station_id", "status", "response"
    )
    assert sorted(answered) == sorted(
        (held[key][0], Command.Status.ANSWERED, {"status": "Accepted", "data": held[key][0]})
        for key in by_server
    )


def test_proxy_headers_cannot_be_forged_through_the_balancer(cluster) -> None:
    """The processes trust HAProxy's headers (OCPP_TRUSTED_PROXIES=127.0.0.1), so HAProxy must drop
    what a client wrote into them: a profile-2 charger claiming TLS over plain ws is refused, and
    the refusal names the charger's real address, with the proxy it came through."""
    from chargers.models import SecurityEvent

    servers, proxy = cluster
    password = "lb-profile-2-password-0123456789"
    charger = ChargerFactory(station_id="LB-P2", security_profile=2, ocpp_password=password)
    forged = {
        "Authorization": "Basic " + base64.b64encode(f"LB-P2:{password}".encode()).decode(),
        "X-Ocpp-Tls": "TLSv1.3",
        "X-Ocpp-Client-Address": "203.0.113.9",
    }

    async def handshake() -> int:
        try:
            ws = await websockets.connect(
                f"{proxy.ws_url}/LB-P2",
                subprotocols=["ocpp1.6"],
                additional_headers=forged,
                local_addr=(CLIENT_SOURCE, 0),
                open_timeout=20,
            )
        except websockets.InvalidStatus as exc:
            return exc.response.status_code
        await ws.close()
        return 101

    assert asyncio.run(handshake()) == 403
    (event,) = SecurityEvent.objects.filter(charger=charger)
    assert event.event_type == "SecurityProfileMismatch"
    assert f"from {CLIENT_SOURCE}, via 127.0.0.1" in event.tech_info
    assert "203.0.113.9" not in event.tech_info


def test_process_without_database_fails_health_check_and_gets_no_chargers(
    shared_services, transactional_db, tmp_path
) -> None:
    """/healthz answers 503 when the process cannot reach its database: HAProxy marks it down and
    sends every charger to the healthy process."""
    with contextlib.ExitStack() as stack:  # whatever fails, what was started goes
        both = reserve_servers(2)
        stack.callback(release_servers, both)
        healthy = start_live_server(
            OCPP_JOURNAL_DIR=tmp_path / "journal", OCPP_TRUSTED_PROXIES="127.0.0.1"
        )
        stack.callback(stop_live_server, healthy)
        # Same everything, but its database is a port nobody listens on. Its pool gives up
        # after 1 s, not 10: it registers itself at start and marks its connections closed at
        # its stop through the pool, and each waited the whole timeout (start 14 s, stop 10 s).
        cut_off = start_live_server(
            OCPP_JOURNAL_DIR=tmp_path / "journal",
            OCPP_TRUSTED_PROXIES="127.0.0.1",
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{_free_port()}/nowhere",
            DB_POOL_TIMEOUT="1",
        )
        stack.callback(stop_live_server, cut_off)
        proxy = Haproxy([healthy, cut_off])
        stack.callback(proxy.stop)
        assert httpx.get(f"{cut_off.url}/healthz", timeout=30).status_code == 503
        assert httpx.get(f"{healthy.url}/healthz", timeout=30).status_code == 200
        _wait_for(
            "HAProxy to mark the process without database down",
            lambda: (
                proxy.server_status().get("app2") == "DOWN"
                and proxy.server_status().get("app1") == "UP"
            ),
        )
        prop = PropertyFactory()
        station_ids = [f"LB-H{n:02d}" for n in range(6)]
        for sid in station_ids:
            ChargerFactory(property=prop, station_id=sid)
        with Fleet(proxy.ws_url, station_ids):
            holders = _wait_for(
                "every charger's connection recorded",
                lambda: (h := _holders(station_ids)) and len(h) == len(station_ids) and h,
            )
        assert {_process_of(healthy, set(holders.values()))} == set(holders.values())


def test_when_every_process_fails_its_health_check_they_all_still_take_connections() -> None:
    """A database outage fails every /healthz while the processes go on serving chargers from
    their journals: HAProxy must then use the unchecked "-journal" entries, not refuse everyone.
    (Stand-in processes answering 503 on /healthz and their own port elsewhere.)"""
    import http.server

    if shutil.which("haproxy") is None:
        if os.environ.get("REQUIRE_SERVICES") == "true":
            pytest.fail("haproxy is not installed (make test installs it)")
        pytest.skip("haproxy is not installed")

    class Outage(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = (
                (503, b"database unreachable")
                if self.path == "/healthz"
                else (200, str(self.server.server_port).encode())
            )
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address) -> None:
            pass  # HAProxy closes its health checks early

    backends = [Quiet(("127.0.0.1", 0), Outage) for _ in range(2)]
    for backend in backends:
        threading.Thread(target=backend.serve_forever, daemon=True).start()
    stand_ins = [LiveServer(None, backend.server_port) for backend in backends]
    proxy = Haproxy(stand_ins)
    try:
        _wait_for(
            "HAProxy to mark both processes down",
            lambda: (
                proxy.server_status().get("app1") == "DOWN"
                and proxy.server_status().get("app2") == "DOWN"
            ),
        )
        answered_by = {
            httpx.get(f"http://127.0.0.1:{proxy.port}/", timeout=10).text for _ in range(6)
        }
        # Both processes still take new connections.
        assert answered_by == {str(backend.server_port) for backend in backends}
    finally:
        proxy.stop()
        for backend in backends:
            backend.shutdown()


def test_tls_listener_admits_profile_3_to_either_process(
    shared_services, transactional_db, tmp_path, request
) -> None:
    """The cluster's TLS listener is ocpp.cfg's: a profile-3 charger with a certificate of the CSMS CA
    boots through it (held by one of the two processes); without a certificate it is refused."""
    from chargers.management.simulator import tls_context

    tls = request.getfixturevalue(
        "tls_setup"
    )  # CA + certificates; OCPP_CA_DIR, OCPP_TRUSTED_PROXIES set
    ChargerFactory(station_id="TLS-P3", security_profile=3)
    with contextlib.ExitStack() as stack:  # whatever fails, what was started goes
        both = reserve_servers(2)
        stack.callback(release_servers, both)
        servers = []
        for _ in range(2):
            servers.append(start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal"))
            stack.callback(stop_live_server, servers[-1])
        tls_port = _free_port()
        proxy = Haproxy(
            servers,
            OCPP_TLS_BIND=f"127.0.0.1:{tls_port}",
            OCPP_TLS_CERT_DIR=str(tls["certs"]),
            OCPP_CA_DIR=str(Path(tls["ca_file"]).parent),
        )
        stack.callback(proxy.stop)
        _wait_for(
            "HAProxy to see both processes healthy",
            lambda: (
                proxy.server_status().get("app1") == "UP"
                and proxy.server_status().get("app2") == "UP"
            ),
        )

        async def scenario() -> tuple[dict, int]:
            url = f"wss://localhost:{tls_port}/ocpp/TLS-P3"
            async with websockets.connect(
                url, subprotocols=["ocpp1.6"], ssl=tls_context(tls["ca_file"], *tls["p3"])
            ) as ws:
                await ws.send(
                    json.dumps(
                        [
                            2,
                            "b",
                            "BootNotification",
                            {"chargePointVendor": "LB", "chargePointModel": "T"},
                        ]
                    )
                )
                boot = json.loads(await asyncio.wait_for(ws.recv(), 20))
                holder = await asyncio.to_thread(_holder_from_thread, "TLS-P3")
            try:
                await websockets.connect(
                    url, subprotocols=["ocpp1.6"], ssl=tls_context(tls["ca_file"]), open_timeout=20
                )
            except websockets.InvalidStatus as exc:
                return {"boot": boot[2], "holder": holder}, exc.response.status_code
            return {"boot": boot[2], "holder": holder}, 101

        seen, without_certificate = asyncio.run(scenario())
        assert seen["boot"]["status"] == "Accepted"
        assert any(f"-{server.process.pid}-" in seen["holder"] for server in servers), seen
        assert without_certificate == 403

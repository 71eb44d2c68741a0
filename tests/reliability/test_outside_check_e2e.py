"""Issue 37's "Done when", checked from outside: the real server process (`manage.py serve`, its
in-process beat running the timeline sweep and the alerts), four chargers written from the
OCPP-J text over real websockets, the REST API over HTTP and a webhook receiver of our own.

The same code paths as in production, compressed in time through settings and rule fields only:
the failed-start time (RELIABILITY_FAILED_START_AFTER_S), the beat periods of the sweep and the
alerts, and each rule's after_s. Port N is connector 1 of charger R-N:
  1. Faulted (GroundFailure, a vendor code) for FAULT_S: an outage, an alert, one soft reset;
  2. its charger offline (socket closed) for OFFLINE_S: an outage of the port, an alert;
  3. Faulted for EXCLUDED_S inside an exclusion entered through the API: excluded, no alert;
  4. an authorized start with the EV plugged that delivers nothing until energy flows after
     DRY_S: a failed-start outage from the start until then, an alert.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import websockets

from tests.conftest import start_live_server, stop_live_server
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "hook-secret-0123456789"
FAILED_START_AFTER_S = 4
# The fault ends with the dry start (both at 10 s): its alert opens about 4 s in, so it keeps
# as much room before its end as the offline port's (opened at ~3 s of 9).
FAULT_S = 10
OFFLINE_S = 9
EXCLUDED_S = 6
DRY_S = 10
TOLERANCE_S = 5  # the issue's ±5 s


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now() -> datetime:
    return datetime.now(UTC)


class Receiver:
    """A webhook receiver on a free local port: keeps every POST (headers and exact body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict, bytes]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, str, dict]]:
        """(event, station_id, alert) of each delivery whose signature verifies."""
        out = []
        for headers, body in list(self.posts):
            expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, headers.get("x-signature", "")):
                continue
            payload = json.loads(body)
            assert headers.get("x-alert-event") == payload["event"]
            out.append((payload["event"], payload["alert"]["station_id"], payload["alert"]))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Charger:
    """A charger from the OCPP-J text: CALLs out, and every CALL the server sends answered
    Accepted (and kept, to count the first aid)."""

    def __init__(self, ws_base: str, station_id: str) -> None:
        self.url = f"{ws_base}/ocpp/{station_id}"
        self.station_id = station_id
        self.received: list[tuple[str, dict]] = []
        self.n = 0

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.url, subprotocols=["ocpp1.6"])
        self.pending: dict[str, asyncio.Future] = {}
        self.reader = asyncio.create_task(self._read())
        boot = await self.call(
            "BootNotification", {"chargePointVendor": "RawCo", "chargePointModel": "R1"}
        )
        assert boot["status"] == "Accepted"

    async def _read(self) -> None:
        async for text in self.ws:
            message = json.loads(text)
            if message[0] == 2:  # a CALL from the server
                self.received.append((message[2], message[3]))
                await self.ws.send(json.dumps([3, message[1], {"status": "Accepted"}]))
            elif message[1] in self.pending:
                self.pending.pop(message[1]).set_result(message)

    async def call(self, action: str, payload: dict) -> dict:
        self.n += 1
        uid = f"{self.station_id}-{self.n}"
        future = asyncio.get_running_loop().create_future()
        self.pending[uid] = future
        await self.ws.send(json.dumps([2, uid, action, payload]))
        reply = await asyncio.wait_for(future, 15)
        assert reply[0] == 3, reply
        return reply[2]

    async def status(self, state: str, at: datetime, error: str = "NoError", vendor: str = ""):
        payload = {"connectorId": 1, "errorCode": error, "status": state, "timestamp": iso(at)}
        if vendor:
            payload["vendorErrorCode"] = vendor
        await self.call("StatusNotification", payload)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


async def _until(condition, timeout: float):
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.5)


def _setup():
    prop = PropertyFactory()
    org = prop.organization
    user = MembershipFactory(organization=org, role="owner").user
    for n in (1, 2, 3, 4):
        ChargerFactory(property=prop, station_id=f"R-{n}")
    TokenFactory(uid="CAFE0037", organization=org)
    return org, user


def _close(actual: str | None, truth: datetime) -> bool:
    return (
        actual is not None
        and abs((datetime.fromisoformat(actual) - truth).total_seconds()) <= TOLERANCE_S
    )


async def make_rules(http, organization_id: int, url: str) -> None:
    """The three rules the check needs, through the API, each with the webhook."""
    for kind, after_s, remediation in (
        ("faulted", 3, "soft_reset"),
        ("offline", 2, "none"),
        ("failed_start", 1, "none"),
    ):
        made = await http.post(
            "/api/v1/alert-rules/",
            json={
                "organization": organization_id,
                "kind": kind,
                "after_s": after_s,
                "remediation": remediation,
                "webhook_url": url,
                "webhook_secret": SECRET,
            },
        )
        assert made.status_code == 201, made.text


async def make_problems(chargers: dict, truth: dict) -> None:
    """The four problems, each ended after its own time; `truth` gets each outage's span."""
    one, two, three, four = (chargers[n] for n in (1, 2, 3, 4))
    t0 = now()
    await one.status("Faulted", t0, "GroundFailure", vendor="GF-17")
    await three.status("Faulted", now(), "OverVoltage")
    three_from = now()
    await two.close()
    two_from = now()
    await four.status("Preparing", now())
    assert (await four.call("Authorize", {"idTag": "CAFE0037"}))["idTagInfo"][
        "status"
    ] == "Accepted"
    four_from = now()
    started = await four.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "CAFE0037",
            "meterStart": 1000,
            "timestamp": iso(four_from),
        },
    )
    await four.status("SuspendedEVSE", now())
    transaction_id = started["transactionId"]
    # Each problem ends after its own time; the loop below ends them in order of time.
    ends = sorted(
        [
            (t0 + timedelta(seconds=EXCLUDED_S), 3),
            (t0 + timedelta(seconds=OFFLINE_S), 2),
            (t0 + timedelta(seconds=DRY_S), 4),
            (t0 + timedelta(seconds=FAULT_S), 1),
        ]
    )
    for at, n in ends:
        await asyncio.sleep(max(0.0, (at - now()).total_seconds()))
        if n == 3:
            await three.status("Available", now())
            truth["R-3"] = (three_from, now())
        elif n == 2:
            await two.connect()
            truth["R-2"] = (two_from, now())
            await two.status("Available", now())
        elif n == 4:
            flowing = now()
            await four.status("Charging", flowing)
            await four.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": transaction_id,
                    "meterValue": [
                        {
                            "timestamp": iso(flowing),
                            "sampledValue": [{"value": "1500", "unit": "Wh"}],
                        }
                    ],
                },
            )
            truth["R-4"] = (four_from, flowing)
        else:
            await one.status("Available", now())
            truth["R-1"] = (t0, now())


async def check_alerts(http, chargers: dict, receiver: Receiver) -> None:
    # The webhook: signed `opened` then `cleared` for ports 1, 2 and 4; nothing for port 3.
    def by_station():
        seen: dict[str, list[str]] = {}
        for event, station_id, _ in receiver.events():
            seen.setdefault(station_id, []).append(event)
        return seen

    async def all_cleared():
        seen = by_station()
        return all(seen.get(s, [])[-1:] == ["cleared"] for s in ("R-1", "R-2", "R-4"))

    assert await _until(all_cleared, 60), by_station()
    seen = by_station()
    assert seen["R-1"] == ["opened", "cleared"]
    assert seen["R-2"] == ["opened", "cleared"]
    assert seen["R-4"] == ["opened", "cleared"]
    assert "R-3" not in seen
    kinds = {s: a["kind"] for e, s, a in receiver.events() if e == "opened"}
    assert kinds == {"R-1": "faulted", "R-2": "offline", "R-4": "failed_start"}
    opened_one = next(a for e, s, a in receiver.events() if s == "R-1")
    assert opened_one["mrec_code"] == "CX002"  # a vendor's GroundFailure

    # First aid for port 1: one soft reset, sent once and recorded on the alert.
    resets = [p for action, p in chargers[1].received if action == "Reset"]
    assert resets == [{"type": "Soft"}]
    assert not any(action == "Reset" for n in (2, 3, 4) for action, _ in chargers[n].received)
    (alert,) = (await http.get("/api/v1/alerts/", params={"station_id": "R-1"})).json()["results"]
    assert alert["cleared_at"] is not None
    assert [(r["action"], r["result"]) for r in alert["remediation"]] == [("Reset", "Accepted")]


async def check_uptime(http, params: dict, truth: dict) -> None:
    # The uptime API: each outage within ±5 s of the truth, port 3's excluded.
    uptime = (await http.get("/api/v1/uptime/", params=params)).json()
    ports = {p["station_id"]: p for p in uptime["ports"]}
    assert set(ports) == {"R-1", "R-2", "R-3", "R-4"}
    causes = {"R-1": "faulted", "R-2": "offline", "R-3": "faulted", "R-4": "failed_start"}
    for station_id, (start, end) in truth.items():
        (outage,) = ports[station_id]["outages"]
        assert outage["cause"] == causes[station_id], outage
        assert _close(outage["start"], start) and _close(outage["end"], end), (
            station_id,
            outage,
            start,
            end,
        )
        assert outage["excluded"] is (station_id == "R-3")
    assert ports["R-1"]["outages"][0]["mrec_code"] == "CX002"
    assert ports["R-3"]["excluded_seconds"] == pytest.approx(
        ports["R-3"]["outage_seconds"], abs=0.01
    )
    assert ports["R-3"]["uptime_percent"] == 100.0
    for station_id in ("R-1", "R-2", "R-4"):
        assert ports[station_id]["excluded_seconds"] == 0
        assert ports[station_id]["uptime_percent"] < 97 and ports[station_id]["below_97"]


async def check_nevi(http, params: dict) -> None:
    # The NEVI export: a row per port with the §680.112 fields.
    nevi = await http.get("/api/v1/uptime/nevi.csv", params=params)
    assert nevi.status_code == 200
    rows = list(csv.DictReader(io.StringIO(nevi.text)))
    assert sorted((r["station_id"], r["connector_id"]) for r in rows) == [
        (f"R-{n}", "1") for n in (1, 2, 3, 4)
    ]
    for field in (
        "sessions",
        "unsuccessful_sessions",
        "unsuccessful_session_error_codes",
        "unsuccessful_session_mrec_codes",
        "energy_kwh",
        "peak_kw",
        "payment_methods",
        "uptime_percent",
        "outage_minutes",
        "excluded_minutes",
    ):
        assert field in rows[0], field
    four = next(r for r in rows if r["station_id"] == "R-4")
    assert four["sessions"] == "1"


def test_the_outside_check_of_issue_37(transactional_db, tmp_path):
    org, user = _setup()
    receiver = Receiver()
    server = start_live_server(
        OCPP_JOURNAL_DIR=tmp_path / "journal",
        # One process, no broker: `serve` runs the beat (timeline sweep, alerts) itself.
        REDIS_URL="",
        CELERY_BROKER_URL="",
        OUTBOUND_URL_ALLOWLIST="127.0.0.1",
        RELIABILITY_FAILED_START_AFTER_S=FAILED_START_AFTER_S,
        RELIABILITY_SYNC_SECONDS=1,
        RELIABILITY_ALERT_SECONDS=1,
    )
    truth: dict[str, tuple[datetime, datetime]] = {}

    async def scenario():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            token = (
                await http.post(
                    "/api/v1/auth/token/",
                    json={"username": user.username, "password": "secret-pass-123"},
                )
            ).json()["token"]
            http.headers["Authorization"] = f"Token {token}"
            await make_rules(http, org.pk, receiver.url)
            chargers = {n: Charger(server.ws_url, f"R-{n}") for n in (1, 2, 3, 4)}
            begin = now()
            for charger in chargers.values():
                await charger.connect()
                await charger.status("Available", now())
            excluded = await http.post(
                "/api/v1/exclusions/",
                json={
                    "station_id": "R-3",
                    "connector_id": 1,
                    "start": iso(now() - timedelta(minutes=1)),
                    "end": iso(now() + timedelta(minutes=30)),
                    "reason": "grid_outage",
                    "note": "Utility outage on the feeder",
                },
            )
            assert excluded.status_code == 201, excluded.text
            await asyncio.sleep(1)
            await make_problems(chargers, truth)
            await check_alerts(http, chargers, receiver)
            params = {"start": iso(begin - timedelta(seconds=5)), "end": iso(now())}
            await check_uptime(http, params, truth)
            await check_nevi(http, params)
            for charger in chargers.values():
                await charger.close()

    try:
        asyncio.run(scenario())
    finally:
        stop_live_server(server)
        receiver.close()

"""A lean OCPP-J load generator: many chargers per process, several processes. Chargers speak
OCPP 1.6 (Charger) or OCPP 2.0.1 (Charger201: BootNotification, StatusNotification, Heartbeat,
TransactionEvent Started/Updated/Ended with meter values, MeterValues outside a transaction),
chosen by the spec's "protocol".

Each worker process runs one uvloop event loop with a `websockets` client per charger.
Modes:
  closed  every charger sends Heartbeat / MeterValues (3 sampled values) back to back
  fleet   realistic rates: heartbeat every 60 s, a share charging with MeterValues every
          10 s, occasional StatusNotification changes
  storm   chargers (a share in a transaction) stay connected until the server goes away,
          then reconnect within a spread of seconds, boot, report status and stop their
          transaction; every answered transaction message is reported for the loss check
Every charger answers CALLs from the server (Accepted), so commands can reach it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import random
import resource
import ssl
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.seed import password

if TYPE_CHECKING:  # the workers' shared objects, for annotations only
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized
    from multiprocessing.synchronize import Event

CONNECT_TIMEOUT_S = 30
CALL_TIMEOUT_S = 30


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def meter_values_payload(transaction_id: int | str | None, wh: int) -> dict:
    payload = {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": _now_iso(),
                "sampledValue": [
                    {
                        "value": str(wh),
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                        "context": "Sample.Periodic",
                    },
                    {
                        "value": "7360",
                        "measurand": "Power.Active.Import",
                        "unit": "W",
                        "context": "Sample.Periodic",
                    },
                    {
                        "value": "32.0",
                        "measurand": "Current.Import",
                        "unit": "A",
                        "context": "Sample.Periodic",
                    },
                ],
            }
        ],
    }
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    return payload


class CallFailed(Exception):
    pass


# The messages whose answer the storm's loss check looks for in the message log (both versions).
TRANSACTION_ACTIONS = ("StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent")


class Charger:
    SUBPROTOCOL = "ocpp1.6"

    def __init__(self, station_id: str, url: str, stats: Stats) -> None:
        self.station_id = station_id
        self.url = url
        self.stats = stats
        self.ws: ClientConnection | None = None
        self.seq = 0
        # 1.6: the integer the server gave; 2.0.1: the id the charger named (Charger201).
        self.transaction_id: int | str | None = None
        self.wh = 0
        # The loopback address this charger connects from (None: the kernel's choice). One
        # address to one server port holds at most the ephemeral range's ~28,000 sockets.
        self.source: str | None = None
        # What the charger decides (whether it charges, its back-off): seeded per station when
        # the spec has a seed, so runs compared with each other face the same chargers.
        self.rng = random.Random()
        # Over TLS (bench/tls.py): the context it connects with; at profile 3 it sends its client
        # certificate and no password.
        self.ssl: ssl.SSLContext | None = None
        self.password = True

    async def connect(self) -> None:
        credentials = base64.b64encode(
            f"{self.station_id}:{password(self.station_id)}".encode()
        ).decode()
        headers = [("Authorization", f"Basic {credentials}")] if self.password else []
        # From a loopback address of its own (bench/fleet.py): the kernel's 127.0.0.1 otherwise.
        source: dict[str, Any] = {"local_addr": (self.source, 0)} if self.source else {}
        if self.ssl is not None:
            source["ssl"] = self.ssl
        self.ws = await connect(
            f"{self.url}/{self.station_id}",
            subprotocols=[Subprotocol(self.SUBPROTOCOL)],
            ping_interval=None,
            compression=None,
            open_timeout=CONNECT_TIMEOUT_S,
            max_queue=4,
            close_timeout=2,
            additional_headers=headers,
            **source,
        )

    def _socket(self) -> ClientConnection:
        assert self.ws is not None, "connect() first"  # close() keeps it: never None again
        return self.ws

    async def call(self, action: str, payload: dict, *, record: bool = False) -> dict:
        self.seq += 1
        unique_id = f"{self.station_id}-{self.seq}"
        started = time.perf_counter()
        ws = self._socket()
        await ws.send(json.dumps([2, unique_id, action, payload], separators=(",", ":")))
        deadline = started + CALL_TIMEOUT_S
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise CallFailed(f"{action} timed out")
            raw = await asyncio.wait_for(ws.recv(), remaining)
            message = json.loads(raw)
            if message[0] == 2 and message[1] != unique_id:  # a command from the server
                await self._answer(message)
                continue
            if message[1] != unique_id:
                continue
            break
        elapsed = time.perf_counter() - started
        if message[0] == 4:
            raise CallFailed(f"{action}: {message[2]} {message[3]}")
        if record:
            self.stats.latencies.append(elapsed * 1000)
            self.stats.by_action.setdefault(action, []).append(elapsed * 1000)
        self.stats.ok += 1
        if action in TRANSACTION_ACTIONS:
            self.stats.answered.append(unique_id)
        return message[2] if message[0] == 3 else {}

    async def _answer(self, message: list) -> None:
        self.stats.server_calls += 1
        await self._socket().send(json.dumps([3, message[1], {"status": "Accepted"}]))

    async def idle(self, seconds: float) -> None:
        """Wait, answering any CALL from the server; raises ConnectionClosed when it goes away."""
        deadline = time.monotonic() + seconds
        ws = self._socket()
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                return
            message = json.loads(raw)
            if message[0] == 2:
                await self._answer(message)
                await self.after_server_call()

    async def after_server_call(self) -> None:
        """What the charger sends of its own once it answered a CSMS CALL (2.0.1: reports)."""

    async def boot(self, *, echo: bool = False) -> None:
        reply = await self.call(
            "BootNotification",
            {
                "chargePointVendor": "Bench",
                "chargePointModel": "LoadGen-1",
                "firmwareVersion": "1.0",
            },
        )
        if not echo and reply.get("status") != "Accepted":
            raise CallFailed(f"BootNotification {reply.get('status')}")

    async def status(self, status: str) -> None:
        await self.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": _now_iso()},
        )

    async def start_transaction(self, *, echo: bool = False) -> None:
        self.wh = random.randint(0, 50_000)
        reply = await self.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": "BENCHTAG", "meterStart": self.wh, "timestamp": _now_iso()},
        )
        self.transaction_id = reply.get("transactionId") if not echo else None

    async def stop_transaction(self) -> None:
        self.wh += 1000
        await self.call(
            "StopTransaction",
            {
                "transactionId": self.transaction_id,
                "meterStop": self.wh,
                "timestamp": _now_iso(),
                "reason": "Local",
            },
        )
        assert self.transaction_id is not None, "stop only a running transaction"
        self.stats.stopped.append(self.transaction_id)
        self.transaction_id = None

    async def meter(self, *, record: bool = False) -> None:
        self.wh += 10
        await self.call(
            "MeterValues", meter_values_payload(self.transaction_id, self.wh), record=record
        )

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:
                pass


class Charger201(Charger):
    """The same charger in OCPP 2.0.1 words (part 2: B01, G01, E01-E07, J02)."""

    SUBPROTOCOL = "ocpp2.0.1"
    # 1.6 connector statuses the scenarios use -> 2.0.1 ConnectorStatusEnumType.
    STATUS = {
        "Available": "Available",
        "Charging": "Occupied",
        "SuspendedEV": "Occupied",
        "Unavailable": "Unavailable",
    }

    def __init__(self, station_id: str, url: str, stats: Stats) -> None:
        super().__init__(station_id, url, stats)
        self.tx_seq = 0
        self.tx_count = 0
        self.reports_due: list[int] = []

    async def _answer(self, message: list) -> None:
        await super()._answer(message)
        if message[2] == "GetBaseReport" and isinstance(message[3], dict):
            self.reports_due.append(message[3].get("requestId", 0))

    async def call(self, action: str, payload: dict, *, record: bool = False) -> dict:
        reply = await super().call(action, payload, record=record)
        await self.after_server_call()  # a CSMS CALL answered while waiting for this reply
        return reply

    async def after_server_call(self) -> None:
        """B07: a GetBaseReport accepted is followed by its NotifyReport, as a real charger does.
        Our server asks for it after the first boot of a charger whose device model it lacks, so
        without the report every bench boot would be a first one."""
        while self.reports_due:
            await Charger.call(self, "NotifyReport", notify_report_201(self.reports_due.pop(0)))

    async def boot(self, *, echo: bool = False) -> None:
        reply = await self.call(
            "BootNotification",
            {
                "reason": "PowerUp",
                "chargingStation": {
                    "vendorName": "Bench",
                    "model": "LoadGen-1",
                    "firmwareVersion": "1.0",
                },
            },
        )
        if not echo and reply.get("status") != "Accepted":
            raise CallFailed(f"BootNotification {reply.get('status')}")

    async def status(self, status: str) -> None:
        await self.call(
            "StatusNotification",
            {
                "timestamp": _now_iso(),
                "connectorStatus": self.STATUS.get(status, status),
                "evseId": 1,
                "connectorId": 1,
            },
        )

    def _event(self, event_type: str, trigger: str, *, context: str, **info: str) -> dict:
        payload = {
            "eventType": event_type,
            "timestamp": _now_iso(),
            "triggerReason": trigger,
            "seqNo": self.tx_seq,
            "transactionInfo": {"transactionId": self.transaction_id, **info},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": meter_values_201(self.wh, context),
        }
        self.tx_seq += 1
        return payload

    async def start_transaction(self, *, echo: bool = False) -> None:
        self.wh = random.randint(0, 50_000)
        self.tx_count += 1
        # E01: the charger names its transaction; idToken as read from an RFID card.
        self.transaction_id, self.tx_seq = (
            f"{self.station_id}-{self.tx_count}-{random.randrange(16**6):06x}",
            0,
        )
        payload = self._event(
            "Started", "Authorized", context="Transaction.Begin", chargingState="Charging"
        )
        payload["idToken"] = {"idToken": "BENCHTAG", "type": "ISO14443"}
        await self.call("TransactionEvent", payload)
        if echo:
            self.transaction_id = None

    async def stop_transaction(self) -> None:
        self.wh += 1000
        await self.call(
            "TransactionEvent",
            self._event(
                "Ended",
                "StopAuthorized",
                context="Transaction.End",
                chargingState="Idle",
                stoppedReason="Local",
            ),
        )
        assert self.transaction_id is not None, "stop only a running transaction"
        self.stats.stopped.append(self.transaction_id)
        self.transaction_id = None

    async def meter(self, *, record: bool = False) -> None:
        self.wh += 10
        if self.transaction_id is None:  # J01: outside a transaction, MeterValues
            await self.call(
                "MeterValues",
                {"evseId": 1, "meterValue": meter_values_201(self.wh, "Sample.Periodic")},
                record=record,
            )
            return
        await self.call(
            "TransactionEvent",
            self._event("Updated", "MeterValuePeriodic", context="Sample.Periodic"),
            record=record,
        )


def notify_report_201(request_id: int) -> dict:
    """A small FullInventory report (one message): identity and the security profile in use."""

    def variable(component: str, name: str, value: str) -> dict:
        return {
            "component": {"name": component},
            "variable": {"name": name},
            "variableAttribute": [{"type": "Actual", "value": value, "mutability": "ReadOnly"}],
        }

    return {
        "requestId": request_id,
        "generatedAt": _now_iso(),
        "seqNo": 0,
        "tbc": False,
        "reportData": [
            variable("ChargingStation", "Model", "LoadGen-1"),
            variable("ChargingStation", "VendorName", "Bench"),
            variable("SecurityCtrlr", "SecurityProfile", "1"),
        ],
    }


def meter_values_201(wh: int, context: str) -> list[dict]:
    """The three sampled values of meter_values_payload in 2.0.1's MeterValueType (numbers, unitOfMeasure)."""
    return [
        {
            "timestamp": _now_iso(),
            "sampledValue": [
                {
                    "value": wh,
                    "measurand": "Energy.Active.Import.Register",
                    "unitOfMeasure": {"unit": "Wh"},
                    "context": context,
                },
                {
                    "value": 7360,
                    "measurand": "Power.Active.Import",
                    "unitOfMeasure": {"unit": "W"},
                    "context": context,
                },
                {
                    "value": 32.0,
                    "measurand": "Current.Import",
                    "unitOfMeasure": {"unit": "A"},
                    "context": context,
                },
            ],
        }
    ]


CHARGERS = {"1.6": Charger, "2.0.1": Charger201}


class Stats:
    # Set by _worker_main where they apply (load_cpu_s: closed and storm modes only).
    setup_s: float
    answered_setup: list[str]
    load_cpu_s: float

    def __init__(self) -> None:
        self.latencies: list[float] = []
        # Per action: a Heartbeat is answered at once, MeterValues only once committed.
        self.by_action: dict[str, list[float]] = {}
        self.ok = 0
        self.errors = 0
        self.error_samples: list[str] = []
        self.connected = 0
        self.server_calls = 0
        self.answered: list[str] = []
        self.started: list[int | str] = []
        self.stopped: list[int | str] = []
        self.online_at: list[float] = []
        self.steps: dict[str, list[float]] = {}  # storm: ms per reconnect step (`_storm`)
        self.attempts = 0  # storm: reconnect attempts, refused ones included
        # storm: the failed reconnect attempts by what failed them (the exception's class and
        # the step), each at its wall time
        self.attempt_failures: dict[str, list[float]] = {}
        self.window_ok = 0
        # The generator's own event-loop lag (ms a 100 ms sleep overslept), sampled during the
        # run: it shares the cores with the server, and a late generator looks like a slow server.
        self.loop_lag_ms: list[float] = []

    def error(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(exc).__name__}: {exc}"[:200])

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


# -- worker process ----------------------------------------------------------------------------


async def _setup(
    chargers: list[Charger], spec: dict[str, Any], stats: Stats, echo: bool
) -> list[Charger]:
    """Connect, boot and prepare every charger; return those that made it."""
    gate = asyncio.Semaphore(spec.get("connect_concurrency", 200))
    charging_share = spec.get("charging_share", 0.0)

    async def one(ch: Charger) -> Charger | None:
        async with gate:
            try:
                await ch.connect()
                await ch.boot(echo=echo)
                if spec["mode"] != "closed":
                    await ch.status("Available")
                if spec["mode"] == "closed" or ch.rng.random() < charging_share:
                    await ch.start_transaction(echo=echo)
                    if ch.transaction_id is not None:
                        stats.started.append(ch.transaction_id)
                stats.connected += 1
                return ch
            except Exception as exc:
                stats.error(exc)
                await ch.close()
                return None

    done = await asyncio.gather(*(one(ch) for ch in chargers))
    return [ch for ch in done if ch is not None]


async def _closed_loop(ch: Charger, start: float, end: float, stats: Stats) -> None:
    action = random.randint(0, 1)
    try:
        while True:
            now = time.time()
            if now >= end:
                return
            record = now >= start
            if action:
                await ch.meter(record=record)
            else:
                await ch.call("Heartbeat", {}, record=record)
            if record and time.time() <= end:
                stats.window_ok += 1
            action ^= 1
    except Exception as exc:
        stats.error(exc)


async def _fleet(ch: Charger, start: float, end: float, spec: dict, stats: Stats) -> None:
    hb_every, meter_every = spec.get("heartbeat_s", 60), spec.get("meter_s", 10)
    status_every = spec.get("status_s", 300)
    now = time.time()
    next_hb = start + random.uniform(0, hb_every)
    next_meter = (
        start + random.uniform(0, meter_every) if ch.transaction_id is not None else float("inf")
    )
    next_status = start + random.expovariate(1 / status_every)
    status_cycle = (
        ["Charging", "SuspendedEV"]
        if ch.transaction_id is not None
        else ["Available", "Unavailable"]
    )
    try:
        await ch.idle(max(0.0, start - now))
        while True:
            due = min(next_hb, next_meter, next_status)
            if due >= end:
                await ch.idle(end - time.time())
                return
            await ch.idle(due - time.time())
            if due == next_hb:
                await ch.call("Heartbeat", {}, record=True)
                next_hb += hb_every
            elif due == next_meter:
                await ch.meter(record=True)
                next_meter += meter_every
            else:
                status_cycle.reverse()
                await ch.call(
                    "StatusNotification",
                    {
                        "connectorId": 1,
                        "errorCode": "NoError",
                        "status": status_cycle[0],
                        "timestamp": _now_iso(),
                    },
                    record=True,
                )
                next_status += random.expovariate(1 / status_every)
            stats.window_ok += 1
    except Exception as exc:
        stats.error(exc)


async def _storm(ch: Charger, spec: dict, stats: Stats, online: Synchronized[int]) -> None:
    """Stay connected (metering if charging) until the server drops us, then come back."""
    meter_every = spec.get("meter_s", 5)
    try:
        while True:
            await ch.idle(ch.rng.uniform(0.5, meter_every) if ch.transaction_id else 3600)
            if ch.transaction_id is not None:
                await ch.meter()
    except (websockets.ConnectionClosed, OSError, CallFailed, TimeoutError):
        pass
    except Exception as exc:
        stats.error(exc)
        return
    try:
        back = await _reconnect(ch, spec, stats, online)
    except asyncio.CancelledError:
        stats.error(TimeoutError("not back when the run ended"))
        raise
    if not back:
        return
    # Back: answer the server's calls until the worker ends the run by cancelling this task. A
    # poll of the stop event every 0.5 s per charger (20,000 timed waits a second at 10,000
    # chargers) cost the load generator more CPU than the server it shares the box with, and
    # the more the longer a server took to bring everyone back.
    try:
        await ch.idle(24 * 3600)
    except Exception:
        return


async def _reconnect(ch: Charger, spec: dict, stats: Stats, online: Synchronized[int]) -> bool:
    """Reconnect as an OCPP charger does; True once back (connected, booted, reported)."""
    # OCPP chargers wait a random back-off before reconnecting, then double it after each
    # failed attempt (as real chargers do, e.g. 1.6 security whitepaper's RetryBackOff*).
    backoff = ch.rng.uniform(0, spec.get("spread_s", 5))
    await asyncio.sleep(backoff)
    deadline = time.monotonic() + spec.get("reconnect_deadline_s", 120)
    last = None
    charging = ch.transaction_id is not None
    while time.monotonic() < deadline:
        # Each step's time in the attempt that succeeds, by whether the charger was charging:
        # where a reconnect waits (connect includes the refused attempts' last one only).
        steps: list[tuple[str, float]] = []
        try:
            stats.attempts += 1
            for name, step in (
                ("connect", ch.connect),
                ("boot", ch.boot),
                (
                    "status",
                    lambda: ch.status("Charging" if ch.transaction_id is not None else "Available"),
                ),
            ):
                began = time.perf_counter()
                await step()
                steps.append((name, time.perf_counter() - began))
            if ch.transaction_id is not None:
                for name, step in (
                    ("meter", ch.meter),
                    ("stop", ch.stop_transaction),
                    ("status", lambda: ch.status("Available")),
                ):
                    began = time.perf_counter()
                    await step()
                    steps.append(
                        (name if name != "status" else "status_after", time.perf_counter() - began)
                    )
            kind = "charging" if charging else "idle"
            for name, took in steps:
                stats.steps.setdefault(f"{kind}:{name}", []).append(1000 * took)
            stats.online_at.append(time.time())
            with online.get_lock():
                online.value += 1
            return True
        except Exception as exc:
            last = exc
            failed_step = ("connect", "boot", "status", "meter", "stop", "status")[len(steps)]
            stats.attempt_failures.setdefault(f"{failed_step}: {type(exc).__name__}", []).append(
                time.time()
            )
            await ch.close()
            # "backoff": False: a charger that retries at a fixed short interval instead (some
            # firmware does), the herd a server must survive without the chargers' help.
            if spec.get("backoff", True):
                backoff = min(max(2 * backoff, 1.0), 60.0)
            else:
                backoff = spec.get("retry_s", 1.0)
            await asyncio.sleep(backoff)
    stats.error(last or TimeoutError("never reconnected"))
    return False


async def cancel_all(tasks: Sequence[asyncio.Future[None]]) -> None:
    """Cancel until every task has ended. Python 3.11's `wait_for` swallows a cancellation that
    lands as its read completes (the read's result wins); the charger then went on reading for
    a day and the run never started (seen when a server CALL arrived at the start)."""
    pending = [t for t in tasks if not t.done()]
    while pending:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.5)
        pending = [t for t in pending if not t.done()]
    await asyncio.gather(*tasks, return_exceptions=True)


async def _answer_until_cancelled(ch: Charger) -> None:
    try:
        await ch.idle(24 * 3600)
    except (websockets.ConnectionClosed, OSError):
        pass  # the run's first call reports a charger that went away


async def _worker_main(
    spec: dict,
    stations: list[str],
    ready_q: Queue[int],
    start_value: Synchronized[float],
    stop_event: Event,
    online: Synchronized[int],
) -> dict:
    stats = Stats()
    echo = spec.get("echo", False)
    urls = spec["urls"]
    kind = CHARGERS[spec.get("protocol", "1.6")]
    chargers = [kind(sid, urls[i % len(urls)], stats) for i, sid in enumerate(stations)]
    sources = spec.get("sources") or []
    for i, ch in enumerate(chargers):
        ch.source = sources[(i // len(urls)) % len(sources)] if sources else None
    if spec.get("seed") is not None:
        for ch in chargers:
            ch.rng.seed(f"{spec['seed']}:{ch.station_id}")
    if spec.get("tls"):
        _over_tls(chargers, spec)
    setup_started = time.time()
    alive = await _setup(chargers, spec, stats, echo)
    stats.setup_s = time.time() - setup_started
    stats.ok = 0
    stats.answered_setup = list(stats.answered)
    ready_q.put(len(alive))
    # Until the run starts, every charger answers the server's calls as a real one does (the
    # checks after boot, a power budget's profiles): unanswered, they timed out after 10 s and
    # the server recorded a refusal no charger made. Cancelling a read loses nothing
    # (websockets' asyncio recv is cancellation-safe), so the run's own reads take over.
    answering = [asyncio.ensure_future(_answer_until_cancelled(ch)) for ch in alive]
    while start_value.value == 0:
        await asyncio.sleep(0.02)
    await cancel_all(answering)
    start = start_value.value
    end = start + spec.get("duration", 10)
    cpu_started = time.process_time()
    lag = asyncio.ensure_future(_sample_loop_lag(stats.loop_lag_ms))
    if spec["mode"] == "closed":
        await asyncio.gather(*(_closed_loop(ch, start, end, stats) for ch in alive))
        stats.load_cpu_s = time.process_time() - cpu_started  # summed over the workers
    elif spec["mode"] == "fleet":
        await asyncio.gather(*(_fleet(ch, start, end, spec, stats) for ch in alive))
    elif spec["mode"] == "storm":
        storms = [asyncio.ensure_future(_storm(ch, spec, stats, online)) for ch in alive]
        while not stop_event.is_set():
            await asyncio.sleep(0.25)
        await cancel_all(storms)
        stats.load_cpu_s = (
            time.process_time() - cpu_started
        )  # metering, the restart and the reconnect
    lag.cancel()
    await asyncio.gather(lag, return_exceptions=True)
    await asyncio.gather(*(ch.close() for ch in alive))
    return stats.as_dict()


def _over_tls(chargers: list[Charger], spec: dict) -> None:
    """Each charger's TLS context (bench/tls.py): one shared at profile 2, its own certificate at
    profile 3, where it sends no password."""
    from bench import tls

    shared = tls.client_context(spec, "") if spec["tls"]["profile"] == 2 else None
    for ch in chargers:
        ch.ssl = shared or tls.client_context(spec, ch.station_id)
        ch.password = spec["tls"]["profile"] == 2


async def _sample_loop_lag(samples: list[float], every: float = 0.1) -> None:
    while True:
        before = time.perf_counter()
        await asyncio.sleep(every)
        samples.append((time.perf_counter() - before - every) * 1000)


def _worker(
    spec: dict,
    stations: list[str],
    ready_q: Queue[int],
    result_q: Queue[dict],
    start_value: Synchronized[float],
    stop_event: Event,
    online: Synchronized[int],
) -> None:
    raise_fd_limit()
    random.seed()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        result = asyncio.run(_worker_main(spec, stations, ready_q, start_value, stop_event, online))
    except Exception as exc:  # report instead of hanging the parent
        ready_q.put(0)
        result = {"errors": 1, "error_samples": [f"worker crashed: {exc!r}"]}
    result_q.put(result)


class Load:
    """Run a load spec over `workers` client processes; the caller drives the phases."""

    def __init__(self, spec: dict, stations: list[str], workers: int = 2) -> None:
        ctx = mp.get_context("spawn")
        self.ready_q, self.result_q = ctx.Queue(), ctx.Queue()
        self.start_value = ctx.Value("d", 0.0)
        self.stop_event = ctx.Event()
        self.online = ctx.Value(
            "i", 0
        )  # storm: chargers back online (connected, booted, caught up)
        workers = max(1, min(workers, len(stations)))
        self.procs = [
            ctx.Process(
                target=_worker,
                daemon=True,
                args=(
                    spec,
                    stations[i::workers],
                    self.ready_q,
                    self.result_q,
                    self.start_value,
                    self.stop_event,
                    self.online,
                ),
            )
            for i in range(workers)
        ]
        self.setup_started = time.time()
        for proc in self.procs:
            proc.start()

    def wait_ready(self, timeout: float = 600) -> int:
        connected = 0
        for _ in self.procs:
            connected += self.ready_q.get(timeout=timeout)
        self.setup_s = time.time() - self.setup_started
        return connected

    def start(self, delay: float = 0.2) -> float:
        start = time.time() + delay
        self.start_value.value = start
        return start

    def stop(self) -> None:
        self.stop_event.set()

    def results(self, timeout: float = 600) -> dict:
        merged = Stats().as_dict()
        merged["setup_s"] = 0.0
        merged["answered_setup"] = []
        for _ in self.procs:
            part = self.result_q.get(timeout=timeout)
            for key, value in part.items():
                if isinstance(value, list):
                    merged.setdefault(key, []).extend(value)
                elif isinstance(value, dict):
                    for name, values in value.items():
                        merged.setdefault(key, {}).setdefault(name, []).extend(values)
                elif key == "setup_s":
                    merged[key] = max(merged[key], value)
                else:
                    merged[key] = merged.get(key, 0) + value
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
        return merged

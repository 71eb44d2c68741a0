"""An upstream central system for proxy tests: another backoffice, written with the `ocpp` package
and `websockets` (not our code), that a charger behind our proxy is also connected to.

It checks HTTP Basic auth (station id + password), numbers its transactions from `tx_base`,
answers Authorize / StartTransaction with a configurable card status, records every CALL it
receives (as received: transactionIds in its own numbering) and can send CALLs to the charger.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

from ocpp.exceptions import InternalError, OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from websockets.asyncio.server import serve

logging.getLogger("ocpp").setLevel(logging.WARNING)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class UpstreamCsms:
    def __init__(
        self,
        name: str,
        *,
        port: int,
        password: str,
        tx_base: int,
        statuses: dict[str, str] | None = None,
        default_status: str = "Accepted",
        interval: int = 300,
        delays: dict[str, float | asyncio.Event] | None = None,
        fail: frozenset[str] = frozenset(),
    ) -> None:
        self.name, self.port, self.password = name, port, password
        self.statuses = statuses or {}
        self.default_status = default_status
        self.interval = interval
        self.delays = (
            delays or {}
        )  # action -> seconds before answering (a slow backoffice), or an Event to wait for
        self.fail = fail  # actions answered with a CALLERROR (InternalError)
        self._tx = itertools.count(tx_base)
        self.received: list[tuple[str, dict]] = []
        self.points: dict[str, ChargePoint] = {}
        self.refused_auth = 0
        self._server = None

    async def start(self) -> UpstreamCsms:
        self._server = await serve(
            self._handler,
            "127.0.0.1",
            self.port,
            subprotocols=["ocpp1.6"],
            ping_interval=None,
            process_request=self._check_auth,
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.points.clear()

    def _check_auth(self, connection, request):
        station_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        expected = "Basic " + base64.b64encode(f"{station_id}:{self.password}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            self.refused_auth += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Bad credentials\n")
        return None

    async def _handler(self, ws) -> None:
        station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        point = _Point(station_id, ws, self)
        self.points[station_id] = point
        try:
            await point.start()
        except Exception:
            pass
        finally:
            if self.points.get(station_id) is point:
                del self.points[station_id]

    def actions(self, name: str) -> list[dict]:
        return [payload for action, payload in self.received if action == name]

    async def wait_for(self, predicate, timeout: float = 20.0):
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"{self.name}: condition not met in {timeout} s; received {self.received}"
                )
            await asyncio.sleep(0.05)

    async def remote_start(self, station_id: str, id_tag: str):
        """RemoteStartTransaction to the charger; the answer, or the error (code, description) the proxy sent."""
        try:
            return await self.points[station_id].call(
                call.RemoteStartTransaction(id_tag=id_tag), suppress=False
            )
        except OCPPError as exc:
            return _Refused(exc.code, exc.description)


@dataclass
class _Refused:
    error_code: str
    error_description: str


class _Point(ChargePoint):
    def __init__(self, station_id, ws, csms: UpstreamCsms):
        super().__init__(station_id, ws)
        self.csms = csms

    def _status(self, id_tag: str) -> str:
        return self.csms.statuses.get(id_tag, self.csms.default_status)

    @on(Action.boot_notification)
    async def on_boot(self, **kwargs):
        self.csms.received.append(("BootNotification", kwargs))
        return call_result.BootNotification(
            current_time=_now(), interval=self.csms.interval, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self, **kwargs):
        self.csms.received.append(("Heartbeat", kwargs))
        await self._behave("Heartbeat")
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    async def on_status(self, **kwargs):
        self.csms.received.append(("StatusNotification", kwargs))
        await self._behave("StatusNotification")
        return call_result.StatusNotification()

    async def _behave(self, action: str) -> None:
        delay = self.csms.delays.get(action)
        if isinstance(delay, asyncio.Event):  # held until the test lets it answer
            await delay.wait()
        elif delay:
            await asyncio.sleep(delay)
        if action in self.csms.fail:
            raise InternalError(description=f"{self.csms.name} failed on purpose")

    @on(Action.authorize)
    async def on_authorize(self, id_tag, **kwargs):
        self.csms.received.append(("Authorize", {"id_tag": id_tag}))
        await self._behave("Authorize")
        return call_result.Authorize(id_tag_info={"status": self._status(id_tag)})

    @on(Action.start_transaction)
    async def on_start(self, **kwargs):
        self.csms.received.append(("StartTransaction", kwargs))
        return call_result.StartTransaction(
            transaction_id=next(self.csms._tx),
            id_tag_info={"status": self._status(kwargs["id_tag"])},
        )

    @on(Action.meter_values)
    async def on_meter_values(self, **kwargs):
        self.csms.received.append(("MeterValues", kwargs))
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop(self, **kwargs):
        self.csms.received.append(("StopTransaction", kwargs))
        return call_result.StopTransaction()

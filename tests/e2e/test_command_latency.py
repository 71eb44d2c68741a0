"""A command sent through the API returns as soon as the charger answers, however many chargers
are connected to the server process (real server, 24 chargers on plain websockets; run it on
PostgreSQL + Redis and on SQLite + the in-memory channel layer).

The server runs with a 120 s call timeout. A command whose answer got stuck on its way back to
the API call (channels_redis only reads one process-local reply key at a time, so a reply
channel with its own prefix waited for the call timeout) returns only after that timeout, with
the right answer. So each API call here must return the charger's own answer well before it
(a quarter of the timeout), and a charger that has not answered yet must hold up no other
charger's command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
import websockets

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

if TYPE_CHECKING:
    from tests.conftest import LiveServer

pytestmark = pytest.mark.e2e

CALL_TIMEOUT_S = 120
BOUND_S = CALL_TIMEOUT_S / 4
FLEET = 24
# Each action gets its own answer, so an API call that returned another command's answer shows.
ANSWERS = {"ClearCache": "Accepted", "ChangeAvailability": "Scheduled"}
PAYLOADS: dict[str, dict] = {
    "ClearCache": {},
    "ChangeAvailability": {"connectorId": 0, "type": "Operative"},
}

Outcome = tuple[int, dict] | str


class RawCharger:
    """A charger written from the OCPP-J text: boots, then answers every CALL of the server."""

    def __init__(self, station_id: str) -> None:
        self.station_id = station_id
        self.calls: list[tuple[str, str]] = []  # (unique id, action) of each CALL, in order
        self.called = asyncio.Event()
        self.ready = asyncio.Event()
        self.release: asyncio.Event | None = None  # when given, answer only once it is set

    async def run(self, ws_url: str) -> None:
        async with websockets.connect(
            f"{ws_url}/ocpp/{self.station_id}", subprotocols=["ocpp1.6"]
        ) as ws:
            boot = {"chargePointVendor": "LatencyCo", "chargePointModel": "L1"}
            await ws.send(json.dumps([2, "boot-1", "BootNotification", boot]))
            reply = json.loads(await ws.recv())
            assert reply[:2] == [3, "boot-1"], reply
            self.ready.set()
            async for text in ws:
                frame = json.loads(text)
                if frame[0] != 2:
                    continue
                self.calls.append((frame[1], frame[2]))
                self.called.set()
                if self.release is not None:
                    await self.release.wait()
                await ws.send(
                    json.dumps([3, frame[1], {"status": ANSWERS.get(frame[2], "Accepted")}])
                )


@contextlib.asynccontextmanager
async def connected(ws_url: str, chargers: list[RawCharger]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(charger.run(ws_url)) for charger in chargers]
    try:
        await asyncio.wait_for(asyncio.gather(*(charger.ready.wait() for charger in chargers)), 60)
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def api_client(base_url: str, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=BOUND_S) as http:
        token = await http.post(
            "/api/v1/auth/token/", json={"username": username, "password": "secret-pass-123"}
        )
        http.headers["Authorization"] = f"Token {token.json()['token']}"
        yield http


async def send(http: httpx.AsyncClient, station_id: str, action: str) -> Outcome:
    """POST the command; the HTTP status and body, or a note that the API did not return in time."""
    try:
        response = await http.post(
            f"/api/v1/chargers/{station_id}/commands/{action}/", json=PAYLOADS[action]
        )
    except httpx.TimeoutException:
        return (
            f"no API answer within {BOUND_S:g} s (a quarter of the {CALL_TIMEOUT_S} s call timeout)"
        )
    return response.status_code, response.json()


def answered(action: str) -> Outcome:
    status = ANSWERS[action]
    return 200, {"status": status, "response": {"status": status}}


@pytest.fixture
def server(
    transactional_db: None, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> LiveServer:
    """The real server process, started with a 120 s call timeout."""
    monkeypatch.setenv("OCPP_CALL_TIMEOUT", str(CALL_TIMEOUT_S))
    return request.getfixturevalue("live_server_proc")


def _fleet() -> tuple[str, list[RawCharger]]:
    prop = PropertyFactory()
    user = MembershipFactory(organization=prop.organization, role="owner").user
    chargers = [RawCharger(f"LAT-{n:03d}") for n in range(FLEET)]
    for charger in chargers:
        ChargerFactory(property=prop, station_id=charger.station_id)
    return user.username, chargers


def _commands_by_station() -> dict[str, list]:
    from chargers.models import Command

    by_station: dict[str, list] = {}
    for command in Command.objects.select_related("charger").order_by("pk"):
        by_station.setdefault(command.charger.station_id, []).append(command)
    return by_station


def test_commands_one_after_another_return_each_chargers_answer(server: LiveServer) -> None:
    username, chargers = _fleet()
    targets = [
        (chargers[0], "ClearCache"),
        (chargers[7], "ChangeAvailability"),
        (chargers[13], "ClearCache"),
        (chargers[23], "ChangeAvailability"),
        (chargers[7], "ClearCache"),
    ]

    async def scenario() -> None:
        async with connected(server.ws_url, chargers):
            async with api_client(server.url, username) as http:
                for charger, action in targets:
                    outcome = await send(http, charger.station_id, action)
                    assert outcome == answered(action), (
                        f"{action} to {charger.station_id}: {outcome}"
                    )
                    # The CALL reached the charger before the API call returned: it answered it.
                    assert charger.calls and charger.calls[-1][1] == action

    asyncio.run(scenario())

    from chargers.models import Command

    by_station = _commands_by_station()
    assert sorted(by_station) == ["LAT-000", "LAT-007", "LAT-013", "LAT-023"]
    for charger in chargers:
        commands = by_station.get(charger.station_id, [])
        # Each command went to its own charger only, and the row holds that charger's answer.
        assert [(c.unique_id, c.action) for c in commands] == charger.calls
        for command in commands:
            assert command.status == Command.Status.ANSWERED
            assert command.response == {"status": ANSWERS[command.action]}


def test_concurrent_commands_are_not_held_up_by_a_charger_that_has_not_answered(
    server: LiveServer,
) -> None:
    username, chargers = _fleet()
    held, others = chargers[0], chargers[1:7]
    held.release = asyncio.Event()

    async def scenario() -> tuple[dict[tuple[str, str], Outcome], bool, Outcome]:
        async with connected(server.ws_url, chargers):
            async with api_client(server.url, username) as http:
                held_call = asyncio.create_task(send(http, held.station_id, "ClearCache"))
                await asyncio.wait_for(held.called.wait(), BOUND_S)
                jobs = [(charger.station_id, action) for charger in others for action in ANSWERS]
                outcomes = await asyncio.gather(
                    *(send(http, station_id, action) for station_id, action in jobs)
                )
                held_still_owed = not held_call.done() and len(held.calls) == 1
                held.release.set()
                return dict(zip(jobs, outcomes, strict=True)), held_still_owed, await held_call

    outcomes, held_still_owed, held_outcome = asyncio.run(scenario())
    # Every other command returned its own charger's answer to its own action ...
    assert outcomes == {job: answered(job[1]) for job in outcomes}
    # ... all while the held charger still owed its answer; then the held one returned too.
    assert held_still_owed
    assert held_outcome == answered("ClearCache")

    from chargers.models import Command

    by_station = _commands_by_station()
    assert sorted(by_station) == sorted(charger.station_id for charger in [held, *others])
    for charger in [held, *others]:
        commands = by_station[charger.station_id]
        # Each charger got exactly the CALLs meant for it; each row holds its own CALL's answer.
        assert sorted((c.unique_id, c.action) for c in commands) == sorted(charger.calls)
        for command in commands:
            assert command.status == Command.Status.ANSWERED
            assert command.response == {"status": ANSWERS[command.action]}
    (held_command,) = by_station[held.station_id]
    others_completed = [
        c.completed_at for charger in others for c in by_station[charger.station_id]
    ]
    assert held_command.completed_at > max(others_completed)

"""State stays true across restarts, reconnects and out-of-order messages."""

import pytest
from asgiref.sync import sync_to_async

from chargers.connections import process
from chargers.models import Charger, ChargingSession, OcppServerProcess
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def _client(station_id="CP-TEST-1"):
    client = OcppTestClient(station_id)
    ok, _ = await client.connect()
    assert ok
    return client


@pytest.mark.parametrize("newer_first", [True, False])
async def test_out_of_order_starts_never_leave_two_active_sessions(charger, token, newer_first):
    client = await _client()
    older = {
        "connectorId": 1,
        "idTag": "04A1B2C3",
        "meterStart": 10,
        "timestamp": "2026-11-20T10:00:00Z",
    }
    newer = {
        "connectorId": 1,
        "idTag": "04A1B2C3",
        "meterStart": 20,
        "timestamp": "2026-11-20T11:00:00Z",
    }
    for payload in [newer, older] if newer_first else [older, newer]:
        await client.result("StartTransaction", payload)
    sessions = [
        s async for s in ChargingSession.objects.filter(charger=charger).order_by("started_at")
    ]
    assert [s.status for s in sessions] == ["completed", "active"]
    assert sessions[0].stop_reason == "Superseded" and sessions[0].meter_start_wh == 10
    # The charger's own late stop of the older one still replaces the estimate, once.
    await client.result(
        "StopTransaction",
        {
            "transactionId": sessions[0].transaction_id,
            "meterStop": 15,
            "timestamp": "2026-11-20T10:30:00Z",
        },
    )
    await sessions[0].arefresh_from_db()
    assert (sessions[0].meter_stop_wh, sessions[0].stop_reason) == (15, "Local")
    await client.close()


async def test_connections_of_a_dead_process_are_cleared_and_live_ones_kept(charger, prop):
    from tests.factories import ChargerFactory

    other = await sync_to_async(ChargerFactory)(station_id="CP-LIVE", property=prop)
    await sync_to_async(process.server_process_heartbeat)(
        key="alive-elsewhere", hostname="another-host", pid=1, started_at=process.STARTED_AT
    )
    await Charger.objects.filter(pk=charger.pk).aupdate(
        connection_id="x", connection_process="gone-process"
    )
    await Charger.objects.filter(pk=other.pk).aupdate(
        connection_id="y", connection_process="alive-elsewhere"
    )
    cleared = await sync_to_async(process.connections_clear_dead_processes)(own_key=process.KEY)
    assert cleared == 1
    assert (await Charger.objects.aget(pk=charger.pk)).connection_id == ""
    assert (await Charger.objects.aget(pk=other.pk)).connection_id == "y"
    # A process on this host whose pid is gone is dead at once, heartbeat or not.
    import socket

    await sync_to_async(process.server_process_heartbeat)(
        key="killed-here",
        hostname=socket.gethostname(),
        pid=2**22 + 12345,
        started_at=process.STARTED_AT,
    )
    await Charger.objects.filter(pk=other.pk).aupdate(connection_process="killed-here")
    assert await sync_to_async(process.connections_clear_dead_processes)(own_key=process.KEY) == 1
    assert not await OcppServerProcess.objects.filter(key="killed-here").aexists()


async def test_a_live_process_here_keeps_its_connections_when_its_heartbeat_is_late(charger):
    """A process on this host that runs but has not beaten for minutes (starved by a restart
    storm) still holds its sockets; the same pid used again by a later process does not."""
    import os
    import socket
    from datetime import timedelta

    from django.utils import timezone

    async def registered(key: str, started_at) -> None:
        await sync_to_async(process.server_process_heartbeat)(
            key=key, hostname=socket.gethostname(), pid=os.getpid(), started_at=started_at
        )
        late = timezone.now() - timedelta(seconds=10 * process.PROCESS_STALE_AFTER_S)
        await OcppServerProcess.objects.filter(key=key).aupdate(heartbeat_at=late)
        await Charger.objects.filter(pk=charger.pk).aupdate(
            connection_id="z", connection_process=key
        )

    await registered("starved-here", process.STARTED_AT)
    assert await sync_to_async(process.connections_clear_dead_processes)(own_key=process.KEY) == 0
    assert (await Charger.objects.aget(pk=charger.pk)).connection_id == "z"
    assert await OcppServerProcess.objects.filter(key="starved-here").aexists()
    # Registered an hour before this process started: the pid is another process's now.
    await registered("pid-reused", process.STARTED_AT - timedelta(hours=1))
    assert await sync_to_async(process.connections_clear_dead_processes)(own_key=process.KEY) == 1
    assert (await Charger.objects.aget(pk=charger.pk)).connection_id == ""
    assert not await OcppServerProcess.objects.filter(key="pid-reused").aexists()


async def test_clean_stop_marks_every_connection_of_the_process_closed(charger):
    client = await _client()
    assert (await Charger.objects.aget(pk=charger.pk)).connection_process == process.KEY
    await sync_to_async(process.server_process_stopped)(key=process.KEY)
    refreshed = await Charger.objects.aget(pk=charger.pk)
    assert refreshed.connection_id == "" and not refreshed.is_online()
    await client.close()


async def test_two_clients_fighting_over_one_id_are_detected_once(charger, settings, caplog):
    settings.OCPP_IDENTITY_CONFLICT_REPLACEMENTS = 3
    clients = []
    for _ in range(6):
        clients.append(await _client())
    refreshed = await Charger.objects.aget(pk=charger.pk)
    assert (
        refreshed.identity_conflict_at is not None and refreshed.identity_conflict_replacements > 3
    )
    warnings = [r for r in caplog.records if "fighting over station id" in r.getMessage()]
    assert len(warnings) == 1
    for client in clients:
        await client.close()


async def test_a_single_reconnect_is_not_a_conflict(charger):
    first = await _client()
    second = await _client()
    assert (await Charger.objects.aget(pk=charger.pk)).identity_conflict_at is None
    await first.close()
    await second.close()


async def test_scheduled_garbage_collection_stops_when_the_server_is_told_to_stop(monkeypatch):
    """GC_MODE=scheduled collects every second; a stopping process frees ten thousand connections'
    objects, and collecting them cost a fifth of a SIGTERM: the schedule ends with the server."""
    import asyncio
    import gc
    from types import SimpleNamespace

    from chargers.management.commands import serve

    real_sleep = asyncio.sleep

    async def a_second_passes(delay, *args, **kwargs):
        await real_sleep(0)

    collections: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation) or 0)
    monkeypatch.setattr(asyncio, "sleep", a_second_passes)
    server = SimpleNamespace(should_exit=False)
    schedule = asyncio.ensure_future(serve._collect_garbage_on_schedule(server))
    while len(collections) < 2:
        await real_sleep(0)
    assert set(collections) == {1}  # the young generations, every second
    server.should_exit = True
    await asyncio.wait_for(schedule, 5)


@pytest.mark.parametrize("pid", [0, -1, 2**70])
def test_a_pid_no_process_can_have_is_dead(pid):
    """A registration's pid that names a process group (0, -1: kill(-1, 0) asks every process)
    or exceeds the platform's pid type is no live process; it never stops the clearing."""
    from django.utils import timezone

    assert process.same_process_alive(pid, timezone.now()) is False

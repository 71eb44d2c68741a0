"""The connection path in batches (chargers.state.charger, chargers.plumbing.batching): many chargers
share round trips, yet each gets its own committed result, in order, and one bad item fails only
its own caller."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from chargers.devices.commands import command_group
from chargers.models import Charger, Connector, DeviceVariable, StatusEvent
from chargers.plumbing.batching import Coalescer
from chargers.state import charger as connection_state
from chargers.state.charger import ConnectionChange, StatusChange
from tests.factories import ChargerFactory
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)


async def test_concurrent_callers_share_batches_and_each_gets_its_own_result():
    calls = []

    def apply(items):
        calls.append(list(items))
        return [item * 10 for item in items]

    coalescer = Coalescer("test", apply)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(200)))
    assert results == [i * 10 for i in range(200)]
    assert sum(len(batch) for batch in calls) == 200
    assert len(calls) < 10  # shared round trips, not one per caller
    assert [item for batch in calls for item in batch] == list(range(200))  # in submission order


async def test_one_bad_item_fails_only_its_own_caller():
    def apply(items):
        if 13 in items:
            raise ValueError("unlucky")
        return list(items)

    coalescer = Coalescer("test", apply)
    results = await asyncio.gather(
        *(coalescer.submit(i) for i in range(30)), return_exceptions=True
    )
    assert isinstance(results[13], ValueError)
    assert [r for i, r in enumerate(results) if i != 13] == [i for i in range(30) if i != 13]


async def test_an_outage_fails_every_caller_of_the_batch_at_once():
    from django.db import OperationalError

    tried = []

    def apply(items):
        tried.append(len(items))
        raise OperationalError("connection refused")

    coalescer = Coalescer("test", apply)
    results = await asyncio.gather(
        *(coalescer.submit(i) for i in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, OperationalError) for r in results)
    assert sum(tried) == 20  # not retried one by one (callers journal instead)


async def test_a_deadlock_is_retried_not_taken_for_an_outage():
    """Two batches that lock the same rows in different orders: PostgreSQL rolls one back
    (deadlock, SQLSTATE 40P01). The database is there, so the batch runs again; the callers
    get their results and nobody journals."""
    import psycopg
    from django.db import OperationalError

    from chargers.plumbing.journal import is_outage, is_transient

    tried = []

    def apply(items):
        tried.append(len(items))
        if len(tried) == 1:
            try:
                raise psycopg.errors.DeadlockDetected("deadlock detected")
            except psycopg.Error as exc:  # as Django raises it: wrapped, the driver's as its cause
                raise OperationalError(*exc.args) from exc
        return list(items)

    coalescer = Coalescer("test", apply)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(20)))
    assert results == list(range(20))
    assert tried == [20, 20]  # the whole batch again, not one by one
    deadlock = OperationalError("deadlock detected")
    deadlock.__cause__ = psycopg.errors.DeadlockDetected()
    assert is_outage(deadlock) and is_transient(deadlock)
    assert not is_transient(OperationalError("connection refused"))


async def test_lookups_in_one_batch_match_exactly(prop):
    await sync_to_async(ChargerFactory)(station_id="CP-A", property=prop)
    await sync_to_async(ChargerFactory)(station_id="cp-b", property=prop)
    found = await asyncio.gather(
        *(connection_state.lookup(s) for s in ["CP-A", "CP-B", "cp-b", "CP-A", "nope"])
    )
    assert [c.station_id if c else None for c in found] == ["CP-A", None, "cp-b", "CP-A", None]


# The batches below go through the coalescers' own batch functions: on PostgreSQL the async
# statements of the event loop, on SQLite the ORM on the database pool (each CI pass runs one).


async def test_a_disconnect_never_clears_a_newer_connection(charger):
    now = timezone.now()
    record = connection_state._connections.apply_async
    await record(
        [
            ConnectionChange(charger.pk, "old", True, now, "p1"),
            ConnectionChange(charger.pk, "new", True, now, "p1"),
            ConnectionChange(charger.pk, "old", False, now),  # the replaced socket closes after
        ]
    )
    await charger.arefresh_from_db()
    assert (charger.connection_id, charger.connection_process, charger.connected_at) == (
        "new",
        "p1",
        now,
    )
    await record([ConnectionChange(charger.pk, "new", False, now)])
    await charger.arefresh_from_db()
    assert charger.connection_id == "" and charger.disconnected_at == now


async def test_a_connection_that_ends_in_its_own_batch_is_cleared_and_other_chargers_keep_theirs(
    charger, prop
):
    other = await sync_to_async(ChargerFactory)(station_id="CP-OTHER", property=prop)
    now = timezone.now()
    await connection_state._connections.apply_async(
        [
            ConnectionChange(charger.pk, "brief", True, now, "p1"),
            ConnectionChange(other.pk, "stays", True, now, "p2"),
            ConnectionChange(charger.pk, "brief", False, now),
        ]
    )
    states = {
        c.pk: (c.connection_id, c.connection_process)
        async for c in Charger.objects.filter(pk__in=[charger.pk, other.pk])
    }
    assert states == {charger.pk: ("", ""), other.pk: ("stays", "p2")}


async def test_a_looked_up_charger_is_the_one_the_orm_reads(charger):
    await Charger.objects.filter(pk=charger.pk).aupdate(
        connected_at=timezone.now(),
        security_profile=2,
        ocpp_password_hash="fast$abc",
        ocpp_version="2.0.1",
    )
    [found] = await connection_state._lookups.apply_async([charger.station_id])
    expected = await Charger.objects.aget(pk=charger.pk)
    fields = [f.attname for f in Charger._meta.concrete_fields]
    assert {f: getattr(found, f) for f in fields} == {f: getattr(expected, f) for f in fields}
    assert found._state.adding is False  # saving it updates the row, it does not insert another


async def test_an_older_status_in_the_same_batch_never_overwrites_a_newer_one(charger):
    t0 = timezone.now()
    later, earlier = t0, t0 - timezone.timedelta(minutes=5)
    await connection_state._statuses.apply_async(
        [
            StatusChange(charger.pk, 1, "Charging", "NoError", timestamp=later),
            StatusChange(
                charger.pk, 1, "Preparing", "NoError", timestamp=earlier
            ),  # queued, arrives late
            StatusChange(
                charger.pk, 2, "Faulted", "GroundFailure", info="x" * 80, timestamp=earlier
            ),
        ]
    )
    states = {
        c.connector_id: (c.status, c.error_code, len(c.info), c.status_timestamp)
        async for c in Connector.objects.filter(charger=charger)
    }
    assert states[1] == ("Charging", "NoError", 0, later)
    assert states[2] == ("Faulted", "GroundFailure", 50, earlier)
    # Every notification is kept for billing and support history, in the charger's order.
    assert [
        s
        async for s in StatusEvent.objects.filter(charger=charger, connector_id=1).values_list(
            "status", flat=True
        )
    ] == ["Preparing", "Charging"]
    # A later batch with an older notification leaves the newer state; a newer one replaces it.
    await connection_state._statuses.apply_async(
        [StatusChange(charger.pk, 1, "Finishing", "NoError", timestamp=earlier)]
    )
    assert (await Connector.objects.aget(charger=charger, connector_id=1)).status == "Charging"
    await connection_state._statuses.apply_async(
        [
            StatusChange(
                charger.pk, 1, "Finishing", "NoError", timestamp=later
            ),  # equal times: the later one wins
            StatusChange(charger.pk, 1, "Available", "NoError", timestamp=later),
        ]
    )
    assert (await Connector.objects.aget(charger=charger, connector_id=1)).status == "Available"
    assert await Connector.objects.filter(charger=charger).acount() == 2
    assert await StatusEvent.objects.filter(charger=charger).acount() == 6


async def test_boot_answers_with_the_registration_status_in_the_database(charger):
    await Charger.objects.filter(pk=charger.pk).aupdate(registration_status="Rejected")
    boot = connection_state.Boot.from_payload(
        charger.pk,
        {"chargePointVendor": "V" * 60, "chargePointModel": "M", "firmwareVersion": "1.2"},
        300,
    )
    again = connection_state.Boot.from_payload(
        charger.pk, {"chargePointVendor": "V2", "chargePointModel": "M"}, 60
    )
    gone = connection_state.Boot.from_payload(charger.pk + 1000, {"chargePointVendor": "X"}, 300)
    assert await connection_state._boots.apply_async([boot, gone]) == [
        ("Rejected", 300, False, True),  # never checked: its energy reporting is due
        ("Rejected", 300, False, False),
    ]
    await charger.arefresh_from_db()
    assert (
        charger.vendor,
        charger.model,
        charger.firmware_version,
        charger.heartbeat_interval,
    ) == ("V" * 50, "M", "1.2", 300)
    assert charger.last_boot_at == boot.at
    # Two boots of one charger in a batch: the later one is what stays.
    await Charger.objects.filter(pk=charger.pk).aupdate(registration_status="Accepted")
    # With a device model stored, the boot says so (no GetBaseReport after it).
    await DeviceVariable.objects.acreate(
        charger=charger, component="ChargingStation", variable="Model", value="M"
    )
    assert await connection_state._boots.apply_async([boot, again, gone]) == [
        ("Accepted", 300, True, True),
        ("Accepted", 60, True, True),
        ("Rejected", 300, False, False),
    ]
    await charger.arefresh_from_db()
    assert (charger.vendor, charger.heartbeat_interval) == ("V2", 60)


async def test_the_boot_says_whether_the_energy_reporting_check_is_due(charger, prop):
    """Read with the boot (issue 48 item 2): due when never checked or checked for another
    vendor/model/firmware; not for a proxied charger or one whose organization turned it off."""
    payload = {"chargePointVendor": "Acme", "chargePointModel": "W", "firmwareVersion": "1.0"}
    boot = connection_state.Boot.from_payload(charger.pk, payload, 60)
    updated = connection_state.Boot.from_payload(
        charger.pk, {**payload, "firmwareVersion": "1.1"}, 60
    )

    async def due(*boots: connection_state.Boot) -> list[bool]:
        return [b.energy_reporting_due for b in await connection_state._boots.apply_async(boots)]

    assert await due(boot) == [True]
    await Charger.objects.filter(pk=charger.pk).aupdate(
        energy_reporting_checked_at=boot.at, energy_reporting_checked_for="Acme|W|1.0"
    )
    assert await due(boot) == [False]
    assert await due(updated) == [True]
    assert await due(updated, boot) == [False, False]  # the charger's last boot counts
    prop.organization.configure_energy_reporting = False
    await prop.organization.asave()
    assert await due(updated) == [False]
    prop.organization.configure_energy_reporting = True
    await prop.organization.asave()
    await Charger.objects.filter(pk=charger.pk).aupdate(proxied=True)
    assert await due(updated) == [False]


async def test_a_second_socket_of_a_charger_closes_the_first_in_this_process(charger):
    first = OcppTestClient(charger.station_id)
    assert (await first.connect())[0]
    second = OcppTestClient(charger.station_id)
    assert (await second.connect())[0]
    closed = await first.communicator.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4000}
    assert (await second.result("Heartbeat", {}))["currentTime"]
    await first.communicator.wait()
    await asyncio.sleep(0.1)
    current = (await Charger.objects.aget(pk=charger.pk)).connection_id
    assert current != ""  # the first socket's disconnect did not clear the second's state
    await second.close()


async def test_an_evicted_socket_takes_no_command_while_its_close_is_pending(charger):
    """The older socket leaves the command group when it is evicted, not when its close ends
    (after a silent drop that close takes ~20 s): a command reaches the new socket only."""
    from chargers.devices.commands import send_command

    first = OcppTestClient(charger.station_id)
    assert (await first.connect())[0]
    second = OcppTestClient(charger.station_id)
    assert (await second.connect())[0]
    # The first's close is sent but, as on a half-open socket, its disconnect has not come yet.
    assert await first.communicator.receive_output(timeout=5) == {
        "type": "websocket.close",
        "code": 4000,
    }

    async def charger_side():
        call = await second.receive()
        await second.send([3, call[1], {"status": "Accepted"}])

    answering = asyncio.create_task(charger_side())
    await charger.arefresh_from_db()
    command = await send_command(charger, "Reset", {"type": "Soft"}, timeout=5)
    await answering
    assert command.status == "answered" and command.response == {"status": "Accepted"}
    assert await first.communicator.receive_nothing(timeout=0.3)
    await first.communicator.send_input({"type": "websocket.disconnect", "code": 1006})
    await first.communicator.wait()
    await second.close()


async def test_a_socket_held_elsewhere_is_told_through_the_channel_layer(charger):
    layer = get_channel_layer()
    elsewhere = await layer.new_channel()
    await layer.group_add(command_group(charger.pk), elsewhere)
    await Charger.objects.filter(pk=charger.pk).aupdate(connection_id="held-by-another-process")
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    told = await asyncio.wait_for(layer.receive(elsewhere), 5)
    assert told["type"] == "cp.superseded"
    assert told["connection_id"] == (await Charger.objects.aget(pk=charger.pk)).connection_id
    await client.close()


async def test_a_status_batch_announces_its_connectors_once_committed(charger):
    from chargers.signals import connector_status_changed

    received = []
    announced = asyncio.Event()
    loop = asyncio.get_running_loop()

    def receiver(sender, connectors, **kwargs):
        # Committed before it is told: another connection sees the new states.
        received.append(
            (
                sorted(connectors),
                sorted(
                    Connector.objects.filter(charger_id=charger.pk).values_list(
                        "connector_id", "status"
                    )
                ),
            )
        )
        loop.call_soon_threadsafe(announced.set)

    connector_status_changed.connect(receiver)
    try:
        await connection_state._statuses.apply_async(
            [
                StatusChange(charger.pk, 1, "Preparing", "NoError"),
                StatusChange(charger.pk, 2, "Available", "NoError"),
                StatusChange(charger.pk, 1, "Charging", "NoError"),
            ]
        )
        await asyncio.wait_for(announced.wait(), 10)
    finally:
        connector_status_changed.disconnect(receiver)
    assert received == [([(charger.pk, 1), (charger.pk, 2)], [(1, "Charging"), (2, "Available")])]


@pytest.mark.parametrize("connector_id", [-1, 2**40])
async def test_a_status_for_an_impossible_connector_is_refused_clearly_and_nothing_else_breaks(
    charger, connector_id
):
    client = OcppTestClient(charger.station_id)
    assert (await client.connect())[0]
    reply = await client.call(
        "StatusNotification",
        {"connectorId": connector_id, "status": "Available", "errorCode": "NoError"},
    )
    assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation"
    assert (
        await client.result(
            "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        )
        == {}
    )
    assert not await Connector.objects.filter(charger=charger).exclude(connector_id=1).aexists()
    await client.close()


@pytest.mark.parametrize("evse_id", [-1, 2**40])
async def test_a_201_status_for_an_impossible_evse_is_refused_clearly(charger, evse_id):
    client = OcppTestClient(charger.station_id, subprotocols=("ocpp2.0.1",))
    assert (await client.connect())[0]
    status = {"timestamp": "2026-11-22T10:00:00Z", "connectorStatus": "Available", "connectorId": 1}
    reply = await client.call("StatusNotification", {**status, "evseId": evse_id})
    assert reply[0] == 4 and reply[2] == "PropertyConstraintViolation"
    assert await client.result("StatusNotification", {**status, "evseId": 1}) == {}
    assert not await Connector.objects.filter(charger=charger).exclude(connector_id=1).aexists()
    await client.close()


async def test_a_transaction_message_rolled_back_by_a_deadlock_is_run_again_not_journaled():
    import psycopg
    from django.db import OperationalError

    from chargers.handlers import common
    from chargers.plumbing.journal import journal

    runs = []

    async def now():
        runs.append(1)
        if len(runs) == 1:
            raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected()
        return "stored"

    assert (
        await common.durably(None, "StopTransaction", {}, "u1", now) == "stored"
    )  # no connection needed: not journaled
    assert len(runs) == 2 and not journal.engaged


async def test_a_batch_that_breaks_settles_every_caller_with_its_error():
    async def apply(items):
        return items[:-1]  # one result short: a bug, not an outage

    coalescer = Coalescer("test", apply_async=apply)
    async with asyncio.timeout(30):  # the guard of a hang, not a measure
        results = await asyncio.gather(
            *(coalescer.submit(i) for i in range(20)), return_exceptions=True
        )
    assert all(isinstance(r, ValueError) for r in results), results


async def test_a_stuck_batch_fails_its_callers_as_an_outage_and_the_next_batch_runs(settings):
    from chargers.plumbing.batching import BatchTimeout
    from chargers.plumbing.journal import is_outage

    settings.OCPP_BATCH_WAIT_S = 0.05
    stuck = asyncio.Event()

    async def apply(items):
        if "stuck" in items:
            await stuck.wait()  # a lock or a lost connection: never comes back by itself
        return items

    coalescer = Coalescer("test", apply_async=apply)
    async with asyncio.timeout(30):  # the guard of a hang, not a measure
        first = await asyncio.gather(
            coalescer.submit("stuck"), coalescer.submit("with it"), return_exceptions=True
        )
        assert all(isinstance(r, BatchTimeout) and is_outage(r) for r in first), first
        assert await coalescer.submit("later") == "later"

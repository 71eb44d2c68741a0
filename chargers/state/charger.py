"""The connection path's database work, batched: who is this charger, it connected, it left,
it booted, its connectors changed status.

Each write here is a service over a list of items (synchronous ORM code, one transaction,
a few statements whatever the number of items), and each has an async entry point that goes
through a `Coalescer` (chargers.plumbing.batching): callers still await their own result, committed,
before they answer the charger; under a restart storm thousands of them share a few round
trips. The single-item services in chargers.sessions.services delegate here, so the rules live once.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.db import connections, transaction
from django.utils import timezone

from backoffice import async_pg, db
from backoffice.db import update_many
from backoffice.models import Organization, Property
from chargers.models import Charger, Connector, DeviceVariable, StatusEvent
from chargers.plumbing.background import spawn
from chargers.plumbing.batching import Coalescer, on_pg_or_pool
from chargers.signals import connection_changed, connector_status_changed

# -- lookup ---------------------------------------------------------------------------------------


def chargers_for_connection(station_ids: list[str]) -> list[Charger | None]:
    """Return the charger of each station id (exact, case-sensitive match), or None."""
    found = {c.station_id: c for c in Charger.objects.filter(station_id__in=set(station_ids))}
    return [found.get(station_id) for station_id in station_ids]


# -- connected / disconnected ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectionChange:
    charger_id: int
    connection_id: str
    connected: bool  # False: this connection ended
    at: datetime
    process_key: str = ""
    ocpp_version: str = (
        ""  # of a connect: the version it negotiated, stored on the charger ("" keeps it)
    )


def connections_record(changes: list[ConnectionChange]) -> list[None]:
    """Record connects and disconnects. A disconnect clears the state only if its connection is
    still the charger's current one (a newer socket may have taken over); since connection ids
    are never reused, applying all connects (in order) before all disconnects gives the same
    state as applying the changes one by one."""
    with transaction.atomic():
        update_many(
            Charger,
            ["connection_id", "connection_process", "connected_at", "last_seen_at"],
            ["id"],
            [
                (c.connection_id, c.process_key, c.at, c.at, c.charger_id)
                for c in changes
                if c.connected
            ],
        )
        update_many(
            Charger,
            ["ocpp_version"],
            ["id"],
            [(c.ocpp_version, c.charger_id) for c in changes if c.connected and c.ocpp_version],
        )
        update_many(
            Charger,
            ["connection_id", "connection_process", "disconnected_at"],
            ["id", "connection_id"],
            [("", "", c.at, c.charger_id, c.connection_id) for c in changes if not c.connected],
        )
        announced = _link_changes(changes)
        transaction.on_commit(lambda: connection_changed.send(sender=Charger, changes=announced))
    return [None] * len(changes)


def _link_changes(changes: list[ConnectionChange]) -> list[tuple[int, str, bool, datetime]]:
    return [(c.charger_id, c.connection_id, c.connected, c.at) for c in changes]


# -- BootNotification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Boot:
    charger_id: int
    vendor: str
    model: str
    serial_number: str
    firmware_version: str
    heartbeat_interval: int
    at: datetime

    @classmethod
    def from_payload(
        cls, charger_id: int, payload: dict, heartbeat_interval: int, at: datetime | None = None
    ) -> Boot:
        return cls(
            charger_id=charger_id,
            vendor=str(payload.get("chargePointVendor", ""))[:50],
            model=str(payload.get("chargePointModel", ""))[:50],
            serial_number=str(
                payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber") or ""
            )[:50],
            firmware_version=str(payload.get("firmwareVersion", ""))[:50],
            heartbeat_interval=heartbeat_interval,
            at=at or timezone.now(),
        )

    @property
    def fingerprint(self) -> str:
        """What a once-per-charger check was made for: another vendor, model or firmware is
        another charger to it (Charger.energy_reporting_checked_for)."""
        return fingerprint(self.vendor, self.model, self.firmware_version)


def fingerprint(vendor: str, model: str, firmware_version: str) -> str:
    return f"{vendor}|{model}|{firmware_version}"


class Booted(NamedTuple):
    status: str  # the registration status as it is now in the database
    interval: int  # the heartbeat interval
    # A device model (2.0.1 NotifyReport rows) is stored: no GetBaseReport after this boot. Read
    # with the boot, not by a task and query of its own per boot (every 2.0.1 charger boots at
    # once after a deploy; that follow-up made their restart storm 1.2x the 1.6 one).
    device_model_known: bool
    # A 1.6 charger's energy-reporting check is due: never made, or made for another vendor,
    # model or firmware (and its organization has not turned it off, it is not proxied). Read
    # with the boot, so a reconnect that changes nothing costs no query and no follow-up.
    energy_reporting_due: bool = False


def chargers_boot(boots: list[Boot]) -> list[Booted]:
    """Store what each charger says about itself; return per boot its registration status,
    heartbeat interval and whether its device model is known."""
    with transaction.atomic():
        update_many(
            Charger,
            [
                "vendor",
                "model",
                "serial_number",
                "firmware_version",
                "last_boot_at",
                "last_seen_at",
                "heartbeat_interval",
            ],
            ["id"],
            [
                (
                    b.vendor,
                    b.model,
                    b.serial_number,
                    b.firmware_version,
                    b.at,
                    b.at,
                    b.heartbeat_interval,
                    b.charger_id,
                )
                for b in boots
            ],
        )
        ids = {b.charger_id for b in boots}
        status = dict(Charger.objects.filter(pk__in=ids).values_list("pk", "registration_status"))
        known = _chargers_with_device_model(ids)
        due = _energy_reporting_due(ids)
    latest = {b.charger_id: b.fingerprint for b in boots}  # what the charger row now says
    # A charger deleted while it was connected is not welcome any more.
    return [
        Booted(
            status.get(b.charger_id, Charger.Registration.REJECTED),
            b.heartbeat_interval,
            b.charger_id in known,
            b.charger_id in due and due[b.charger_id] != latest[b.charger_id],
        )
        for b in boots
    ]


def _energy_reporting_due(charger_ids: set[int]) -> dict[int, str | None]:
    """Of these chargers, those whose energy reporting may be checked: what it was checked for
    (None: never checked)."""
    rows = (
        Charger.objects.filter(pk__in=charger_ids, proxied=False)
        .exclude(property__organization__configure_energy_reporting=False)
        .values_list("pk", "energy_reporting_checked_at", "energy_reporting_checked_for")
    )
    return {pk: (checked_for if at is not None else None) for pk, at, checked_for in rows}


# -- StatusNotification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusChange:
    charger_id: int
    connector_id: int
    status: str
    error_code: str
    info: str = ""
    vendor_error_code: str = ""
    timestamp: datetime | None = None  # the charger's; receive time when it sent none


def connectors_status_update(changes: list[StatusChange]) -> list[None]:
    """Apply status notifications in order and keep each as a StatusEvent. Queued notifications
    can arrive late: an older one never overwrites a newer state (checked in the UPDATE itself,
    so two processes cannot race past it)."""
    now = timezone.now()
    rows = [(c, c.timestamp or now) for c in changes]
    connection = connections["default"]
    with transaction.atomic():
        first: dict[tuple[int, int], tuple[StatusChange, datetime]] = {}
        for change, reported in rows:
            first.setdefault((change.charger_id, change.connector_id), (change, reported))
        # Connectors are created once; looking them up is much cheaper than an insert that
        # conflicts (bulk_create's per-object work) on every notification.
        existing = set(
            Connector.objects.filter(charger_id__in={pair[0] for pair in first}).values_list(
                "charger_id", "connector_id"
            )
        )
        missing = [(c, reported) for pair, (c, reported) in first.items() if pair not in existing]
        if missing:
            Connector.objects.bulk_create(
                [
                    Connector(
                        charger_id=c.charger_id,
                        connector_id=c.connector_id,
                        status=c.status,
                        error_code=c.error_code,
                        info=c.info[:50],
                        vendor_error_code=c.vendor_error_code[:50],
                        status_timestamp=reported,
                    )
                    for c, reported in missing
                ],
                ignore_conflicts=True,  # another process may create it at the same moment
            )
        table = connection.ops.quote_name(Connector._meta.db_table)
        timestamp_field = Connector._meta.get_field("status_timestamp")
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, error_code = %s, info = %s, vendor_error_code = %s, "
                "status_timestamp = %s, updated_at = %s "
                "WHERE charger_id = %s AND connector_id = %s AND (status_timestamp IS NULL OR status_timestamp <= %s)",
                [
                    [
                        c.status,
                        c.error_code,
                        c.info[:50],
                        c.vendor_error_code[:50],
                        timestamp_field.get_db_prep_save(reported, connection),
                        timestamp_field.get_db_prep_save(now, connection),
                        c.charger_id,
                        c.connector_id,
                        timestamp_field.get_db_prep_save(reported, connection),
                    ]
                    for c, reported in rows
                ],
            )
        StatusEvent.objects.bulk_create(
            [
                StatusEvent(
                    charger_id=c.charger_id,
                    connector_id=c.connector_id,
                    status=c.status,
                    error_code=c.error_code,
                    timestamp=reported,
                )
                for c, reported in rows
            ]
        )
        # Once per batch, not per notification: a storm of status changes is one announcement.
        changed = list(first)
        transaction.on_commit(
            lambda: connector_status_changed.send(sender=Connector, connectors=changed)
        )
    return [None] * len(changes)


# -- the same on PostgreSQL, in the event loop ----------------------------------------------------
#
# The handshake and the boot wait for these. On the database pool they queued behind whatever
# else the pool was doing (a storm's transactions, reports): handshakes went past the server's
# 10 s opening timeout and were dropped. On their own async connection (backoffice.async_pg)
# they never wait for a pool thread, and no thread builds rows while holding the GIL.

_lookup_pg = async_pg.LoopConnection("ocpp-charger-lookup")
_connections_pg = async_pg.LoopConnection("ocpp-connection-state")
_boots_pg = async_pg.LoopConnection("ocpp-boot")
_statuses_pg = async_pg.LoopConnection("ocpp-connector-status")
_CHARGER_FIELDS = Charger._meta.concrete_fields
_CHARGER = Charger._meta.db_table
_PROPERTY = Property._meta.db_table
_ORGANIZATION = Organization._meta.db_table


async def _chargers_for_connection_pg(station_ids: list[str]) -> list[Charger | None]:
    columns = ", ".join(f'"{f.column}"' for f in _CHARGER_FIELDS)
    async with _lookup_pg.use() as conn:
        cursor = await conn.execute(
            f'SELECT {columns} FROM "{_CHARGER}" WHERE station_id = ANY(%s)',
            [list(set(station_ids))],
        )
        rows = await cursor.fetchall()
    names = [f.attname for f in _CHARGER_FIELDS]
    found = {
        charger.station_id: charger
        for charger in (Charger.from_db("default", names, row) for row in rows)
    }
    return [found.get(station_id) for station_id in station_ids]


def _last_per_charger(
    items: list, key: Callable[[Any], Any] = lambda item: item.charger_id
) -> list:
    """The last item of each charger (the one a statement-per-item would have left in place)."""
    return list({key(item): item for item in items}.values())


async def _connections_record_pg(changes: list[ConnectionChange]) -> list[None]:
    connects = _last_per_charger([c for c in changes if c.connected])
    disconnects = [c for c in changes if not c.connected]
    async with _connections_pg.use() as conn, conn.transaction():
        if connects:
            await conn.execute(
                f'UPDATE "{_CHARGER}" AS c SET connection_id = v.connection_id, connection_process = v.process, '
                "connected_at = v.at, last_seen_at = v.at, ocpp_version = COALESCE(NULLIF(v.version, ''), c.ocpp_version) "
                "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::text[]) "
                "AS v(id, connection_id, process, at, version) WHERE c.id = v.id",
                [
                    [c.charger_id for c in connects],
                    [c.connection_id for c in connects],
                    [c.process_key for c in connects],
                    [c.at for c in connects],
                    [c.ocpp_version for c in connects],
                ],
            )
        if disconnects:  # after the connects: a connection that ended in this batch is cleared
            await conn.execute(
                f"UPDATE \"{_CHARGER}\" AS c SET connection_id = '', connection_process = '', disconnected_at = v.at "
                "FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[]) AS v(id, connection_id, at) "
                "WHERE c.id = v.id AND c.connection_id = v.connection_id",
                [
                    [c.charger_id for c in disconnects],
                    [c.connection_id for c in disconnects],
                    [c.at for c in disconnects],
                ],
            )
    _announce_in_order(_link_changes(changes))
    return [None] * len(changes)


# The announcement of each batch that is (or was last) on its way, per event loop.
_last_announcement: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[Any]] = (
    weakref.WeakKeyDictionary()
)


def _announce_in_order(changes: list[tuple[int, str, bool, datetime]]) -> None:
    """Announce a batch of connection changes in the background, after the batch before it.
    The pool runs announcements on several threads at once: unordered, the connect of a
    charger's next socket could be announced before the drop of its last one, and the drop
    would then look like a socket replaced by a newer one (not recorded as a drop)."""
    loop = asyncio.get_running_loop()
    previous = _last_announcement.get(loop)

    async def announce() -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])  # its failure is logged by spawn, not ours to raise
        await db.run(connection_changed.send, sender=Charger, changes=changes)

    task = asyncio.ensure_future(announce())
    _last_announcement[loop] = task
    spawn(task, "Announcing connection changes")


async def _chargers_boot_pg(boots: list[Boot]) -> list[Booted]:
    latest = _last_per_charger(boots)
    async with _boots_pg.use() as conn, conn.transaction():
        cursor = await conn.execute(
            f'UPDATE "{_CHARGER}" AS c SET vendor = v.vendor, model = v.model, serial_number = v.serial, '
            "firmware_version = v.firmware, last_boot_at = v.at, last_seen_at = v.at, heartbeat_interval = v.interval "
            "FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::int[]) "
            "AS v(id, vendor, model, serial, firmware, at, interval) WHERE c.id = v.id "
            f'RETURNING c.id, c.registration_status, EXISTS (SELECT 1 FROM "{DeviceVariable._meta.db_table}" AS d '
            "WHERE d.charger_id = c.id), "
            # The energy-reporting check due (Booted.energy_reporting_due), in the same statement.
            "(NOT c.proxied AND (c.energy_reporting_checked_at IS NULL "
            "OR c.energy_reporting_checked_for <> (v.vendor || '|' || v.model || '|' || v.firmware)) "
            f'AND NOT EXISTS (SELECT 1 FROM "{_PROPERTY}" AS p JOIN "{_ORGANIZATION}" AS o ON o.id = p.organization_id '
            "WHERE p.id = c.property_id AND NOT o.configure_energy_reporting))",
            [
                [b.charger_id for b in latest],
                [b.vendor for b in latest],
                [b.model for b in latest],
                [b.serial_number for b in latest],
                [b.firmware_version for b in latest],
                [b.at for b in latest],
                [b.heartbeat_interval for b in latest],
            ],
        )
        found = {pk: (status, known, due) for pk, status, known, due in await cursor.fetchall()}
    # Deleted while connected: not welcome any more.
    gone = (Charger.Registration.REJECTED, False, False)
    return [
        Booted(status, b.heartbeat_interval, known, due)
        for b in boots
        for status, known, due in [found.get(b.charger_id, gone)]
    ]


_CONNECTOR = Connector._meta.db_table
_STATUS_EVENT = StatusEvent._meta.db_table


async def _connectors_status_update_pg(changes: list[StatusChange]) -> list[None]:
    """`connectors_status_update` in three statements: missing connectors created (no sequence
    value spent on the ones that exist), each connector set to its newest notification of the
    batch unless it already holds a newer one, every notification kept as a StatusEvent."""
    now = timezone.now()
    rows = [(c, c.timestamp or now) for c in changes]
    newest: dict[tuple[int, int], tuple[StatusChange, datetime]] = {}
    for change, reported in rows:  # a later one of equal time wins, as applying them in order does
        key = (change.charger_id, change.connector_id)
        if key not in newest or reported >= newest[key][1]:
            newest[key] = (change, reported)
    latest = list(newest.values())
    columns = [
        [c.charger_id for c, _ in latest],
        [c.connector_id for c, _ in latest],
        [c.status for c, _ in latest],
        [c.error_code for c, _ in latest],
        [c.info[:50] for c, _ in latest],
        [c.vendor_error_code[:50] for c, _ in latest],
        [reported for _, reported in latest],
    ]
    values = (
        "unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[]) "
        "AS v(charger_id, connector_id, status, error_code, info, vendor_error_code, reported)"
    )
    async with _statuses_pg.use() as conn, conn.transaction():
        await conn.execute(
            f'INSERT INTO "{_CONNECTOR}" (charger_id, connector_id, status, error_code, info, vendor_error_code, '
            f"status_timestamp, updated_at) SELECT v.*, %s FROM {values} WHERE NOT EXISTS ("
            f'SELECT 1 FROM "{_CONNECTOR}" AS c WHERE c.charger_id = v.charger_id AND c.connector_id = v.connector_id) '
            "ON CONFLICT (charger_id, connector_id) DO NOTHING",  # another process created it meanwhile
            [now, *columns],
        )
        await conn.execute(
            f'UPDATE "{_CONNECTOR}" AS c SET status = v.status, error_code = v.error_code, info = v.info, '
            f"vendor_error_code = v.vendor_error_code, status_timestamp = v.reported, updated_at = %s FROM {values} "
            "WHERE c.charger_id = v.charger_id AND c.connector_id = v.connector_id "
            "AND (c.status_timestamp IS NULL OR c.status_timestamp <= v.reported)",
            [now, *columns],
        )
        await conn.execute(
            f'INSERT INTO "{_STATUS_EVENT}" (charger_id, connector_id, status, error_code, timestamp, received_at) '
            "SELECT v.*, %s FROM unnest(%s::bigint[], %s::int[], %s::text[], %s::text[], %s::timestamptz[]) "
            "AS v(charger_id, connector_id, status, error_code, reported)",
            [
                now,
                [c.charger_id for c, _ in rows],
                [c.connector_id for c, _ in rows],
                [c.status for c, _ in rows],
                [c.error_code for c, _ in rows],
                [reported for _, reported in rows],
            ],
        )
    # Committed: announced once per batch (roaming pushes the EVSE statuses). Its receivers are
    # ORM code, so they run on the pool, and the chargers' answers do not wait for them.
    spawn(
        db.run(connector_status_changed.send, sender=Connector, connectors=list(newest)),
        "Announcing connector statuses",
    )
    return [None] * len(changes)


def _chargers_with_device_model(charger_ids: set[int]) -> set[int]:
    return set(
        DeviceVariable.objects.filter(charger_id__in=charger_ids)
        .values_list("charger_id", flat=True)
        .distinct()
    )


def chargers_without_device_model(charger_ids: list[int]) -> list[bool]:
    """Whether we hold no device model (2.0.1 NotifyReport) of each charger yet."""
    known = _chargers_with_device_model(set(charger_ids))
    return [pk not in known for pk in charger_ids]


_device_models_pg = async_pg.LoopConnection("ocpp-device-models")


async def _chargers_without_device_model_pg(charger_ids: list[int]) -> list[bool]:
    async with _device_models_pg.use() as conn:
        cursor = await conn.execute(
            f'SELECT u.id FROM unnest(%s::bigint[]) AS u(id) WHERE EXISTS (SELECT 1 FROM "{DeviceVariable._meta.db_table}" '
            "AS d WHERE d.charger_id = u.id)",
            [list(set(charger_ids))],
        )
        known = {row[0] for row in await cursor.fetchall()}
    return [pk not in known for pk in charger_ids]


# -- async entry points (the consumer and the protocol handlers) ---------------------------------

_lookups: Coalescer[str, Charger | None] = Coalescer(
    "charger-lookup",
    apply_async=on_pg_or_pool(_chargers_for_connection_pg, chargers_for_connection),
)
_connections: Coalescer[ConnectionChange, None] = Coalescer(
    "connection-state", apply_async=on_pg_or_pool(_connections_record_pg, connections_record)
)
_boots: Coalescer[Boot, Booted] = Coalescer(
    "boot", apply_async=on_pg_or_pool(_chargers_boot_pg, chargers_boot)
)
_device_models: Coalescer[int, bool] = Coalescer(
    "device-model",
    apply_async=on_pg_or_pool(_chargers_without_device_model_pg, chargers_without_device_model),
)
_statuses: Coalescer[StatusChange, None] = Coalescer(
    "connector-status",
    apply_async=on_pg_or_pool(_connectors_status_update_pg, connectors_status_update),
)


async def lookup(station_id: str) -> Charger | None:
    return await _lookups.submit(station_id)


async def connected(
    *, charger_id: int, connection_id: str, process_key: str, ocpp_version: str = ""
) -> None:
    await _connections.submit(
        ConnectionChange(charger_id, connection_id, True, timezone.now(), process_key, ocpp_version)
    )


async def disconnected(*, charger_id: int, connection_id: str) -> None:
    await _connections.submit(ConnectionChange(charger_id, connection_id, False, timezone.now()))


async def boot(item: Boot) -> Booted:
    return await _boots.submit(item)


async def status(item: StatusChange) -> None:
    await _statuses.submit(item)


async def needs_device_model(charger_id: int) -> bool:
    """Whether a 2.0.1 charger's device model is still unknown (GetBaseReport after its boot)."""
    return await _device_models.submit(charger_id)


# -- one boot or status change, outside the batches (journal replay, tests) -----------------------


def charger_boot(*, charger_id: int, payload: dict, default_interval: int) -> tuple[str, int]:
    """Store what the charger says about itself; return (registration status, heartbeat interval)."""
    booted = chargers_boot([Boot.from_payload(charger_id, payload, default_interval)])[0]
    return booted.status, booted.interval


def connector_status_update(
    *,
    charger_id: int,
    connector_id: int,
    status: str,
    error_code: str,
    info: str = "",
    vendor_error_code: str = "",
    timestamp: datetime | None = None,
) -> None:
    connectors_status_update(
        [
            StatusChange(
                charger_id=charger_id,
                connector_id=connector_id,
                status=status,
                error_code=error_code,
                info=info,
                vendor_error_code=vendor_error_code,
                timestamp=timestamp,
            )
        ]
    )

"""The connection path's database work, batched: who is this charger, it connected, it left,
it booted, its connectors changed status.

Each write here is a service over a list of items (synchronous ORM code, one transaction,
a few statements whatever the number of items), and each has an async entry point that goes
through a `Coalescer` (chargers.batching): callers still await their own result, committed,
before they answer the charger; under a restart storm thousands of them share a few round
trips. The single-item services in chargers.services delegate here, so the rules live once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connections, transaction
from django.utils import timezone

from backoffice.db import update_many
from chargers.batching import Coalescer
from chargers.models import Charger, Connector, StatusEvent
from chargers.signals import connector_status_changed

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


def connections_record(changes: list[ConnectionChange]) -> list[None]:
    """Record connects and disconnects. A disconnect clears the state only if its connection is
    still the charger's current one (a newer socket may have taken over); since connection ids
    are never reused, applying all connects (in order) before all disconnects gives the same
    state as applying the changes one by one."""
    with transaction.atomic():
        update_many(
            Charger, ["connection_id", "connection_process", "connected_at", "last_seen_at"], ["id"],
            [(c.connection_id, c.process_key, c.at, c.at, c.charger_id) for c in changes if c.connected],
        )
        update_many(
            Charger, ["connection_id", "connection_process", "disconnected_at"], ["id", "connection_id"],
            [("", "", c.at, c.charger_id, c.connection_id) for c in changes if not c.connected],
        )
    return [None] * len(changes)


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
    def from_payload(cls, charger_id: int, payload: dict, heartbeat_interval: int, at: datetime | None = None) -> Boot:
        return cls(
            charger_id=charger_id,
            vendor=str(payload.get("chargePointVendor", ""))[:50],
            model=str(payload.get("chargePointModel", ""))[:50],
            serial_number=str(payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber") or "")[:50],
            firmware_version=str(payload.get("firmwareVersion", ""))[:50],
            heartbeat_interval=heartbeat_interval, at=at or timezone.now(),
        )


def chargers_boot(boots: list[Boot]) -> list[tuple[str, int]]:
    """Store what each charger says about itself; return (registration status, heartbeat
    interval) per boot, the registration status as it is now in the database."""
    with transaction.atomic():
        update_many(
            Charger,
            ["vendor", "model", "serial_number", "firmware_version", "last_boot_at", "last_seen_at", "heartbeat_interval"],
            ["id"],
            [(b.vendor, b.model, b.serial_number, b.firmware_version, b.at, b.at, b.heartbeat_interval, b.charger_id)
             for b in boots],
        )
        status = dict(
            Charger.objects.filter(pk__in={b.charger_id for b in boots}).values_list("pk", "registration_status")
        )
    # A charger deleted while it was connected is not welcome any more.
    return [(status.get(b.charger_id, Charger.Registration.REJECTED), b.heartbeat_interval) for b in boots]


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
            Connector.objects.filter(charger_id__in={pair[0] for pair in first}).values_list("charger_id", "connector_id")
        )
        missing = [(c, reported) for pair, (c, reported) in first.items() if pair not in existing]
        if missing:
            Connector.objects.bulk_create(
                [
                    Connector(
                        charger_id=c.charger_id, connector_id=c.connector_id, status=c.status, error_code=c.error_code,
                        info=c.info[:50], vendor_error_code=c.vendor_error_code[:50], status_timestamp=reported,
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
                    [c.status, c.error_code, c.info[:50], c.vendor_error_code[:50],
                     timestamp_field.get_db_prep_save(reported, connection), timestamp_field.get_db_prep_save(now, connection),
                     c.charger_id, c.connector_id, timestamp_field.get_db_prep_save(reported, connection)]
                    for c, reported in rows
                ],
            )
        StatusEvent.objects.bulk_create(
            [
                StatusEvent(charger_id=c.charger_id, connector_id=c.connector_id, status=c.status,
                            error_code=c.error_code, timestamp=reported)
                for c, reported in rows
            ]
        )
        # Once per batch, not per notification: a storm of status changes is one announcement.
        changed = list(first)
        transaction.on_commit(lambda: connector_status_changed.send(sender=Connector, connectors=changed))
    return [None] * len(changes)


# -- async entry points (the consumer and the protocol handlers) ---------------------------------

_lookups: Coalescer[str, Charger | None] = Coalescer("charger-lookup", chargers_for_connection)
_connections: Coalescer[ConnectionChange, None] = Coalescer("connection-state", connections_record)
_boots: Coalescer[Boot, tuple[str, int]] = Coalescer("boot", chargers_boot)
_statuses: Coalescer[StatusChange, None] = Coalescer("connector-status", connectors_status_update)


async def lookup(station_id: str) -> Charger | None:
    return await _lookups.submit(station_id)


async def connected(*, charger_id: int, connection_id: str, process_key: str) -> None:
    await _connections.submit(ConnectionChange(charger_id, connection_id, True, timezone.now(), process_key))


async def disconnected(*, charger_id: int, connection_id: str) -> None:
    await _connections.submit(ConnectionChange(charger_id, connection_id, False, timezone.now()))


async def boot(item: Boot) -> tuple[str, int]:
    return await _boots.submit(item)


async def status(item: StatusChange) -> None:
    await _statuses.submit(item)

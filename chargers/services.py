"""Charger domain services: connection state, boot, status, sessions. Synchronous ORM code."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from authorization.decisions import ChargerFacts

from .models import Charger, ChargingSession, Connector, MeterValue, OrphanStop, StatusEvent
from .signals import session_finished, session_started

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1


def charger_get_for_connection(station_id: str) -> Charger | None:
    return Charger.objects.select_related("property").filter(station_id=station_id).first()


def charger_mark_connected(*, charger_id: int, connection_id: str) -> None:
    now = timezone.now()
    Charger.objects.filter(pk=charger_id).update(connection_id=connection_id, connected_at=now, last_seen_at=now)


def charger_mark_disconnected(*, charger_id: int, connection_id: str) -> bool:
    """Mark offline, unless a newer connection of the same charger has taken over."""
    return bool(
        Charger.objects.filter(pk=charger_id, connection_id=connection_id).update(
            connection_id="", disconnected_at=timezone.now()
        )
    )


def charger_boot(*, charger_id: int, payload: dict, default_interval: int) -> tuple[str, int]:
    """Store what the charger says about itself; return (registration status, heartbeat interval)."""
    charger = Charger.objects.get(pk=charger_id)
    charger.vendor = payload.get("chargePointVendor", "")[:50]
    charger.model = payload.get("chargePointModel", "")[:50]
    charger.serial_number = (payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber") or "")[:50]
    charger.firmware_version = payload.get("firmwareVersion", "")[:50]
    charger.last_boot_at = charger.last_seen_at = timezone.now()
    if charger.heartbeat_interval != default_interval:
        charger.heartbeat_interval = default_interval
    charger.save(
        update_fields=[
            "vendor", "model", "serial_number", "firmware_version", "last_boot_at", "last_seen_at",
            "heartbeat_interval",
        ]
    )
    return charger.registration_status, charger.heartbeat_interval


def connector_status_update(
    *, charger_id: int, connector_id: int, status: str, error_code: str, info: str = "",
    vendor_error_code: str = "", timestamp: datetime | None = None,
) -> None:
    reported = timestamp or timezone.now()
    with transaction.atomic():
        connector, created = Connector.objects.get_or_create(
            charger_id=charger_id, connector_id=connector_id,
            defaults={"status": status, "error_code": error_code, "info": info[:50],
                      "vendor_error_code": vendor_error_code[:50], "status_timestamp": reported},
        )
        # Queued notifications can arrive late: never let an older one overwrite a newer state.
        if not created and (connector.status_timestamp is None or reported >= connector.status_timestamp):
            connector.status = status
            connector.error_code = error_code
            connector.info = info[:50]
            connector.vendor_error_code = vendor_error_code[:50]
            connector.status_timestamp = reported
            connector.save()
        StatusEvent.objects.create(
            charger_id=charger_id, connector_id=connector_id, status=status, error_code=error_code,
            timestamp=reported,
        )


def charger_facts(charger: Charger) -> ChargerFacts:
    group_ids = set(charger.token_groups.values_list("pk", flat=True))
    if charger.property_id:
        group_ids |= set(charger.property.restricted_token_groups.values_list("pk", flat=True))
    return ChargerFacts(
        station_id=charger.station_id,
        organization_id=charger.property.organization_id if charger.property_id else None,
        license_valid_until=charger.license_valid_until,
        access_mode=charger.access_mode,
        roaming_enabled=charger.effective_roaming_enabled,
        guest_charging_enabled=charger.effective_guest_charging_enabled,
        restricted_group_ids=frozenset(group_ids),
    )


def charger_facts_by_id(charger_id: int) -> tuple[ChargerFacts, str]:
    """Return the charger's facts for a decision and its location id (for OCPI)."""
    charger = Charger.objects.select_related("property").get(pk=charger_id)
    return charger_facts(charger), str(charger.property_id or "")


def token_active_sessions(token) -> int:
    return ChargingSession.objects.filter(
        token=token, status=ChargingSession.Status.ACTIVE
    ).count()


def session_find_repeat(
    *, charger_id: int, connector_id: int, id_tag: str, meter_start: int, started_at: datetime
) -> ChargingSession | None:
    """Return the session of an earlier identical StartTransaction (its reply was lost)."""
    return ChargingSession.objects.filter(
        charger_id=charger_id, connector_id=connector_id, id_tag=id_tag,
        meter_start_wh=meter_start, started_at=started_at,
    ).first()


def session_start(
    *, charger_id: int, connector_id: int, id_tag: str, meter_start: int, started_at: datetime,
    reservation_id: int | None = None, id_tag_status: str = "Accepted",
) -> ChargingSession:
    """Open a session and give it a fresh transaction id; a repeated start gets the same one."""
    from authorization.services import token_find

    existing = session_find_repeat(
        charger_id=charger_id, connector_id=connector_id, id_tag=id_tag,
        meter_start=meter_start, started_at=started_at,
    )
    if existing:
        return existing
    charger = Charger.objects.select_related("property").get(pk=charger_id)
    token = token_find(id_tag, charger.property.organization_id if charger.property_id else None)
    for _ in range(10):
        try:
            with transaction.atomic():
                session = ChargingSession.objects.create(
                    charger_id=charger_id, connector_id=connector_id, id_tag=id_tag[:36], token=token,
                    id_tag_status=id_tag_status, started_at=started_at, meter_start_wh=meter_start,
                    reservation_id=reservation_id,
                    # Random, not sequential: a guessable id lets one client stop others' sessions.
                    transaction_id=secrets.randbelow(INT32_MAX) + 1,
                )
        except IntegrityError:
            existing = session_find_repeat(
                charger_id=charger_id, connector_id=connector_id, id_tag=id_tag,
                meter_start=meter_start, started_at=started_at,
            )
            if existing:
                return existing
            continue  # transaction id collision: draw again
        session_id = session.pk
        transaction.on_commit(lambda sid=session_id: session_started.send(sender=ChargingSession, session_id=sid))
        sessions_close_superseded(charger_id=charger_id, connector_id=connector_id, before=started_at, keep_id=session_id)
        return session
    raise RuntimeError("Could not allocate a transaction id")


SUPERSEDED = "Superseded"


def _last_register_wh(session: ChargingSession) -> tuple[int | None, datetime | None]:
    """Return the session's last energy register reading in Wh and its time, if any."""
    sample = (
        MeterValue.objects.filter(session=session, measurand="Energy.Active.Import.Register", phase="")
        .exclude(value=None).order_by("-timestamp", "-id").first()
    )
    if sample is None:
        return None, None
    factor = 1000 if sample.unit.lower() == "kwh" else 1
    return int(sample.value * factor), sample.timestamp


@transaction.atomic
def sessions_close_superseded(*, charger_id: int, connector_id: int, before: datetime, keep_id: int) -> int:
    """Close sessions a connector left running when it started a newer one (a charger that lost
    power or rebooted without StopTransaction). They end at their last meter reading and keep
    stop reason "Superseded", so the real StopTransaction, if it still comes, replaces them."""
    closed = 0
    stale = ChargingSession.objects.select_for_update().filter(
        charger_id=charger_id, connector_id=connector_id, status=ChargingSession.Status.ACTIVE, started_at__lt=before
    ).exclude(pk=keep_id)
    for old in stale:
        meter_wh, when = _last_register_wh(old)
        old.meter_stop_wh = max(meter_wh if meter_wh is not None else old.meter_start_wh, old.meter_start_wh)
        old.stopped_at = when or old.started_at
        old.stop_reason = SUPERSEDED
        old.status = ChargingSession.Status.COMPLETED
        old.received_stop_at = timezone.now()
        old.save(update_fields=["meter_stop_wh", "stopped_at", "stop_reason", "status", "received_stop_at"])
        transaction.on_commit(lambda sid=old.pk: session_finished.send(sender=ChargingSession, session_id=sid))
        logger.warning("Closed session %s on %s/%s: a newer transaction started", old.transaction_id, charger_id, connector_id)
        closed += 1
    return closed


def _meter_rows(charger_id: int, connector_id: int, session: ChargingSession | None, meter_values: list) -> list:
    from .ocpp.protocol import parse_datetime

    rows = []
    for entry in meter_values or []:
        when = parse_datetime(entry["timestamp"])
        for sample in entry.get("sampledValue", []):
            raw = str(sample.get("value", ""))
            rows.append(
                MeterValue(
                    charger_id=charger_id, session=session, connector_id=connector_id, timestamp=when,
                    measurand=sample.get("measurand", "Energy.Active.Import.Register")[:50],
                    phase=sample.get("phase", "")[:10], unit=sample.get("unit", "")[:10],
                    context=sample.get("context", "")[:20], location=sample.get("location", "")[:10],
                    value=_decimal_or_none(raw), raw_value=raw[:100],
                )
            )
    return rows


def _decimal_or_none(raw: str):
    from .message_log import _to_decimal

    return _to_decimal(raw)


def session_stop(
    *, charger_id: int, transaction_id: int, meter_stop: int, stopped_at: datetime, reason: str = "",
    id_tag: str = "", transaction_data: list | None = None, payload: dict | None = None,
) -> ChargingSession | None:
    """Close the session. Never refuses: an unknown transaction becomes an orphan stop for review.

    Returns the session, or None for an orphan stop. A repeated stop changes nothing.
    """
    with transaction.atomic():
        session = (
            ChargingSession.objects.select_for_update()
            .filter(charger_id=charger_id, transaction_id=transaction_id)
            .first()
        )
        if session is None:
            OrphanStop.objects.get_or_create(
                charger_id=charger_id, transaction_id=transaction_id, stopped_at=stopped_at,
                meter_stop_wh=meter_stop,
                defaults={"id_tag": id_tag[:36], "reason": reason[:20], "payload": payload or {}},
            )
            logger.warning("Orphan StopTransaction %s from charger %s kept for review", transaction_id, charger_id)
            return None
        # A repeated stop changes nothing, except that the charger's own stop replaces the
        # estimate of a session we closed as superseded.
        if session.status == ChargingSession.Status.COMPLETED and session.stop_reason != SUPERSEDED:
            return session
        session.meter_stop_wh = meter_stop
        session.stopped_at = stopped_at
        session.stop_reason = (reason or "Local")[:20]
        session.stop_id_tag = id_tag[:36]
        session.status = ChargingSession.Status.COMPLETED
        session.received_stop_at = timezone.now()
        session.transaction_data = transaction_data or None
        session.save()
        rows = _meter_rows(charger_id, session.connector_id, session, transaction_data or [])
        if rows:
            MeterValue.objects.bulk_create(rows)
        transaction.on_commit(lambda: session_finished.send(sender=ChargingSession, session_id=session.pk))
        return session


def session_for_transaction(*, charger_id: int, transaction_id: int) -> ChargingSession | None:
    return ChargingSession.objects.filter(charger_id=charger_id, transaction_id=transaction_id).first()


# -- settings changed by hosts and agents -------------------------------------------------------


@transaction.atomic
def charger_set_password(*, charger: Charger, password: str | None) -> None:
    charger.set_ocpp_password(password)
    charger.save(update_fields=["ocpp_password_hash"])

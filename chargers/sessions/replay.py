"""Journal replay: messages answered while the database was unreachable are applied once it is
back (chargers.plumbing.journal calls `journal_apply`, configured by chargers.connections.process),
each exactly once, in order, through the same services the live path uses."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from chargers.sessions.closing import StopRequest, close_orm
from chargers.sessions.opening import OpenRequest, open_orm
from chargers.sessions.services import (
    decision_for_replayed_start,
    meter_values_store,
    signed_samples_store,
)
from chargers.sessions.signed import SIGNED_201, signed_values
from chargers.state.charger import charger_boot, connector_status_update

logger = logging.getLogger(__name__)


def journal_apply(journal_name: str, entry: dict) -> None:
    """Apply one journal entry (chargers.plumbing.journal) exactly once, in its own transaction."""
    from chargers.models import JournalEntryApplied, OcppDeadLetter

    try:
        with transaction.atomic():
            _, created = JournalEntryApplied.objects.get_or_create(
                journal=journal_name, seq=entry["seq"]
            )
            if created:
                _journal_apply_entry(entry)
    except Exception as exc:
        from chargers.plumbing.journal import is_outage

        if is_outage(exc):
            raise  # the database went away again: the replay resumes later
        # A bad entry must not block the journal forever: keep it for support, mark it done.
        logger.exception("Journal entry %s#%s could not be applied", journal_name, entry.get("seq"))
        with transaction.atomic():
            OcppDeadLetter.objects.create(
                charger_id=entry.get("charger_id"),
                received_at=_journal_time(entry.get("received_at")),
                kind="journal",
                error=repr(exc)[:2000],
                row=ascii(entry)[:100_000],
            )
            JournalEntryApplied.objects.get_or_create(journal=journal_name, seq=entry["seq"])


def _journal_time(value: object) -> datetime:
    from django.utils.dateparse import parse_datetime as parse_iso

    parsed = parse_iso(value) if isinstance(value, str) else None
    return parsed or timezone.now()


def _journal_apply_entry(entry: dict) -> None:
    from chargers.ocpp import tolerant
    from chargers.ocpp.protocol import REQUEST_VALIDATORS

    if entry.get("kind") == "log":
        from chargers.messagelog.log import store_journaled_rows

        store_journaled_rows(entry["rows"])  # a row the database refuses is isolated
        return
    action, charger_id, payload = entry["action"], entry["charger_id"], entry["payload"]
    received = _journal_time(entry.get("received_at"))
    if entry.get("protocol") == "2.0.1":  # OCPP 2.0.1 entries (chargers.sessions.transactions)
        from chargers.sessions.transactions import journal_apply_entry

        journal_apply_entry(entry, received)
        return
    from chargers.state.quirks import quirks_of_charger

    quirks = quirks_of_charger(charger_id)  # as the connection would have read it
    if action == "StartTransaction":
        reading = tolerant.read_start(payload, REQUEST_VALIDATORS[action], received, quirks)
        open_orm(
            OpenRequest(
                charger_id=charger_id,
                connector_id=reading.connector_id,
                id_tag=reading.id_tag,
                meter_start=reading.meter if reading.meter is not None else Decimal(0),
                started_at=reading.timestamp or received,
                reservation_id=reading.reservation_id,
                id_tag_status=entry.get("id_tag_status", "Accepted"),
                transaction_id=entry.get("transaction_id"),
                # Stored with the session it opens (not for a start the charger resent and we
                # stored since).
                decision_record=decision_for_replayed_start(
                    charger_id=charger_id,
                    id_tag=reading.id_tag,
                    connector_id=reading.connector_id,
                    unique_id=entry.get("unique_id", ""),
                ),
            )
        )
    elif action == "StopTransaction":
        reading = tolerant.read_stop(payload, REQUEST_VALIDATORS[action], received, quirks)
        from chargers.ocpp.storable import clean_value

        close_orm(
            StopRequest(
                charger_id=charger_id,
                transaction_id=reading.transaction_id or 0,
                meter_stop=reading.meter,
                stopped_at=reading.timestamp or received,
                reason=reading.reason,
                id_tag=reading.id_tag,
                transaction_data=clean_value(payload.get("transactionData"))[0],
                payload=clean_value(payload)[0],
                readings=reading.meter_values,
            )
        )
    elif action == "MeterValues":
        reading = tolerant.read_meter_values(payload, REQUEST_VALIDATORS[action], received, quirks)
        meter_values_store(
            charger_id=charger_id,
            connector_id=reading.connector_id,
            transaction_id=reading.transaction_id,
            readings=reading.meter_values,
        )
        if signed := signed_values(payload.get("meterValue")):
            signed_samples_store(
                charger_id=charger_id,
                connector_id=reading.connector_id,
                transaction_id=reading.transaction_id,
                values=signed,
                received=received,
            )
        if signed := signed_values(payload.get(SIGNED_201)):
            signed_samples_store(
                charger_id=charger_id,
                connector_id=reading.connector_id,
                transaction_id=None,
                values=signed,
                received=received,
                open_session=True,
            )
    elif action == "StatusNotification":
        from chargers.ocpp.protocol import parse_datetime

        connector_status_update(
            charger_id=charger_id,
            connector_id=payload["connectorId"],
            status=payload["status"],
            error_code=payload["errorCode"],
            info=payload.get("info", ""),
            vendor_error_code=payload.get("vendorErrorCode", ""),
            timestamp=parse_datetime(payload["timestamp"])
            if payload.get("timestamp")
            else received,
        )
    elif action == "BootNotification":
        charger_boot(
            charger_id=charger_id, payload=payload, default_interval=entry.get("interval", 60)
        )
    else:
        raise ValueError(f"unknown journal entry {action!r}")

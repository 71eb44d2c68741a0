"""Charger domain services: connection state, boot, status, sessions. Synchronous ORM code."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from authorization.decisions import ChargerFacts, Context

from . import connection_state
from .models import Charger, ChargingSession, MeterValue, OrphanStop
from .ocpp.tolerant import MeterReading
from .signals import session_finished, session_started

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1


# -- server processes: connections of a process that is gone are cleared -------------------------

PROCESS_STALE_AFTER_S = 45


def server_process_heartbeat(*, key: str, hostname: str, pid: int, started_at: datetime) -> None:
    from .models import OcppServerProcess

    OcppServerProcess.objects.update_or_create(
        key=key,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "started_at": started_at,
            "heartbeat_at": timezone.now(),
        },
    )


def server_process_stopped(*, key: str) -> int:
    """This process is stopping: every connection it recorded is closed."""
    from .models import OcppServerProcess

    now = timezone.now()
    _proxy_links_down(Charger.objects.filter(connection_process=key, proxied=True), now)
    cleared = (
        Charger.objects.filter(connection_process=key)
        .exclude(connection_id="")
        .update(connection_id="", connection_process="", disconnected_at=now)
    )
    OcppServerProcess.objects.filter(key=key).delete()
    return cleared


def connections_clear_dead_processes(*, own_key: str) -> int:
    """Clear connections recorded by processes that stopped heartbeating (crash, kill -9, a
    restart whose shutdown never ran), and connections with no process recorded at all."""
    import os
    import socket

    from .models import OcppServerProcess

    now = timezone.now()
    cutoff = now - timedelta(seconds=PROCESS_STALE_AFTER_S)
    OcppServerProcess.objects.filter(heartbeat_at__lt=cutoff).exclude(key=own_key).delete()
    # On this host a dead process is known at once (kill -9, a crash): no need to wait for
    # its heartbeat to age.
    hostname = socket.gethostname()
    for key, pid in (
        OcppServerProcess.objects.filter(hostname=hostname)
        .exclude(key=own_key)
        .values_list("key", "pid")
    ):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            OcppServerProcess.objects.filter(key=key).delete()
        except PermissionError:  # alive, another user's
            pass
    alive = set(OcppServerProcess.objects.values_list("key", flat=True)) | {own_key}
    stale = Charger.objects.exclude(connection_id="").exclude(connection_process__in=alive)
    _proxy_links_down(stale.filter(proxied=True), now)
    return stale.update(connection_id="", connection_process="", disconnected_at=now)


def _proxy_links_down(chargers, now) -> None:
    """The proxy's upstream links live in the process that held the charger's socket: they are
    down when it is (docs/proxy.md)."""
    from .models import Backoffice

    Backoffice.objects.filter(charger__in=chargers).exclude(
        status=Backoffice.Status.DISCONNECTED
    ).update(status=Backoffice.Status.DISCONNECTED, disconnected_at=now)


def charger_record_identity_conflict(*, charger_id: int, replacements: int) -> None:
    Charger.objects.filter(pk=charger_id).update(
        identity_conflict_at=timezone.now(), identity_conflict_replacements=replacements
    )


def charger_boot(*, charger_id: int, payload: dict, default_interval: int) -> tuple[str, int]:
    """Store what the charger says about itself; return (registration status, heartbeat interval)."""
    booted = connection_state.chargers_boot(
        [connection_state.Boot.from_payload(charger_id, payload, default_interval)]
    )[0]
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
    connection_state.connectors_status_update(
        [
            connection_state.StatusChange(
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


def charger_facts(charger: Charger, group_ids: frozenset[int] | None = None) -> ChargerFacts:
    """The charger's decision facts; `group_ids` (its token groups and its property's restricted
    ones) when the caller has read them already (chargers.starts)."""
    if group_ids is None:
        # One statement for both lists (StartTransaction and Authorize read this on every call).
        groups = charger.token_groups.order_by().values_list("pk", flat=True)
        if charger.property_id:
            groups = groups.union(
                charger.property.restricted_token_groups.order_by().values_list("pk", flat=True)
            )
        group_ids = frozenset(groups)
    return ChargerFacts(
        station_id=charger.station_id,
        organization_id=charger.property.organization_id if charger.property_id else None,
        license_valid_until=charger.license_valid_until,
        access_mode=charger.access_mode,
        roaming_enabled=charger.effective_roaming_enabled,
        guest_charging_enabled=charger.effective_guest_charging_enabled,
        restricted_group_ids=frozenset(group_ids),
        property_id=charger.property_id,
        unit_id=charger.unit_id,
    )


def charger_facts_by_id(
    charger_id: int, connector_id: int | None = None
) -> tuple[ChargerFacts, str]:
    """Return the charger's facts for a decision about `connector_id` (None: the charger as a
    whole) and its location id (for OCPI)."""
    from dataclasses import replace

    from .reservations import reserved_for

    charger = Charger.objects.select_related("property").get(pk=charger_id)
    facts = replace(charger_facts(charger), reserved=reserved_for(charger_id, connector_id))
    return facts, str(charger.property_id or "")


def token_active_sessions(token) -> int:
    return ChargingSession.objects.filter(token=token, status=ChargingSession.Status.ACTIVE).count()


def session_announce_on_commit(event: str, session_id: int) -> None:
    """Once committed, announce that a session "started" or "finished" (chargers.signals), in
    this process: receivers rely on it (the guest's page turns to "Charging" inline) and queue
    their own slow work."""

    def announce() -> None:
        signal = session_started if event == "started" else session_finished
        signal.send(sender=ChargingSession, session_id=session_id)

    transaction.on_commit(announce)


def sessions_announce(event: str, session_ids: list[int]) -> None:
    """Announce sessions whose start or stop is committed ("started" / "finished"), for a batch
    (chargers.starts, chargers.stops). A receiver that fails is logged: the sessions are stored,
    and their chargers still get their answers."""
    signal = session_started if event == "started" else session_finished
    batch: dict[str, object] = {}  # chargers.signals.asked_once: one answer for all of them
    for session_id in session_ids:
        try:
            signal.send(sender=ChargingSession, session_id=session_id, batch=batch)
        except Exception:
            logger.exception("Announcing that session %s %s failed", session_id, event)


def session_find_repeat(
    *, charger_id: int, connector_id: int, id_tag: str, meter_start: int, started_at: datetime
) -> ChargingSession | None:
    """Return the session of an earlier identical StartTransaction (its reply was lost)."""
    return ChargingSession.objects.filter(
        charger_id=charger_id,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_start_wh=meter_start,
        started_at=started_at,
    ).first()


@dataclass
class StartFacts:
    """What a StartTransaction needs from the database, read in one round trip."""

    repeat: ChargingSession | None  # an identical earlier start (our reply was lost)
    charger: ChargerFacts | None = None
    location_id: str = ""
    token: tuple | None = None  # authorization.services.token_with_facts


def decision_inputs(
    *, charger_id: int, connector_id: int | None, id_tag: str
) -> tuple[ChargerFacts, str, tuple | None]:
    """What deciding on `id_tag` at this charger needs, in one trip to the database pool: the
    charger's facts, its location id and the card (`authorization.services.token_with_facts`)."""
    from authorization.services import token_with_facts

    facts, location_id = charger_facts_by_id(charger_id, connector_id)
    return (
        facts,
        location_id,
        token_with_facts(id_tag, facts.organization_id, token_active_sessions),
    )


def start_prepare(
    *, charger_id: int, connector_id: int, id_tag: str, meter_start: int, started_at: datetime
) -> StartFacts:
    repeat = session_find_repeat(
        charger_id=charger_id,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_start=meter_start,
        started_at=started_at,
    )
    if repeat is not None:
        return StartFacts(repeat)
    return StartFacts(
        None, *decision_inputs(charger_id=charger_id, connector_id=connector_id, id_tag=id_tag)
    )


_LOOK_UP = object()


def session_start(
    *,
    charger_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: int,
    started_at: datetime,
    reservation_id: int | None = None,
    id_tag_status: str = "Accepted",
    transaction_id: int | None = None,
    token=_LOOK_UP,
    decision_record: dict | None = None,
) -> ChargingSession:
    """Open a session and give it a fresh transaction id; a repeated start gets the same one.

    `transaction_id` is the id already answered to the charger (a start journaled during a
    database outage, replayed now); otherwise one is drawn. A caller that already looked up
    the token (`start_prepare`) passes it, and the decision to record with the session, in the
    same transaction.
    """
    from authorization.services import decision_record as record_decision
    from authorization.services import token_find

    if token is _LOOK_UP:
        existing = session_find_repeat(
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            started_at=started_at,
        )
        if existing:
            return existing
        charger = Charger.objects.select_related("property").get(pk=charger_id)
        token = token_find(
            id_tag, charger.property.organization_id if charger.property_id else None
        )
    for _ in range(10):
        try:
            with transaction.atomic():
                if decision_record is not None:
                    record_decision(**decision_record)
                session = ChargingSession.objects.create(
                    charger_id=charger_id,
                    connector_id=connector_id,
                    id_tag=id_tag[:36],
                    token=token,
                    id_tag_status=id_tag_status,
                    started_at=started_at,
                    meter_start_wh=meter_start,
                    reservation_id=reservation_id,
                    transaction_id=transaction_id or new_transaction_id(),
                )
                session_announce_on_commit("started", session.pk)
                sessions_close_superseded_around(session)
        except IntegrityError:
            existing = session_find_repeat(
                charger_id=charger_id,
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                started_at=started_at,
            )
            if existing:
                return existing
            if transaction_id is not None:
                # The answered id was taken meanwhile (astronomically rare): keep the data.
                logger.error(
                    "Transaction id %s answered during an outage is taken; drawing another",
                    transaction_id,
                )
                transaction_id = None
            continue  # transaction id collision: draw again
        return session
    raise RuntimeError("Could not allocate a transaction id")


SUPERSEDED = "Superseded"


def sessions_close_superseded_around(session: ChargingSession) -> None:
    """In the start's own transaction, with one statement when the connector is free: close the
    sessions this start supersedes (older, still active on the connector), or this one when a
    newer start already arrived (queued messages, clock jumps), whichever arrived last."""
    others = list(
        ChargingSession.objects.select_for_update()
        .filter(
            charger_id=session.charger_id,
            connector_id=session.connector_id,
            status=ChargingSession.Status.ACTIVE,
        )
        .exclude(pk=session.pk)
    )
    # Started at the same moment (a stuck clock): the one that arrived first is the older one,
    # since a connector runs one transaction at a time.
    for old in others:
        if (old.started_at, old.pk) < (session.started_at, session.pk):
            session_close_as_superseded(old)
    if any((other.started_at, other.pk) > (session.started_at, session.pk) for other in others):
        session_close_as_superseded(session)


def _last_register_wh(session: ChargingSession) -> tuple[int | None, datetime | None]:
    """Return the session's last energy register reading in Wh and its time, if any."""
    sample = (
        MeterValue.objects.filter(
            session=session, measurand="Energy.Active.Import.Register", phase=""
        )
        .exclude(value=None)
        .order_by("-timestamp", "-id")
        .first()
    )
    if sample is None:
        return None, None
    factor = 1000 if sample.unit.lower() == "kwh" else 1
    return int(sample.value * factor), sample.timestamp


@transaction.atomic
def sessions_close_superseded(
    *, charger_id: int, connector_id: int, before: datetime, keep_id: int
) -> int:
    """Close sessions a connector left running when it started a newer one (a charger that lost
    power or rebooted without StopTransaction). They end at their last meter reading and keep
    stop reason "Superseded", so the real StopTransaction, if it still comes, replaces them."""
    closed = 0
    stale = (
        ChargingSession.objects.select_for_update()
        .filter(
            charger_id=charger_id,
            connector_id=connector_id,
            status=ChargingSession.Status.ACTIVE,
            started_at__lt=before,
        )
        .exclude(pk=keep_id)
    )
    for old in stale:
        session_close_as_superseded(old)
        closed += 1
    return closed


@transaction.atomic
def session_close_as_superseded(session: ChargingSession) -> None:
    """End a session a newer one replaced on its connector, at its last meter reading."""
    meter_wh, when = _last_register_wh(session)
    session.meter_stop_wh = max(
        meter_wh if meter_wh is not None else session.meter_start_wh, session.meter_start_wh
    )
    session.stopped_at = when or session.started_at
    session.stop_reason = SUPERSEDED
    session.status = ChargingSession.Status.COMPLETED
    session.received_stop_at = timezone.now()
    session.save(
        update_fields=["meter_stop_wh", "stopped_at", "stop_reason", "status", "received_stop_at"]
    )
    session_announce_on_commit("finished", session.pk)
    logger.warning(
        "Closed session %s on %s/%s: a newer transaction started",
        session.transaction_id,
        session.charger_id,
        session.connector_id,
    )


def _meter_rows(
    charger_id: int, connector_id: int, session_id: int | None, readings: list[MeterReading]
) -> list:
    from .storable import clean_text

    rows = []
    for reading in readings:
        for sample in reading.samples:
            rows.append(
                MeterValue(
                    charger_id=charger_id,
                    session_id=session_id,
                    connector_id=connector_id,
                    timestamp=reading.timestamp,
                    measurand=clean_text(sample.measurand),
                    phase=clean_text(sample.phase),
                    unit=clean_text(sample.unit),
                    context=clean_text(sample.context),
                    location=clean_text(sample.location),
                    value=to_decimal(sample.value),
                    raw_value=clean_text(sample.value)[:100],
                )
            )
    return rows


METER_VALUE_LIMIT = Decimal("1e15")  # MeterValue.value is DECIMAL(20, 4)


def to_decimal(raw: str) -> Decimal | None:
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and abs(value) < METER_VALUE_LIMIT else None


def meter_values_store(
    *, charger_id: int, connector_id: int, transaction_id: int | None, readings: list[MeterReading]
) -> int:
    """Store the sampled values of one MeterValues message (journal replay, tests)."""
    session_id = None
    if transaction_id is not None:
        session_id = (
            ChargingSession.objects.filter(charger_id=charger_id, transaction_id=transaction_id)
            .values_list("pk", flat=True)
            .first()
        )
    rows = _meter_rows(charger_id, connector_id, session_id, readings)
    MeterValue.objects.bulk_create(rows)
    return len(rows)


def session_stop(
    *,
    charger_id: int,
    transaction_id: int,
    meter_stop: int | None,
    stopped_at: datetime,
    reason: str = "",
    id_tag: str = "",
    transaction_data: list | None = None,
    payload: dict | None = None,
    readings: list[MeterReading] | None = None,
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
                charger_id=charger_id,
                transaction_id=transaction_id,
                stopped_at=stopped_at,
                meter_stop_wh=meter_stop if meter_stop is not None else 0,
                defaults={"id_tag": id_tag[:36], "reason": reason[:20], "payload": payload or {}},
            )
            logger.warning(
                "Orphan StopTransaction %s from charger %s kept for review",
                transaction_id,
                charger_id,
            )
            return None
        # A repeated stop changes nothing, except that the charger's own stop replaces the
        # estimate of a session we closed as superseded.
        if session.status == ChargingSession.Status.COMPLETED and session.stop_reason != SUPERSEDED:
            return session
        if meter_stop is None:  # unusable meterStop: the last reading we have
            last_wh, _ = _last_register_wh(session)
            meter_stop = max(
                last_wh if last_wh is not None else session.meter_start_wh, session.meter_start_wh
            )
        session.meter_stop_wh = meter_stop
        session.stopped_at = stopped_at
        session.stop_reason = (reason or "Local")[:20]
        session.stop_id_tag = id_tag[:36]
        session.status = ChargingSession.Status.COMPLETED
        session.received_stop_at = timezone.now()
        session.transaction_data = transaction_data or None
        session.save()
        rows = _meter_rows(charger_id, session.connector_id, session.pk, readings or [])
        if rows:
            MeterValue.objects.bulk_create(rows)
        session_announce_on_commit("finished", session.pk)
        return session


def session_for_transaction(*, charger_id: int, transaction_id: int) -> ChargingSession | None:
    return ChargingSession.objects.filter(
        charger_id=charger_id, transaction_id=transaction_id
    ).first()


# -- settings changed by hosts and agents -------------------------------------------------------


@transaction.atomic
def charger_set_password(*, charger: Charger, password: str | None) -> None:
    charger.set_ocpp_password(password)
    charger.save(update_fields=["ocpp_password_hash"])


# -- journal replay: messages answered while the database was unreachable ------------------------


def journal_apply(journal_name: str, entry: dict) -> None:
    """Apply one journal entry (chargers.journal) exactly once, in its own transaction."""
    from .models import JournalEntryApplied, OcppDeadLetter

    try:
        with transaction.atomic():
            _, created = JournalEntryApplied.objects.get_or_create(
                journal=journal_name, seq=entry["seq"]
            )
            if created:
                _journal_apply_entry(entry)
    except Exception as exc:
        from .journal import is_outage

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


def _journal_time(value) -> datetime:
    from django.utils.dateparse import parse_datetime as parse_iso

    parsed = parse_iso(value) if isinstance(value, str) else None
    return parsed or timezone.now()


def _journal_apply_entry(entry: dict) -> None:
    from .models import OcppMessage
    from .ocpp import tolerant
    from .ocpp.protocol import REQUEST_VALIDATORS

    if entry.get("kind") == "log":
        OcppMessage.objects.bulk_create(
            [
                OcppMessage(
                    charger_id=row[0],
                    timestamp=_journal_time(row[1]),
                    direction=row[2],
                    message_type=row[3],
                    unique_id=row[4],
                    action=row[5],
                    id_tag=row[6],
                    # The row holds the payload as JSON text (it was bound for COPY).
                    payload=json.loads(row[7]) if isinstance(row[7], str) else row[7],
                    raw=row[8],
                    escaped=row[9],
                    violation=row[10],
                    backoffice_id=row[11] if len(row) > 11 else None,
                )
                for row in entry["rows"]
            ]
        )
        return
    action, charger_id, payload = entry["action"], entry["charger_id"], entry["payload"]
    received = _journal_time(entry.get("received_at"))
    if entry.get("protocol") == "2.0.1":  # OCPP 2.0.1 entries (chargers.services_v201)
        from .services_v201 import journal_apply_entry

        journal_apply_entry(entry, received)
        return
    if action == "StartTransaction":
        reading = tolerant.read_start(payload, REQUEST_VALIDATORS[action], received)
        session_start(
            charger_id=charger_id,
            connector_id=reading.connector_id,
            id_tag=reading.id_tag,
            meter_start=reading.meter or 0,
            started_at=reading.timestamp or received,
            reservation_id=reading.reservation_id,
            id_tag_status=entry.get("id_tag_status", "Accepted"),
            transaction_id=entry.get("transaction_id"),
            # Stored with the session it opens (not for a start the charger resent and we stored since).
            decision_record=decision_for_replayed_start(
                charger_id=charger_id,
                id_tag=reading.id_tag,
                connector_id=reading.connector_id,
                unique_id=entry.get("unique_id", ""),
            ),
        )
    elif action == "StopTransaction":
        reading = tolerant.read_stop(payload, REQUEST_VALIDATORS[action], received)
        from .storable import clean_value

        session_stop(
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
    elif action == "MeterValues":
        reading = tolerant.read_meter_values(payload, REQUEST_VALIDATORS[action], received)
        meter_values_store(
            charger_id=charger_id,
            connector_id=reading.connector_id,
            transaction_id=reading.transaction_id,
            readings=reading.meter_values,
        )
    elif action == "StatusNotification":
        from .ocpp.protocol import parse_datetime

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


def new_transaction_id() -> int:
    # Random, not sequential: a guessable id lets one client stop others' sessions.
    return secrets.randbelow(INT32_MAX) + 1


def _decided_from_cache(
    *,
    charger_id: int,
    id_tag: str,
    connector_id: int | None,
    context: Context,
    unique_id: str,
    note: str = "",
) -> dict[str, Any]:
    """The card's decision now, from the engine without asking an MSP (a cached positive answer
    is used), as `decision_record`'s arguments; `note` is added to its message."""
    from dataclasses import replace

    from authorization.services import decide_cached

    charger = Charger.objects.select_related("property").get(pk=charger_id)
    facts = charger_facts(charger)
    decision, token = decide_cached(uid=id_tag, charger=facts, context=context)
    if note:
        decision = replace(decision, message=decision.message + note)
    return dict(
        decision=decision,
        uid=id_tag,
        token_id=token.pk if token else None,
        organization_id=facts.organization_id,
        station_id=charger.station_id,
        connector_id=connector_id,
        context=context,
        msp_id=token.msp_id if token else None,
        ocpp_unique_id=unique_id[:36],
    )


def token_status_for_stop(
    *, charger_id: int, id_tag: str, connector_id: int | None, unique_id: str
) -> str:
    """The idTagInfo status of a StopTransaction: the card's status now, from the engine, recorded
    like every decision. No MSP is asked (a slow partner must not delay a stop); a cached
    positive answer is used."""
    from authorization.services import decision_record

    record = _decided_from_cache(
        charger_id=charger_id,
        id_tag=id_tag,
        connector_id=connector_id,
        context=Context.STOP_TRANSACTION,
        unique_id=unique_id,
    )
    decision_record(**record)
    return str(record["decision"].status)


REPLAYED_START_NOTE = (
    " The database could not be reached when the charger started, so the charger was answered "
    "Accepted; this is the card's status when the start was stored after the outage."
)


def decision_for_replayed_start(
    *,
    charger_id: int,
    id_tag: str,
    connector_id: int | None,
    unique_id: str,
) -> dict | None:
    """The decision of a start answered from the outage journal (docs/ocpp.md, "During a database
    outage"), made when it is replayed: `decision_record`'s arguments, for the caller to store with
    the session. The card could not be checked when the charger asked; no MSP is asked now either,
    as for a stop. None, logged, if it cannot be decided: the session is stored all the same
    (only an outage stops the replay)."""
    from .journal import is_outage

    try:
        with transaction.atomic():  # a failed query must not break the replay's transaction
            return _decided_from_cache(
                charger_id=charger_id,
                id_tag=id_tag,
                connector_id=connector_id,
                context=Context.START_TRANSACTION,
                unique_id=unique_id,
                note=REPLAYED_START_NOTE,
            )
    except Exception as exc:
        if is_outage(exc):
            raise
        logger.exception(
            "The replayed start %s of charger %s could not be decided", unique_id, charger_id
        )
        return None


IDENTITY_CONFLICT_REPLACEMENTS_PER_MINUTE = 5


def charger_note_replacement(*, charger_id: int, station_id: str) -> bool:
    """Count a socket replacing another for this station id; more than a few a minute means two
    clients are fighting over one id: logged once (per 10 minutes) and shown on the Overview."""
    from django.conf import settings
    from django.core.cache import cache

    limit = getattr(
        settings, "OCPP_IDENTITY_CONFLICT_REPLACEMENTS", IDENTITY_CONFLICT_REPLACEMENTS_PER_MINUTE
    )
    key = f"cp-replaced:{charger_id}"
    cache.add(key, 0, 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, 60)
        count = 1
    if count <= limit:
        return False
    charger_record_identity_conflict(charger_id=charger_id, replacements=count)
    if cache.add(f"cp-conflict-logged:{charger_id}", 1, 600):
        logging.getLogger("chargers.security").warning(
            "Two clients are fighting over station id %s: %d replaced sockets within a minute",
            station_id,
            count,
        )
    return True


# -- charger identity and security (docs/security.md) ------------------------------------------------


class SecurityProfileRefused(Exception):
    """The requested security profile change is not allowed; the message says why."""


@transaction.atomic
def charger_rotate_password(*, charger: Charger) -> str:
    """Give the charger a new generated password and return it: the caller shows it once;
    only its hash is stored, and the old password stops working at once."""
    from . import credentials

    password = credentials.generate_password()
    charger.set_ocpp_password(password)
    charger.save(update_fields=["ocpp_password_hash", "ocpp_password_set_at"])
    logging.getLogger("chargers.security").warning(
        "New OCPP password generated for %s", charger.station_id
    )
    return password


@transaction.atomic
def charger_set_security_profile(*, charger: Charger, profile: int, by_staff: bool) -> str | None:
    """Set the least a connection of this charger must prove; return a generated password when
    the new profile needs one and the charger had none (shown once by the caller).

    Profile 0 (no authentication) and any lowering are for staff only: hosts cannot weaken a
    charger, and OCPP itself never lowers a profile (A00.FR.005).
    """
    profile = int(profile)
    if profile not in Charger.SecurityProfile.values:
        raise SecurityProfileRefused("Choose a security profile between 0 and 3.")
    if profile == Charger.SecurityProfile.NONE and not by_staff:
        raise SecurityProfileRefused(
            "Only support staff can let a charger connect without authentication."
        )
    if profile < charger.security_profile and not by_staff:
        raise SecurityProfileRefused("Only support staff can lower a charger's security profile.")
    password = None
    fields = ["security_profile", "security_profile_pending"]
    if (
        profile in (Charger.SecurityProfile.BASIC_AUTH, Charger.SecurityProfile.TLS_BASIC_AUTH)
        and not charger.ocpp_password_hash
    ):
        from . import credentials

        password = credentials.generate_password()
        charger.set_ocpp_password(password)
        fields += ["ocpp_password_hash", "ocpp_password_set_at"]
    if profile != charger.security_profile:
        logging.getLogger("chargers.security").warning(
            "Security profile of %s set from %s to %s",
            charger.station_id,
            charger.security_profile,
            profile,
        )
    charger.security_profile = profile
    if charger.security_profile_pending is not None and charger.security_profile_pending <= profile:
        charger.security_profile_pending = None
    charger.save(update_fields=fields)
    return password


# One answer whether the id is taken in this organization, another one or not at all, so
# neither the API nor the portal tells a host which station ids exist elsewhere on the platform.
STATION_ID_UNAVAILABLE = "This station id cannot be used."


def station_id_problem(station_id: str) -> str | None:
    """Return why a new charger may not take this Station ID, or None (API and portal alike)."""
    from django.core.exceptions import ValidationError

    from .models import station_id_validator

    try:
        station_id_validator(station_id)
    except ValidationError as exc:
        return " ".join(exc.messages)
    if Charger.objects.filter(station_id=station_id).exists():
        return STATION_ID_UNAVAILABLE
    return None


class StationIdRefused(ValueError):
    pass


@transaction.atomic
def charger_create(
    *, prop, station_id: str, name: str = "", security_profile: int = 1, by_staff: bool = False
) -> tuple[Charger, str | None]:
    """Add a charger to a location; return it and its generated OCPP password (profiles 1-2),
    which the caller shows once: only its hash is stored."""
    problem = station_id_problem(station_id)
    if problem:
        raise StationIdRefused(problem)
    charger = Charger(property=prop, station_id=station_id, name=name.strip())
    charger.full_clean(exclude=["ocpp_password_hash"], validate_unique=False)
    try:
        with transaction.atomic():
            charger.save()
    except IntegrityError:  # taken between the check and the insert
        raise StationIdRefused(STATION_ID_UNAVAILABLE) from None
    password = charger_set_security_profile(
        charger=charger, profile=security_profile, by_staff=by_staff
    )
    return charger, password


def charger_password_rehash(*, charger_id: int, old_hash: str, new_hash: str) -> bool:
    """Replace a slow legacy hash by the fast one after a successful login (unless it changed)."""
    return bool(
        Charger.objects.filter(pk=charger_id, ocpp_password_hash=old_hash).update(
            ocpp_password_hash=new_hash
        )
    )


def charger_security_profile_adopt(*, charger_id: int, profile: int) -> None:
    """The charger connected at its pending profile: make it the least it may connect with."""
    Charger.objects.filter(pk=charger_id, security_profile__lt=profile).update(
        security_profile=profile
    )
    Charger.objects.filter(pk=charger_id, security_profile_pending__lte=profile).update(
        security_profile_pending=None
    )


def charger_certificate_revoked(fingerprint: str) -> bool:
    from .models import ChargerCertificate

    return ChargerCertificate.objects.filter(
        fingerprint_sha256=fingerprint, revoked_at__isnull=False
    ).exists()


def charger_certificate_record(*, charger_id: int, issued) -> int:
    """Keep a certificate our CA issued (a pki.IssuedCertificate); return its id."""
    from .models import ChargerCertificate

    return ChargerCertificate.objects.create(
        charger_id=charger_id,
        serial_number=issued.serial_number,
        fingerprint_sha256=issued.fingerprint_sha256,
        subject=issued.subject[:255],
        not_before=issued.not_before,
        not_after=issued.not_after,
        certificate_pem=issued.certificate_pem,
    ).pk


def charger_certificate_delivered(
    *, certificate_id: int, command_id: int | None, delivery: str
) -> None:
    from .models import ChargerCertificate

    ChargerCertificate.objects.filter(pk=certificate_id).update(
        command_id=command_id, delivery=delivery[:40]
    )


def security_event_record(
    *,
    charger_id: int,
    event_type: str,
    timestamp: datetime,
    tech_info: str = "",
    source: str = "charger",
) -> bool:
    """Store a security event once (a repeated notification changes nothing); return whether it is new."""
    from .models import CRITICAL_SECURITY_EVENTS, SecurityEvent

    _, created = SecurityEvent.objects.get_or_create(
        charger_id=charger_id,
        source=source,
        event_type=event_type[:50],
        timestamp=timestamp,
        tech_info=tech_info[:255],
        defaults={"critical": event_type in CRITICAL_SECURITY_EVENTS},
    )
    if created and event_type in CRITICAL_SECURITY_EVENTS:
        logging.getLogger("chargers.security").warning(
            "Critical security event %s from charger %s", event_type, charger_id
        )
    return created


def security_event_record_refusal(*, charger_id: int, event_type: str, tech_info: str) -> bool:
    """Keep a refused handshake of a known charger as a central-system security event, at most
    one per charger and kind a minute (the log has every one), so a flood costs no writes."""
    from django.core.cache import cache

    if not cache.add(f"ocpp-refused:{charger_id}:{event_type}", 1, 60):
        return False
    return security_event_record(
        charger_id=charger_id,
        event_type=event_type,
        timestamp=timezone.now(),
        tech_info=tech_info,
        source="csms",
    )


OPERATION_ACTIONS = {"GetLog": "log", "SignedUpdateFirmware": "firmware"}


def command_security_prepare(*, command, payload: dict) -> None:
    """Before a CALL goes out: keep the hash of a new AuthorizationKey (never the key) until the
    charger answers, and open the operation a GetLog or SignedUpdateFirmware starts."""
    from .models import AuthorizationKeyChange, ChargerOperation, ChargerOperationStatus, Command

    if command.status != Command.Status.PENDING:
        return
    from . import credentials

    new_password = None
    if (
        command.action == "ChangeConfiguration"
        and str(payload.get("key", "")).lower() == "authorizationkey"
    ):
        new_password = str(payload.get("value", ""))
    elif command.action == "SetVariables":  # 2.0.1 A01: SecurityCtrlr.BasicAuthPassword
        item = next(
            (
                i
                for i in payload.get("setVariableData") or []
                if credentials.is_password_variable(i)
            ),
            None,
        )
        new_password = str(item.get("attributeValue", "")) if item else None
    if new_password is not None:
        AuthorizationKeyChange.objects.create(
            charger_id=command.charger_id,
            command=command,
            password_hash=credentials.make_hash(new_password),
        )
    elif command.action in OPERATION_ACTIONS:
        details = {
            "logType": payload.get("logType"),
            "remoteLocation": (payload.get("log") or {}).get("remoteLocation"),
        }
        if command.action == "SignedUpdateFirmware":
            firmware = payload.get("firmware") or {}
            details = {
                "location": firmware.get("location"),
                "retrieveDateTime": firmware.get("retrieveDateTime"),
            }
        operation = ChargerOperation.objects.create(
            charger_id=command.charger_id,
            kind=OPERATION_ACTIONS[command.action],
            request_id=payload.get("requestId"),
            command=command,
            details=details,
        )
        ChargerOperationStatus.objects.create(
            operation=operation, status="Requested", source="request"
        )


@transaction.atomic
def command_security_complete(*, command_id: int, status: str, response) -> None:
    """After the charger answered (or not): adopt an accepted AuthorizationKey (and only then:
    Rejected or NotSupported keeps the old password, A01.FR.03/04), note an accepted
    SecurityProfile upgrade, and add the answer to the operation's history."""
    from . import credentials
    from .models import AuthorizationKeyChange, ChargerOperation, ChargerOperationStatus, Command

    command = Command.objects.filter(pk=command_id).only("action", "payload", "charger_id").first()
    if command is None or command.action not in (
        "ChangeConfiguration",
        "SetVariables",
        "SetNetworkProfile",
        *OPERATION_ACTIONS,
    ):
        return
    answer = str(response.get("status", "")) if isinstance(response, dict) else ""
    if command.action == "SetNetworkProfile":
        # 2.0.1 A05: a profile with a higher securityProfile accepted: the upgrade is pending until
        # the charger connects with it; from then on nothing less connects (A05.FR.07, handshake).
        connection = command.payload.get("connectionData") or {}
        wanted = connection.get("securityProfile") if isinstance(connection, dict) else None
        if status == Command.Status.ANSWERED and answer == "Accepted" and isinstance(wanted, int):
            Charger.objects.filter(pk=command.charger_id, security_profile__lt=wanted).update(
                security_profile_pending=wanted
            )
        return
    if command.action == "SetVariables":
        # 2.0.1 A01.FR.03/04: the password's own setVariableResult decides.
        results = response.get("setVariableResult") if isinstance(response, dict) else None
        answer = next(
            (
                str(r.get("attributeStatus", ""))
                for r in results or []
                if credentials.is_password_variable(r)
            ),
            "",
        )
    accepted = status == Command.Status.ANSWERED and answer == "Accepted"
    now = timezone.now()
    if command.action in ("ChangeConfiguration", "SetVariables"):
        change = (
            AuthorizationKeyChange.objects.select_for_update()
            .filter(command_id=command_id, status="pending")
            .first()
        )
        if change is not None:
            if accepted:
                Charger.objects.filter(pk=command.charger_id).update(
                    ocpp_password_hash=change.password_hash, ocpp_password_set_at=now
                )
                change.status = AuthorizationKeyChange.Status.ADOPTED
            elif status in (Command.Status.ANSWERED, Command.Status.ERROR):
                change.status = (
                    AuthorizationKeyChange.Status.KEPT
                )  # Rejected, NotSupported, CALLERROR
            else:
                # The answer was lost (it disconnected, or timed out): the handshake accepts
                # whichever password it comes back with (authorization_key_adopt_open).
                change.status = AuthorizationKeyChange.Status.NO_ANSWER
            change.resolved_at = now
            change.save(update_fields=["status", "resolved_at"])
            logging.getLogger("chargers.security").warning(
                "AuthorizationKey of charger %s: %s",
                command.charger_id,
                change.get_status_display(),
            )
        elif accepted and str(command.payload.get("key", "")).lower() == "securityprofile":
            try:
                wanted = int(str(command.payload.get("value", "")))
            except ValueError:
                return
            Charger.objects.filter(pk=command.charger_id, security_profile__lt=wanted).update(
                security_profile_pending=wanted
            )
        return
    operation = ChargerOperation.objects.filter(command_id=command_id).first()
    if operation is None:
        return
    operation.status = answer or dict(Command.Status.choices).get(status, status)
    if isinstance(response, dict) and response.get("filename"):
        operation.details = {**operation.details, "filename": str(response["filename"])[:255]}
    operation.save(update_fields=["status", "details", "updated_at"])
    ChargerOperationStatus.objects.create(
        operation=operation, status=operation.status[:40], source="answer"
    )


@transaction.atomic
def operation_status_record(
    *, charger_id: int, kind: str, request_id: int | None, status: str
) -> None:
    """Add a LogStatusNotification / SignedFirmwareStatusNotification to its operation's history:
    the one with this requestId, else (1.6 makes requestId optional) the charger's latest of
    that kind; a notification nobody asked for opens a new one."""
    from .models import ChargerOperation, ChargerOperationStatus

    operations = ChargerOperation.objects.select_for_update().filter(
        charger_id=charger_id, kind=kind
    )
    operation = None
    if request_id is not None:
        operation = operations.filter(request_id=request_id).order_by("-created_at", "-id").first()
    if operation is None and request_id is None:
        operation = operations.order_by("-created_at", "-id").first()
    if operation is None:
        operation = ChargerOperation.objects.create(
            charger_id=charger_id, kind=kind, request_id=request_id, status=status
        )
    else:
        operation.status = status
        operation.save(update_fields=["status", "updated_at"])
    ChargerOperationStatus.objects.create(
        operation=operation, status=status[:40], source="notification"
    )


def charger_count_violation(*, charger_id: int) -> None:
    from django.db.models import F

    Charger.objects.filter(pk=charger_id).update(schema_violations=F("schema_violations") + 1)


OPEN_KEY_CHANGE_DAYS = 30


@transaction.atomic
def authorization_key_adopt_open(*, charger_id: int, password: bytes) -> bool:
    """The charger's password did not match: if it matches a new AuthorizationKey whose answer we
    never got (or are still waiting for), the charger did switch to it. Make it the password."""
    from . import credentials
    from .models import AuthorizationKeyChange

    open_changes = (
        AuthorizationKeyChange.objects.select_for_update()
        .filter(
            charger_id=charger_id,
            status__in=["pending", "noanswer"],
            created_at__gte=timezone.now() - timedelta(days=OPEN_KEY_CHANGE_DAYS),
        )
        .order_by("-created_at", "-id")
    )
    for change in open_changes:
        if credentials.verify(change.password_hash, password):
            now = timezone.now()
            Charger.objects.filter(pk=charger_id).update(
                ocpp_password_hash=change.password_hash, ocpp_password_set_at=now
            )
            AuthorizationKeyChange.objects.filter(pk=change.pk).update(
                status="adopted", resolved_at=now
            )
            AuthorizationKeyChange.objects.filter(
                charger_id=charger_id, status__in=["pending", "noanswer"]
            ).exclude(pk=change.pk).update(status="kept", resolved_at=now)
            logging.getLogger("chargers.security").warning(
                "Charger %s connected with the AuthorizationKey whose answer was lost: adopted",
                charger_id,
            )
            return True
    return False

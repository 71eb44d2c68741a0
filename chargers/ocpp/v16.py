"""OCPP 1.6 handlers: map each charger CALL to domain services and build the reply payload.

Handlers hold no rules and no ORM: they translate OCPP field names, call a service through
the database pool (backoffice.db.run) and shape the answer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from authorization.decisions import Context, Decision, TokenFacts
from authorization.models import Token
from authorization.services import decide_live, decision_record
from backoffice import db
from chargers import connection_state, services, starts, stops
from chargers.journal import TRANSIENT_RETRIES, is_outage, is_transient, journal
from chargers.message_log import DatabaseUnavailable, MeterSample, writer
from chargers.storable import clean_texts, clean_value

from . import tolerant
from .protocol import (
    PROPERTY_CONSTRAINT_VIOLATION,
    REQUEST_VALIDATORS,
    SECURITY_ERROR,
    OcppError,
    format_datetime,
    parse_datetime,
    validate,
)

logger = logging.getLogger(__name__)


@dataclass
class Connection:
    """What a handler knows about the charger on this socket."""

    charger_id: int
    station_id: str
    connection_id: str
    registration_status: str
    events: list = field(default_factory=list)  # (connector_id, event dict) to publish live
    # Set per CALL by the consumer / the handler:
    received_at: datetime | None = None
    # The frame's text holds nothing PostgreSQL cannot store (storable.may_need_cleaning), so
    # its payload needs no clean_value walk before it is written as JSON.
    received_clean: bool = False
    violation: str = ""  # schema violation accepted on a transaction message
    # (payload, its JSON) when a handler already wrote the received payload as JSON for a row of
    # its own (a 2.0.1 TransactionEvent's event row): the log row reuses the text instead of
    # dumping the same payload again. Only for the very object the consumer logs.
    dumped: tuple[Any, str] | None = None

    def publish(self, connector_id: int, **event) -> None:
        self.events.append((connector_id, event))


def _id_tag_info(decision) -> dict:
    return {"status": str(decision.status)}


# Messages answered from the journal while the database is unreachable (chargers.journal).
JOURNALED = {
    "StartTransaction",
    "StopTransaction",
    "MeterValues",
    "StatusNotification",
    "BootNotification",
}
# Transaction messages are read leniently (chargers.ocpp.tolerant): never refused for being odd.
LENIENT = {"StartTransaction", "StopTransaction", "MeterValues"}

# Starts answered from the journal, by their facts: a charger that resends one (our answer was
# lost) gets the same transactionId again. Bounded; entries are only needed during an outage.
_journaled_starts: OrderedDict[tuple, int] = OrderedDict()
JOURNALED_STARTS_MAX = 10_000


async def _journal(conn: Connection, action: str, payload: dict, unique_id: str, **extra) -> None:
    await journal.append(
        [
            {
                "kind": "call",
                "action": action,
                "charger_id": conn.charger_id,
                "payload": payload,
                "unique_id": unique_id,
                "received_at": conn.received_at or timezone.now(),
                **extra,
            }
        ]
    )


async def _durably(conn: Connection, action: str, payload: dict, unique_id: str, now, **extra):
    """Run `now()` against the database; if it is unreachable (or a journal is being replayed,
    to keep order), journal the message instead. Returns now()'s result, or None if journaled."""
    attempt = 0
    while not journal.engaged:
        try:
            return await now()
        except DatabaseUnavailable as exc:
            journal.engage(exc)
            break
        except Exception as exc:
            if is_transient(exc) and attempt < TRANSIENT_RETRIES:
                attempt += 1  # a deadlock rolled it all back: the database is there, run it again
                continue
            if not is_outage(exc):
                raise
            journal.engage(exc)
            break
    await _journal(conn, action, payload, unique_id, **extra)
    return None


async def boot_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    interval = settings.OCPP_HEARTBEAT_INTERVAL

    async def now():
        return await connection_state.boot(
            connection_state.Boot.from_payload(conn.charger_id, payload, interval)
        )

    result = await _durably(conn, "BootNotification", payload, unique_id, now, interval=interval)
    if result is not None:
        conn.registration_status, interval = result.status, result.interval
    return {
        "status": conn.registration_status,
        "currentTime": format_datetime(timezone.now()),
        "interval": interval,
    }


async def heartbeat(conn: Connection, payload: dict, unique_id: str) -> dict:
    writer.touch(conn.charger_id, heartbeat=True)
    return {"currentTime": format_datetime(timezone.now())}


async def status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    if not 0 <= payload["connectorId"] <= tolerant.INT32_MAX:  # the schema sets no bounds
        raise OcppError(
            PROPERTY_CONSTRAINT_VIOLATION,
            "connectorId must be 0 (the charger) or a connector number",
            {"field": "connectorId"},
        )
    timestamp = parse_datetime(payload["timestamp"]) if payload.get("timestamp") else None

    async def now():
        await connection_state.status(
            connection_state.StatusChange(
                charger_id=conn.charger_id,
                connector_id=payload["connectorId"],
                status=payload["status"],
                error_code=payload["errorCode"],
                info=payload.get("info", ""),
                vendor_error_code=payload.get("vendorErrorCode", ""),
                timestamp=timestamp,
            )
        )
        return True

    await _durably(conn, "StatusNotification", payload, unique_id, now)
    conn.publish(
        payload["connectorId"],
        kind="status",
        status=payload["status"],
        error_code=payload["errorCode"],
    )
    return {}


async def _decide(
    conn: Connection, id_tag: str, context: Context, connector_id: int | None, unique_id: str
) -> tuple[Decision, tuple[Token, TokenFacts] | None]:
    """Decide on a card at this charger and record the decision; return it with the card found
    (2.0.1 answers the card's group and opens the session with it). Two trips to the database
    pool: the facts, then the record (the card's MSP, if it must be asked, in between)."""
    decision, record, token = await _decide_unrecorded(
        conn, id_tag, context, connector_id, unique_id
    )
    await db.run(decision_record, **record)
    return decision, token


async def _decide_unrecorded(
    conn: Connection, id_tag: str, context: Context, connector_id: int | None, unique_id: str
) -> tuple[Decision, dict, tuple[Token, TokenFacts] | None]:
    """`_decide` without recording: the decision, its record (`decision_record`'s arguments, for
    the caller to store with what it opens) and the card found."""
    facts, location_id, token = await starts.decision_inputs(
        charger_id=conn.charger_id,
        connector_id=connector_id,
        id_tag=id_tag,
    )
    decision, record = await decide_live(
        uid=id_tag,
        charger=facts,
        context=context,
        token=token,
        location_id=location_id,
        connector_id=connector_id,
        ocpp_unique_id=unique_id,
    )
    return decision, record, token


async def authorize_request(conn: Connection, payload: dict, unique_id: str) -> dict:
    decision, _ = await _decide(conn, payload["idTag"], Context.LOCAL, None, unique_id)
    return {"idTagInfo": _id_tag_info(decision)}


async def start_transaction(conn: Connection, payload: dict, unique_id: str) -> dict:
    received = conn.received_at or timezone.now()
    reading = tolerant.read_start(payload, REQUEST_VALIDATORS["StartTransaction"], received)
    conn.violation = reading.violation
    started_at = reading.timestamp or received
    facts = (conn.charger_id, reading.connector_id, reading.id_tag, reading.meter, started_at)
    # Drawn before any write, so a start journaled after an ambiguous failure keeps its id.
    transaction_id = _journaled_starts.get(facts) or services.new_transaction_id()

    async def now():
        # Two round trips: read everything the decision needs, then record the decision and
        # the session in one transaction (the MSP, if it must be asked, in between).
        prepared = await starts.start_prepare(
            charger_id=conn.charger_id,
            connector_id=reading.connector_id,
            id_tag=reading.id_tag,
            meter_start=reading.meter,
            started_at=started_at,
        )
        if prepared.repeat is not None:  # our earlier reply was lost: same transaction, same answer
            return prepared.repeat, False
        decision, record = await decide_live(
            uid=reading.id_tag,
            charger=prepared.charger,
            context=Context.START_TRANSACTION,
            token=prepared.token,
            location_id=prepared.location_id,
            connector_id=reading.connector_id,
            ocpp_unique_id=unique_id,
        )
        # Never refuse a transaction message (OCPP 1.6 §3.7): record it whatever the decision;
        # the charger stops a session whose idTagInfo is not Accepted.
        session = await starts.session_start(
            starts.OpenRequest(
                charger_id=conn.charger_id,
                connector_id=reading.connector_id,
                id_tag=reading.id_tag,
                meter_start=reading.meter,
                started_at=started_at,
                transaction_id=transaction_id,
                id_tag_status=str(decision.status),
                reservation_id=reading.reservation_id,
                token=prepared.token[0] if prepared.token else None,
                decision_record=record,
            )
        )
        return session, True

    result = await _durably(
        conn,
        "StartTransaction",
        payload,
        unique_id,
        now,
        transaction_id=transaction_id,
        id_tag_status="Accepted",
    )
    if result is None:
        # Journaled: the card cannot be checked now. The charger already started (it
        # authorized locally or offline); Accepted keeps the session, the decision is
        # recorded when the journal is replayed (docs/ocpp.md, "During a database outage").
        _journaled_starts[facts] = transaction_id
        while len(_journaled_starts) > JOURNALED_STARTS_MAX:
            _journaled_starts.popitem(last=False)
        conn.publish(reading.connector_id, kind="started", transaction_id=transaction_id)
        return {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}}
    session, new = result
    if new:
        conn.publish(reading.connector_id, kind="started", transaction_id=session.transaction_id)
    return {"transactionId": session.transaction_id, "idTagInfo": {"status": session.id_tag_status}}


async def stop_transaction(conn: Connection, payload: dict, unique_id: str) -> dict:
    received = conn.received_at or timezone.now()
    reading = tolerant.read_stop(payload, REQUEST_VALIDATORS["StopTransaction"], received)
    conn.violation = reading.violation

    async def now():
        session = await stops.stop(
            stops.StopRequest(
                charger_id=conn.charger_id,
                transaction_id=reading.transaction_id,
                meter_stop=reading.meter,
                stopped_at=reading.timestamp or received,
                reason=reading.reason,
                id_tag=reading.id_tag,
                transaction_data=clean_value(payload.get("transactionData"))[0] or None,
                payload=clean_value(payload)[0],
                readings=reading.meter_values,
            )
        )
        return (session,)

    result = await _durably(conn, "StopTransaction", payload, unique_id, now)
    if result is not None and result[0] is not None:
        conn.publish(
            result[0].connector_id, kind="stopped", transaction_id=result[0].transaction_id
        )
    if not reading.id_tag:
        return {}
    status = "Accepted"
    if result is not None:
        # The card's status now, from the authorization engine, for the charger's cache
        # (OCPP 1.6 §4.10). The stop itself is already stored whatever this says.
        try:
            status = await db.run(
                services.token_status_for_stop,
                charger_id=conn.charger_id,
                id_tag=reading.id_tag,
                connector_id=result[0].connector_id if result[0] is not None else None,
                unique_id=unique_id,
            )
        except Exception:
            logger.exception(
                "Could not decide the idTag status of a StopTransaction; answering without it"
            )
            return {}
    return {"idTagInfo": {"status": status}}


async def meter_values(conn: Connection, payload: dict, unique_id: str) -> dict:
    received = conn.received_at or timezone.now()
    reading = tolerant.read_meter_values(payload, REQUEST_VALIDATORS["MeterValues"], received)
    conn.violation = reading.violation
    connector_id, transaction_id = reading.connector_id, reading.transaction_id
    samples = []
    latest: dict[str, str] = {}
    for entry in reading.meter_values:
        for sample in entry.samples:
            samples.append(
                MeterSample(
                    conn.charger_id,
                    connector_id,
                    transaction_id,
                    entry.timestamp,
                    sample.measurand,
                    sample.phase,
                    sample.unit,
                    sample.context,
                    sample.location,
                    sample.value,
                )
            )
            if not sample.phase:
                latest[sample.measurand] = f"{sample.value} {sample.unit}".strip()

    async def now():
        # Answered only once the samples are committed (group commit, every few ms).
        await writer.store_meter_samples(samples)
        return True

    await _durably(conn, "MeterValues", payload, unique_id, now)
    if transaction_id is not None:
        conn.publish(connector_id, kind="meter", transaction_id=transaction_id, values=latest)
    return {}


async def data_transfer(conn: Connection, payload: dict, unique_id: str) -> dict:
    # No vendor extensions are implemented; 1.6 §4.3: answer UnknownVendorId.
    return {"status": "UnknownVendorId"}


async def diagnostics_status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    return {}


async def firmware_status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    return {}


HANDLERS = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize_request,
    "StartTransaction": start_transaction,
    "StopTransaction": stop_transaction,
    "MeterValues": meter_values,
    "DataTransfer": data_transfer,
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
}

# Transaction messages are accepted whatever the registration state (never lose billing data).
ALLOWED_BEFORE_ACCEPTED = {"BootNotification", "StartTransaction", "StopTransaction", "MeterValues"}


async def handle_call(conn: Connection, action: str, payload: dict, unique_id: str) -> dict:
    """Answer one CALL (the consumer has checked the action is one a charger may send)."""
    handler = HANDLERS.get(action)
    if handler is None:
        raise OcppError("NotSupported", f"{action} is not supported by this central system")
    if conn.registration_status == "Rejected" and action not in ALLOWED_BEFORE_ACCEPTED:
        # OCPP-J 1.6 errata 3.10: SecurityError until the charger is accepted.
        raise OcppError(SECURITY_ERROR, "Charge point is not accepted by the central system")
    conn.violation = ""
    if action not in LENIENT and action in REQUEST_VALIDATORS:
        validate(REQUEST_VALIDATORS[action], payload)
    return await handler(conn, storable_payload(conn, payload), unique_id)


def storable_payload(conn: Connection, payload: dict) -> dict:
    """The payload as the domain may store and look it up: a frame holding text PostgreSQL
    refuses (NUL, lone surrogates) has it escaped once here, after validation, so no handler,
    card lookup or report store meets it. The log keeps the frame as sent (message_log)."""
    return payload if conn.received_clean else clean_texts(payload)


from .v16_security import HANDLERS as _SECURITY_HANDLERS  # noqa: E402

HANDLERS.update(_SECURITY_HANDLERS)

"""OCPP 1.6 handlers: map each charger CALL to domain services and build the reply payload.

Handlers hold no rules and no ORM: they translate OCPP field names, call a service through
the database pool (backoffice.db.run) and shape the answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from authorization.decisions import Context
from authorization.services import authorize
from backoffice import db
from chargers import services
from chargers.message_log import MeterSample, writer

from .protocol import SECURITY_ERROR, OcppError, format_datetime, parse_datetime

logger = logging.getLogger(__name__)


@dataclass
class Connection:
    """What a handler knows about the charger on this socket."""

    charger_id: int
    station_id: str
    connection_id: str
    registration_status: str
    events: list = field(default_factory=list)  # (connector_id, event dict) to publish live

    def publish(self, connector_id: int, **event) -> None:
        self.events.append((connector_id, event))


def _id_tag_info(decision) -> dict:
    return {"status": str(decision.status)}


async def boot_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    status, interval = await db.run(
        services.charger_boot, charger_id=conn.charger_id, payload=payload,
        default_interval=settings.OCPP_HEARTBEAT_INTERVAL,
    )
    conn.registration_status = status
    return {"status": status, "currentTime": format_datetime(timezone.now()), "interval": interval}


async def heartbeat(conn: Connection, payload: dict, unique_id: str) -> dict:
    writer.touch(conn.charger_id, heartbeat=True)
    return {"currentTime": format_datetime(timezone.now())}


async def status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    timestamp = parse_datetime(payload["timestamp"]) if payload.get("timestamp") else None
    await db.run(
        services.connector_status_update, charger_id=conn.charger_id, connector_id=payload["connectorId"],
        status=payload["status"], error_code=payload["errorCode"], info=payload.get("info", ""),
        vendor_error_code=payload.get("vendorErrorCode", ""), timestamp=timestamp,
    )
    conn.publish(payload["connectorId"], kind="status", status=payload["status"], error_code=payload["errorCode"])
    return {}


async def _decide(conn: Connection, id_tag: str, context: Context, connector_id, unique_id: str):
    facts, location_id = await db.run(services.charger_facts_by_id, conn.charger_id)
    return await authorize(
        uid=id_tag, charger=facts, context=context, location_id=location_id, connector_id=connector_id,
        ocpp_unique_id=unique_id, active_sessions_of=services.token_active_sessions,
    )


async def authorize_request(conn: Connection, payload: dict, unique_id: str) -> dict:
    decision = await _decide(conn, payload["idTag"], Context.LOCAL, None, unique_id)
    return {"idTagInfo": _id_tag_info(decision)}


async def start_transaction(conn: Connection, payload: dict, unique_id: str) -> dict:
    started_at = parse_datetime(payload["timestamp"])
    repeat = await db.run(
        services.session_find_repeat, charger_id=conn.charger_id, connector_id=payload["connectorId"],
        id_tag=payload["idTag"], meter_start=payload["meterStart"], started_at=started_at,
    )
    if repeat is not None:  # our earlier reply was lost: same transaction, same answer
        return {"transactionId": repeat.transaction_id, "idTagInfo": {"status": repeat.id_tag_status}}
    decision = await _decide(conn, payload["idTag"], Context.START_TRANSACTION, payload["connectorId"], unique_id)
    # Never refuse a transaction message (OCPP 1.6 §3.7): record it whatever the decision;
    # the charger stops a session whose idTagInfo is not Accepted.
    session = await db.run(
        services.session_start, charger_id=conn.charger_id, connector_id=payload["connectorId"],
        id_tag=payload["idTag"], meter_start=payload["meterStart"], started_at=started_at,
        reservation_id=payload.get("reservationId"), id_tag_status=str(decision.status),
    )
    conn.publish(payload["connectorId"], kind="started", transaction_id=session.transaction_id)
    return {"transactionId": session.transaction_id, "idTagInfo": {"status": session.id_tag_status}}


async def stop_transaction(conn: Connection, payload: dict, unique_id: str) -> dict:
    session = await db.run(
        services.session_stop, charger_id=conn.charger_id, transaction_id=payload["transactionId"],
        meter_stop=payload["meterStop"], stopped_at=parse_datetime(payload["timestamp"]),
        reason=payload.get("reason", ""), id_tag=payload.get("idTag", ""),
        transaction_data=payload.get("transactionData"), payload=payload,
    )
    if session is not None:
        conn.publish(session.connector_id, kind="stopped", transaction_id=session.transaction_id)
    if payload.get("idTag"):
        return {"idTagInfo": {"status": "Accepted"}}
    return {}


async def meter_values(conn: Connection, payload: dict, unique_id: str) -> dict:
    connector_id = payload["connectorId"]
    transaction_id = payload.get("transactionId")
    samples = []
    latest: dict[str, str] = {}
    for entry in payload["meterValue"]:
        when = parse_datetime(entry["timestamp"])
        for sample in entry["sampledValue"]:
            measurand = sample.get("measurand", "Energy.Active.Import.Register")
            samples.append(
                MeterSample(
                    conn.charger_id, connector_id, transaction_id, when, measurand,
                    sample.get("phase", ""), sample.get("unit", ""), sample.get("context", ""),
                    sample.get("location", ""), str(sample["value"]),
                )
            )
            if not sample.get("phase"):
                latest[measurand] = f"{sample['value']} {sample.get('unit', '')}".strip()
    writer.add_meter_samples(samples)
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
    handler = HANDLERS.get(action)
    if handler is None:
        raise OcppError("NotSupported", f"{action} is not supported by this central system")
    if conn.registration_status == "Rejected" and action not in ALLOWED_BEFORE_ACCEPTED:
        # OCPP-J 1.6 errata 3.10: SecurityError until the charger is accepted.
        raise OcppError(SECURITY_ERROR, "Charge point is not accepted by the central system")
    return await handler(conn, payload, unique_id)

from .v16_security import HANDLERS as _SECURITY_HANDLERS  # noqa: E402

HANDLERS.update(_SECURITY_HANDLERS)

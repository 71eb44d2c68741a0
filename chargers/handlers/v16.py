"""OCPP 1.6 handlers: map each charger CALL to domain services and build the reply payload.

Handlers hold no rules and no ORM: they translate OCPP field names, call a service through
the database pool (backoffice.db.run) and shape the answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from authorization.decisions import Context, Decision
from authorization.services import decide_live
from backoffice import db
from chargers.devices import energy_config
from chargers.handlers import common
from chargers.handlers.common import (
    Connection,
    Handler,
    decide,
    durably,
    storable_payload,
)
from chargers.messagelog.log import MeterSample, writer
from chargers.ocpp import quirks, tolerant
from chargers.ocpp.protocol import (
    PROPERTY_CONSTRAINT_VIOLATION,
    REQUEST_VALIDATORS,
    SECURITY_ERROR,
    OcppError,
    format_datetime,
    validate,
)
from chargers.ocpp.storable import clean_value
from chargers.plumbing import follow_ups
from chargers.sessions import closing, opening, services, starts
from chargers.sessions.signed import signed_values
from chargers.state import charger as connection_state
from chargers.state import quirks as quirks_state

if TYPE_CHECKING:
    from chargers.models import Charger, ChargingSession
    from chargers.state.charger import Booted

logger = logging.getLogger(__name__)


def _id_tag_info(decision: Decision) -> dict:
    return {"status": str(decision.status)}


# Messages answered from the journal while the database is unreachable (chargers.plumbing.journal).
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


async def boot_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    interval = settings.OCPP_HEARTBEAT_INTERVAL

    async def now() -> Booted:
        return await connection_state.boot(
            connection_state.Boot.from_payload(conn.charger_id, payload, interval)
        )

    result = await durably(conn, "BootNotification", payload, unique_id, now, interval=interval)
    await common.quirks_at_boot(conn, payload)
    if result is not None:
        conn.registration_status, interval = result.status, result.interval
        if (
            conn.registration_status == "Accepted"
            and result.energy_reporting_due
            and settings.OCPP_ENERGY_CONFIG_AFTER_BOOT
        ):
            # A follow-up at the fleet's pace, after this answer (journaled boots: checked after
            # the next); a reconnect that changes nothing was found not due with the boot itself.
            charger_id = conn.charger_id
            checked_for = connection_state.Boot.from_payload(charger_id, payload, 0).fingerprint
            follow_ups.submit(
                (charger_id, "energy-reporting"),
                lambda: _energy_reporting(charger_id, checked_for),
            )
    return {
        "status": conn.registration_status,
        "currentTime": format_datetime(timezone.now()),
        "interval": interval,
    }


ENERGY_CONFIG_DELAY_S = 0.2


async def _energy_reporting(charger_id: int, checked_for: str) -> None:
    """Check once per vendor/model/firmware (`checked_for`) that the charger samples the energy
    register in transactions (GetConfiguration of MeterValuesSampledData / StopTxnSampledData)
    and add it where missing (ChangeConfiguration, chargers.devices.energy_config). What it
    refuses, or keys it does not know, are logged and kept, and it is not asked again; a charger
    offline or silent is asked after its next boot."""
    from chargers.devices import commands

    await asyncio.sleep(ENERGY_CONFIG_DELAY_S)
    try:
        charger = await db.run(
            services.energy_reporting_16_due, charger_id=charger_id, checked_for=checked_for
        )
        if charger is None:
            return
        problems = await _energy_reporting_set(charger)
        await db.run(
            services.energy_reporting_16_checked,
            charger_id=charger_id,
            checked_for=checked_for,
            problems=problems,
        )
    except (commands.ChargerOffline, commands.CommandTimeout):
        return
    except Exception:
        logger.exception("Could not configure energy reporting of charger %s", charger_id)
        return
    if problems:
        logger.warning(
            "Charger %s cannot be set to report its energy register: %s",
            charger.station_id,
            "; ".join(problems),
        )


async def _energy_reporting_set(charger: Charger) -> list[str]:
    from chargers.devices import commands, rate_units
    from chargers.models import Command

    asked = await commands.send_command(  # with the units it takes in a profile
        charger,
        "GetConfiguration",
        {"key": [*energy_config.KEYS_16, rate_units.KEY_16]},
        source="csms",
    )
    if asked.status != Command.Status.ANSWERED:
        return [f"GetConfiguration answered a CALLERROR ({asked.error or 'no details'})"]
    response = asked.response if isinstance(asked.response, dict) else {}
    keys = response.get("configurationKey") or []
    keys = [entry for entry in keys if isinstance(entry, dict)] if isinstance(keys, list) else []
    changed: dict[str, str] = {}
    # The one resolver of a charger's deviations (docs/quirks.md; cached, no query).
    found = await quirks_state.quirks_for(charger.vendor, charger.model, charger.firmware_version)
    unset = found is not None and found.has(quirks.STOP_TXN_SAMPLED_DATA_UNSET)
    for change in energy_config.change_configuration_16(keys, stop_txn_unset=unset):
        command = await commands.send_command(charger, "ChangeConfiguration", change, source="csms")
        answered = command.status == Command.Status.ANSWERED
        changed[change["key"]] = command.result_status if answered else "a CALLERROR"
    return energy_config.problems_16(keys, changed, stop_txn_unset=unset)


async def heartbeat(conn: Connection, payload: dict, unique_id: str) -> dict:
    writer.touch(conn.charger_id, heartbeat=True, now=conn.received_at)
    return {"currentTime": format_datetime(timezone.now())}


async def status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    if not 0 <= payload["connectorId"] <= tolerant.INT32_MAX:  # the schema sets no bounds
        raise OcppError(
            PROPERTY_CONSTRAINT_VIOLATION,
            "connectorId must be 0 (the charger) or a connector number",
            {"field": "connectorId"},
        )
    timestamp = common.status_time(conn, payload, unique_id, "StatusNotification")

    async def now() -> bool:
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

    await durably(conn, "StatusNotification", payload, unique_id, now)
    conn.publish(
        payload["connectorId"],
        kind="status",
        status=payload["status"],
        error_code=payload["errorCode"],
    )
    return {}


async def authorize_request(conn: Connection, payload: dict, unique_id: str) -> dict:
    decision, _ = await decide(conn, payload["idTag"], Context.LOCAL, None, unique_id)
    return {"idTagInfo": _id_tag_info(decision)}


async def start_transaction(conn: Connection, payload: dict, unique_id: str) -> dict:
    received = conn.received_at or timezone.now()
    reading = tolerant.read_start(
        payload, REQUEST_VALIDATORS["StartTransaction"], received, conn.quirks
    )
    conn.violation = reading.violation
    common.deviations_met(conn, reading.deviations, "StartTransaction", payload, unique_id)
    started_at = reading.timestamp or received
    # The time as sent, not as used: a time replaced by the receive time (a wrong clock)
    # differs between a start and its resend, the sent text does not.
    sent_at = str(payload.get("timestamp"))[:40]
    facts = (conn.charger_id, reading.connector_id, reading.id_tag, reading.meter, sent_at)
    # Drawn before any write, so a start journaled after an ambiguous failure keeps its id.
    transaction_id = _journaled_starts.get(facts) or services.new_transaction_id()
    # read_start puts 0 in for an unusable meterStart.
    assert reading.meter is not None
    meter_start = reading.meter

    async def now() -> tuple[ChargingSession, bool]:
        # Two round trips: read everything the decision needs, then record the decision and
        # the session in one transaction (the MSP, if it must be asked, in between).
        prepared = await starts.start_prepare(
            charger_id=conn.charger_id,
            connector_id=reading.connector_id,
            id_tag=reading.id_tag,
            meter_start=meter_start,
            started_at=started_at,
            clock_wrong=reading.clock_wrong,
        )
        if prepared.repeat is not None:  # our earlier reply was lost: same transaction, same answer
            return prepared.repeat, False
        assert prepared.charger is not None  # start_prepare reads it whenever it is no repeat
        decision, record, _ = await decide_live(
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
        session = await opening.session_start(
            opening.OpenRequest(
                charger_id=conn.charger_id,
                connector_id=reading.connector_id,
                id_tag=reading.id_tag,
                meter_start=meter_start,
                started_at=started_at,
                transaction_id=transaction_id,
                id_tag_status=str(decision.status),
                reservation_id=reading.reservation_id,
                token=prepared.token[0] if prepared.token else None,
                decision_record=record,
            )
        )
        return session, True

    result = await durably(
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
    reading = tolerant.read_stop(
        payload, REQUEST_VALIDATORS["StopTransaction"], received, conn.quirks
    )
    conn.violation = reading.violation
    common.deviations_met(conn, reading.deviations, "StopTransaction", payload, unique_id)
    # read_stop puts 0 (no transaction of ours: an orphan stop) in for an unusable transactionId.
    assert reading.transaction_id is not None
    transaction_id = reading.transaction_id

    async def now() -> tuple[ChargingSession | None]:
        session = await closing.stop(
            closing.StopRequest(
                charger_id=conn.charger_id,
                transaction_id=transaction_id,
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

    result = await durably(conn, "StopTransaction", payload, unique_id, now)
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
    reading = tolerant.read_meter_values(
        payload, REQUEST_VALIDATORS["MeterValues"], received, conn.quirks
    )
    conn.violation = reading.violation
    common.deviations_met(conn, reading.deviations, "MeterValues", payload, unique_id)
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

    # Signed values (format SignedData) are kept whole, before the answer (chargers.models.SignedSample).
    signed = signed_values(payload.get("meterValue"))

    async def now() -> bool:
        # Answered only once the samples are committed (group commit, every few ms).
        await writer.store_meter_samples(samples, alongside=conn.log_alongside)
        if signed:
            await db.run(
                services.signed_samples_store,
                charger_id=conn.charger_id,
                connector_id=connector_id,
                transaction_id=transaction_id,
                values=signed,
                received=received,
            )
        return True

    await durably(conn, "MeterValues", payload, unique_id, now)
    if transaction_id is not None:
        conn.publish(connector_id, kind="meter", transaction_id=transaction_id, values=latest)
    return {}


async def data_transfer(conn: Connection, payload: dict, unique_id: str) -> dict:
    # No vendor extensions are implemented; 1.6 §4.3: answer UnknownVendorId.
    return {"status": "UnknownVendorId"}


async def diagnostics_status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    return {}


async def firmware_status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    from chargers.security import services as security_services

    # 1.6 §4.5: no requestId; the charger's latest firmware operation is meant (fleet/ follows it).
    await db.run(
        security_services.operation_status_record,
        charger_id=conn.charger_id,
        kind="firmware",
        request_id=None,
        status=payload["status"],
    )
    return {}


HANDLERS: dict[str, Handler] = {
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


from chargers.handlers.v16_security import HANDLERS as _SECURITY_HANDLERS  # noqa: E402

HANDLERS.update(_SECURITY_HANDLERS)

"""OCPP 2.0.1 handlers: map each Charging Station CALL to domain services and build the reply.

Same shape as chargers.handlers.v16 (a Connection and `handle_call`), same rules: handlers hold no
rules and no ORM, they translate OCPP 2.0.1 field names to the domain's words, call a service
through the database pool (backoffice.db.run) and shape the answer. Durability is the 1.6
path's: what is journaled during a database outage (chargers.plumbing.journal) is answered from the
journal and replayed later (chargers.handlers.common.durably); BootNotification, StatusNotification and MeterValues
are journaled in the domain's (1.6-shaped) words so the existing replay stores them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from authorization.decisions import Context
from backoffice import db
from chargers.devices import costs, variables
from chargers.handlers import common, v16_security, v201_pnc
from chargers.messagelog.log import MeterSample, writer
from chargers.ocpp.protocol import format_datetime, parse_datetime
from chargers.ocpp.protocol201 import (
    NOT_SUPPORTED,
    PROPERTY_CONSTRAINT_VIOLATION,
    REQUEST_VALIDATORS,
    SECURITY_ERROR,
    OcppError,
    id_token_status,
    validate,
)
from chargers.ocpp.tolerant import INT32_MAX
from chargers.plumbing import follow_ups
from chargers.plumbing.batching import Coalescer
from chargers.security import services as security_services
from chargers.sessions import transaction_events as sessions
from chargers.state import charger as connection_state

logger = logging.getLogger(__name__)

VERSION = "2.0.1"
Handler = Callable[["Connection", dict, str], Awaitable[dict]]

# GetBaseReport(FullInventory) after the first accepted boot of a charger whose device model we
# do not have yet (B07); the pause keeps our CALL behind the BootNotification answer on the wire.
BASE_REPORT_DELAY_S = 0.2
# CostUpdated (I02) to a charger that shows cost: at most once per this many seconds per
# transaction (settings.OCPP_COST_UPDATE_INTERVAL overrides it).
COST_UPDATE_INTERVAL_S = 60.0
# Transactions per socket kept in its seqNo and cost maps: a charger inventing ids must not grow
# them forever.
ASKED_MAX = 1_000


@dataclass
class Connection(common.Connection):
    """What a handler knows about the 2.0.1 charger on this socket."""

    ocpp_version: str = VERSION
    # Its transactions as sessions knows them: the one way their events are written.
    transactions: sessions.TransactionEvents = field(default_factory=sessions.TransactionEvents)
    # The numberOfPhasesUsed kept per transaction: written only when it changes.
    phases_used: dict[str, int] = field(default_factory=dict)
    # When a CostUpdated was last queued, per transaction (loop clock): at most one per interval.
    cost_sent: dict[str, float] = field(default_factory=dict)
    # Whether each transaction is priced and what the charger shows, read once (`_with_cost`).
    cost_plans: dict[str, costs.Plan] = field(default_factory=dict)
    # The highest seqNo seen per transaction on this socket: a jump over a number is a gap.
    seq_high: dict[str, int] = field(default_factory=dict)
    # The request schemas of the negotiated version: 2.0.1's, or 2.1's for a 2.1 charger served
    # through these handlers (chargers.handlers.v21).
    requests: Mapping[str, Any] = field(default_factory=lambda: REQUEST_VALIDATORS)


def _timestamp(value: Any, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    return default


# -- provisioning (B01-B03) ----------------------------------------------------------------------


async def boot_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    station = payload.get("chargingStation") or {}
    modem = station.get("modem") or {}
    # The domain's words for what the station says about itself (chargers.state.charger.charger_boot).
    facts = {
        "chargePointVendor": station.get("vendorName", ""),
        "chargePointModel": station.get("model", ""),
        "chargePointSerialNumber": station.get("serialNumber", ""),
        "firmwareVersion": station.get("firmwareVersion", ""),
        "iccid": modem.get("iccid", ""),
    }
    interval = settings.OCPP_HEARTBEAT_INTERVAL

    async def now() -> connection_state.Booted:
        return await connection_state.boot(
            connection_state.Boot.from_payload(conn.charger_id, facts, interval)
        )

    result = await common.durably(
        conn, "BootNotification", facts, unique_id, now, interval=interval
    )
    await common.quirks_at_boot(conn, facts)
    known = False  # journaled (database unreachable): not known, the follow-up asks later
    if result is not None:
        conn.registration_status, interval = result.status, result.interval
        known = result.device_model_known
    if (
        conn.registration_status == "Accepted"
        and not known
        and getattr(settings, "OCPP_BASE_REPORT_AFTER_BOOT", True)
    ):
        # After the answer, at the fleet's pace (chargers.plumbing.follow_ups).
        charger_id = conn.charger_id
        follow_ups.submit((charger_id, "base-report"), lambda: _base_report_if_unknown(charger_id))
    return {
        "currentTime": format_datetime(timezone.now()),
        "interval": interval,
        "status": conn.registration_status,
    }


async def _base_report_if_unknown(charger_id: int) -> None:
    from chargers.devices import commands
    from chargers.devices.remote import new_request_id
    from chargers.models import Charger

    await asyncio.sleep(BASE_REPORT_DELAY_S)
    try:
        if not await connection_state.needs_device_model(charger_id):
            return
        charger = await db.run(Charger.objects.get, pk=charger_id)
        await commands.send_command(
            charger,
            "GetBaseReport",
            {"requestId": new_request_id(), "reportBase": "FullInventory"},
            source="csms",
        )
    except (commands.ChargerOffline, commands.CommandTimeout):
        pass
    except Exception:
        logger.exception("Could not ask charger %s for its base report", charger_id)


async def heartbeat(conn: Connection, payload: dict, unique_id: str) -> dict:
    writer.touch(conn.charger_id, heartbeat=True, now=conn.received_at)
    return {"currentTime": format_datetime(timezone.now())}


async def status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    # An EVSE is what 1.6 and our portal call a connector (its plugs share one meter and one
    # transaction), so evseId is our connector id; 0 is the station as a whole.
    if not 0 <= payload["evseId"] <= INT32_MAX:  # the schema sets no bounds
        raise OcppError(
            PROPERTY_CONSTRAINT_VIOLATION,
            "evseId must be 0 (the station) or an EVSE number",
            {"field": "evseId"},
        )
    timestamp = common.status_time(conn, payload, unique_id, "StatusNotification") or (
        conn.received_at or timezone.now()
    )
    evse_id, status = payload["evseId"], payload["connectorStatus"]
    # Which plug of the EVSE, said only when it is not the first: an EVSE is shown as
    # "Connector 2", and "Connector 2 · Occupied · connector 1" read as two different ports.
    info = "" if payload["connectorId"] == 1 else f"plug {payload['connectorId']}"
    facts = {
        "connectorId": evse_id,
        "status": status,
        "errorCode": "NoError",
        "info": info,
        "timestamp": format_datetime(timestamp),
    }

    async def now() -> bool:
        await connection_state.status(
            connection_state.StatusChange(
                charger_id=conn.charger_id,
                connector_id=evse_id,
                status=status,
                error_code="NoError",
                info=info,
                timestamp=timestamp,
            )
        )
        return True

    await common.durably(conn, "StatusNotification", facts, unique_id, now)
    conn.publish(evse_id, kind="status", status=status, error_code="NoError")
    return {}


# -- authorization (C01) -------------------------------------------------------------------------


async def authorize_request(conn: Connection, payload: dict, unique_id: str) -> dict:
    if v201_pnc.is_contract(payload):  # C07: Plug & Charge
        return await v201_pnc.authorize_contract(conn, payload, unique_id)
    token = payload["idToken"]
    decision, card = await common.decide(
        conn,
        token["idToken"],
        Context.LOCAL,
        None,
        unique_id,
        contract=token.get("type") == "eMAID",
    )
    status = id_token_status(str(decision.status), decision.reason)
    info = await _id_token_info(
        conn, token["idToken"], status, card[1].parent_id_tag if card else ""
    )
    if status == "Accepted":
        info.update(await _tariff(conn))
    return {"idTokenInfo": info}


async def _tariff(conn: Connection) -> dict:
    """I01: the tariff text as the personalMessage, for a charger that shows tariffs."""
    try:
        message = await db.run(costs.tariff_message, charger_id=conn.charger_id)
    except Exception:  # the card's answer never fails for want of a tariff text
        logger.exception("No tariff text for charger %s", conn.charger_id)
        return {}
    return {"personalMessage": message} if message else {}


_LOOK_UP = None


async def _id_token_info(
    conn: Connection, id_token: str, status: str, group: str | None = _LOOK_UP
) -> dict:
    """idTokenInfo with the card's group (C09.FR.02: cards of one group share a groupIdToken, so
    one may stop what the other started). `group`: the card's, when the decision already read it."""
    info: dict = {"status": status}
    if group is _LOOK_UP:
        group = await db.run(sessions.token_group, charger_id=conn.charger_id, id_token=id_token)
    if group:
        info["groupIdToken"] = {"idToken": group, "type": "Central"}
    return info


# -- transactions (E01-E07, E14) -----------------------------------------------------------------


@dataclass
class _EventCard:
    """What the card of a TransactionEvent decided: the answer, and what the write keeps."""

    answer: str | None = None  # the idTokenInfo status to answer
    group: str | None = _LOOK_UP
    facts: sessions.CardFacts = field(default_factory=sessions.CardFacts)


async def _event_card(conn: Connection, event: sessions.TxEvent, unique_id: str) -> _EventCard:
    card = _EventCard()
    if not event.id_token:
        return card
    if event.event_type == "Ended":
        # The card's status now, for the charger's cache; no MSP is asked (as for a 1.6 stop).
        card.answer = await _stop_card_answer(conn, event, unique_id)
        return card
    decision, record, found = await common.decide_unrecorded(
        conn,
        event.id_token,
        Context.START_TRANSACTION,
        event.evse_id,
        unique_id,
        contract=event.id_token_type == "eMAID",
    )
    card.group = found[1].parent_id_tag if found else ""
    status = str(decision.status)
    card.facts = sessions.CardFacts(
        session_status=status,
        token_id=found[0].pk if found else None,
        token_known=True,
        record=record,
    )
    card.answer = id_token_status(status, decision.reason)
    return card


async def _appended_answer(
    conn: Connection,
    event: sessions.TxEvent,
    unique_id: str,
    appended: sessions.TransactionEventOutcome,
) -> tuple[sessions.TransactionEventOutcome, str | None, str | None]:
    if not event.id_token:
        return appended, None, None
    # An Ended by card: the card's status now, as the full path answers.
    return appended, await _stop_card_answer(conn, event, unique_id), _LOOK_UP


async def _stop_card_answer(conn: Connection, event: sessions.TxEvent, unique_id: str) -> str:
    """The idTokenInfo of the card that ended a transaction: its status now."""
    status = await db.run(
        sessions.token_status_for_stop,
        charger_id=conn.charger_id,
        id_tag=event.id_token,
        connector_id=event.evse_id,
        unique_id=unique_id,
    )
    return id_token_status(status)


def _journaled_answer(conn: Connection, our_id: int | None, event: sessions.TxEvent) -> dict:
    # Journaled: the card cannot be checked now; the charger already authorized it locally.
    conn.transactions.journaled(conn.charger_id, event, our_id)
    return {"idTokenInfo": {"status": "Accepted"}} if event.id_token else {}


def _publish_outcome(
    conn: Connection, event: sessions.TxEvent, outcome: sessions.TransactionEventOutcome
) -> None:
    session = outcome.session
    if outcome.started:
        conn.publish(session.connector_id, kind="started", transaction_id=session.transaction_id)
    if outcome.ended:
        conn.publish(session.connector_id, kind="stopped", transaction_id=session.transaction_id)
    latest = {
        s.measurand: f"{s.value} {s.unit}".strip()
        for r in event.meter_values
        for s in r.samples
        if not s.phase
    }
    if latest and not outcome.ended:
        conn.publish(
            session.connector_id, kind="meter", transaction_id=session.transaction_id, values=latest
        )


async def transaction_event(conn: Connection, payload: dict, unique_id: str) -> dict:
    received = conn.received_at or timezone.now()
    # Refuses only a missing transactionId.
    event = sessions.read_event(payload, received, conn.requests, conn.quirks)
    conn.violation = event.violation
    our_id = conn.transactions.our_id(conn.charger_id, event)
    write = sessions.EventWrite(
        charger_id=conn.charger_id,
        event=event,
        payload=payload,
        received_at=received,
        clean=conn.received_clean,
        quirks=conn.quirks,
    )
    card = _EventCard()

    async def decide() -> sessions.CardFacts:
        nonlocal card
        card = await _event_card(conn, event, unique_id)
        return card.facts

    async def now() -> tuple[sessions.TransactionEventOutcome, str | None, str | None]:
        recorded = await conn.transactions.record(write, our_id, decide)
        if recorded.payload_json is not None:  # the log row reuses it (consumers: conn.dumped)
            conn.dumped = (payload, recorded.payload_json)
        if recorded.appended:
            return await _appended_answer(conn, event, unique_id, recorded.outcome)
        return recorded.outcome, card.answer, card.group

    result = await common.durably(
        conn,
        "TransactionEvent",
        payload,
        unique_id,
        now,
        protocol=VERSION,
        transaction_id=our_id,
    )
    # After the write: a late event (numbered after the Ended) is found there.
    common.deviations_met(conn, event.deviations, "TransactionEvent", payload, unique_id)
    if result is None:
        return _journaled_answer(conn, our_id, event)
    outcome, answer, group = result
    _publish_outcome(conn, event, outcome)
    if event.phases_used and conn.phases_used.get(event.transaction_id) != event.phases_used:
        # The numberPhases of its power limits (docs/power.md, "Units").
        await db.run(
            sessions.session_phases_record,
            session_id=outcome.session.pk,
            phases=event.phases_used,
        )
        conn.phases_used[event.transaction_id] = event.phases_used
    _note_seq_no(conn, event, outcome.session.pk)
    answered = (
        {"idTokenInfo": await _id_token_info(conn, event.id_token, answer, group)} if answer else {}
    )
    if answer == "Accepted" and event.event_type != "Ended" and not outcome.session.stopped_at:
        answered["idTokenInfo"].update(await _session_tariff(conn, outcome.session.pk))
    return await _with_cost(conn, event, outcome, answered)


async def _session_tariff(conn: Connection, session_id: int) -> dict:
    """I01 at the event that authorizes the driver (a Started or an Authorized Updated, whether
    or not an Authorize came first): the tariff the session is billed with as personalMessage,
    for a charger that shows tariffs. The price version is fixed at the start, so there is never
    an updated tariff to send later (I06.FR.01/02; docs/ocpp.md)."""
    try:
        message = await db.run(
            costs.session_tariff_message, charger_id=conn.charger_id, session_id=session_id
        )
    except Exception:  # the event is stored: its answer never fails for want of a tariff text
        logger.exception("No tariff text for session %s", session_id)
        return {}
    return {"personalMessage": message} if message else {}


def _note_seq_no(conn: Connection, event: sessions.TxEvent, session_id: int) -> None:
    """seqNo numbers a transaction's events one by one: a jump over a number means events are
    missing (queued or lost), so the charger is asked at once, after this answer, with
    GetTransactionStatus (E14; chargers.devices.stale: a session it says ended whose Ended is
    lost is closed). Only the jumps this socket sees: after a reconnect it starts afresh."""
    if event.seq_no is None:
        return
    high = conn.seq_high.get(event.transaction_id)
    if high is not None and event.seq_no <= high:
        return  # a resend, or a queued event filling a gap
    if len(conn.seq_high) >= ASKED_MAX:  # a charger inventing ids must not grow it forever
        conn.seq_high.clear()
    conn.seq_high[event.transaction_id] = event.seq_no
    if high is None or event.seq_no == high + 1:
        return
    from chargers.devices import stale

    charger_id, transaction_id = conn.charger_id, event.transaction_id
    follow_ups.submit(
        (charger_id, "seq-gap", transaction_id),
        lambda: stale.gap_check(charger_id, session_id, transaction_id),
    )


# A fleet's transactions reach their first Updated together: their plans are read in batches.
_cost_plans: Coalescer[tuple[int, int], costs.Plan] = Coalescer("tx-cost-plan", costs.plans_of)


async def _with_cost(
    conn: Connection,
    event: sessions.TxEvent,
    outcome: sessions.TransactionEventOutcome,
    answer: dict,
) -> dict:
    """The running total in an Updated's answer (I02), the final one in an Ended's (I03), both
    tax included, from billing's pricing (chargers.devices.costs); and, to a charger that shows
    cost, a CostUpdated at most every COST_UPDATE_INTERVAL_S (docs/ocpp.md, "Cost")."""
    if event.event_type not in ("Updated", "Ended"):
        return answer
    if event.event_type == "Updated" and not outcome.ended and outcome.session.stopped_at:
        return answer  # queued and late, after the Ended: that answer carried the final cost
    ended = event.event_type == "Ended" or outcome.ended
    try:
        plan = conn.cost_plans.get(event.transaction_id)
        if plan is None:  # once per transaction and socket: an unpriced one costs no more
            plan = await _cost_plans.submit((conn.charger_id, outcome.session.pk))
            if len(conn.cost_plans) >= ASKED_MAX:
                conn.cost_plans.clear()
            conn.cost_plans[event.transaction_id] = plan
        if ended:
            conn.cost_plans.pop(event.transaction_id, None)
            conn.cost_sent.pop(event.transaction_id, None)
        # Not for a charger whose device model says it shows no cost (nobody would see it; I02
        # and I03 presuppose a charger that shows cost); unreported counts as showing it.
        if not plan.priced or plan.display.cost is False:
            return answer
        total = await db.run(costs.total_cost, session_id=outcome.session.pk, display=plan.display)
    except Exception:  # the event is stored: its answer never fails for want of a price
        logger.exception(
            "No cost for transaction %s of charger %s", event.transaction_id, conn.charger_id
        )
        return answer
    if total is not None:
        answer["totalCost"] = float(total)
        if not ended and plan.display.cost is True:
            _cost_update_due(conn, event.transaction_id, outcome.session.pk)
    return answer


def _cost_update_due(conn: Connection, transaction_id: str, session_id: int) -> None:
    interval = float(getattr(settings, "OCPP_COST_UPDATE_INTERVAL", COST_UPDATE_INTERVAL_S))
    now = asyncio.get_running_loop().time()
    last = conn.cost_sent.get(transaction_id)
    if last is not None and now - last < interval:
        return
    if len(conn.cost_sent) >= ASKED_MAX:  # a charger inventing ids must not grow it forever
        conn.cost_sent.clear()
    conn.cost_sent[transaction_id] = now
    charger_id = conn.charger_id
    # Off the frame path, bounded across the fleet; a newer one replaces one still queued.
    follow_ups.submit(
        (charger_id, "cost", transaction_id),
        lambda: costs.cost_update(charger_id, session_id, transaction_id),
    )


async def meter_values(conn: Connection, payload: dict, unique_id: str) -> dict:
    received = conn.received_at or timezone.now()
    try:
        validate(conn.requests["MeterValues"], payload)
    except OcppError as exc:
        conn.violation = exc.description  # read leniently, as the 1.6 MeterValues
    evse_id = payload.get("evseId")
    if isinstance(evse_id, bool) or not isinstance(evse_id, int) or evse_id < 0:
        raise OcppError("OccurrenceConstraintViolation", "MeterValues needs an evseId")
    met: list[tuple[str, str]] = []
    readings = sessions.read_meter_values(payload.get("meterValue"), received, conn.quirks, met)
    common.deviations_met(conn, met, "MeterValues", payload, unique_id)
    samples = [
        MeterSample(
            conn.charger_id,
            evse_id,
            None,
            reading.timestamp,
            s.measurand,
            s.phase,
            s.unit,
            s.context,
            s.location,
            s.value,
        )
        for reading in readings
        for s in reading.samples
    ]
    # Journaled in the 1.6 shape the replay reads (chargers.ocpp.tolerant.read_meter_values).
    facts = {
        "connectorId": evse_id,
        "meterValue": [
            {
                "timestamp": format_datetime(r.timestamp),
                "sampledValue": [
                    {
                        k: v
                        for k, v in (
                            ("value", s.value),
                            ("measurand", s.measurand),
                            ("phase", s.phase),
                            ("unit", s.unit),
                            ("context", s.context),
                            ("location", s.location),
                        )
                        if v
                    }
                    for s in r.samples
                ],
            }
            for r in readings
        ],
    }

    # Signed values (signedMeterValue) are kept whole for the session open on the EVSE
    # (chargers.models.SignedSample); only a message that carries one costs a query. Journaled
    # whole too (the replay attributes them the same way: chargers.sessions.replay).
    signed = sessions.signed_values(payload.get("meterValue"))
    if signed:
        facts[sessions.SIGNED_201] = [
            {
                "timestamp": v.timestamp,
                "sampledValue": [
                    {"context": v.context, "measurand": v.measurand, "signedMeterValue": v.value}
                ],
            }
            for v in signed
        ]

    async def now() -> bool:
        await writer.store_meter_samples(samples, alongside=conn.log_alongside)
        if signed:
            await db.run(
                sessions.signed_samples_store,
                charger_id=conn.charger_id,
                connector_id=evse_id,
                transaction_id=None,
                values=signed,
                received=received,
                open_session=True,
            )
        return True

    await common.durably(conn, "MeterValues", facts, unique_id, now)
    return {}


# -- device model, events, security, firmware, logs ----------------------------------------------


async def notify_report(conn: Connection, payload: dict, unique_id: str) -> dict:
    await db.run(
        variables.device_report_store,
        charger_id=conn.charger_id,
        report_data=payload.get("reportData") or [],
        generated_at=_timestamp(payload.get("generatedAt"), timezone.now()),
    )
    if not payload.get("tbc"):  # the report's last part: the device model is complete
        charger_id = conn.charger_id
        follow_ups.submit((charger_id, "energy-reporting"), lambda: _energy_reporting(charger_id))
    return {}


async def _energy_reporting(charger_id: int) -> None:
    """Set the charger to include the energy register in its transaction measurands when its
    device model shows it does not (chargers.devices.energy_config); the answer is stored in the device
    model (commands._device_model_update), so an accepted change is not sent again."""
    from chargers.devices import commands
    from chargers.models import Charger

    try:
        data = await db.run(variables.energy_reporting_changes, charger_id=charger_id)
        if not data:
            return
        charger = await db.run(Charger.objects.get, pk=charger_id)
        await commands.send_command(
            charger, "SetVariables", {"setVariableData": data}, source="csms"
        )
    except (commands.ChargerOffline, commands.CommandTimeout):
        pass
    except Exception:
        logger.exception("Could not configure energy reporting of charger %s", charger_id)


async def notify_event(conn: Connection, payload: dict, unique_id: str) -> dict:
    await db.run(
        variables.charger_events_store,
        charger_id=conn.charger_id,
        event_data=payload["eventData"],
    )
    return {}


async def firmware_status_notification(conn: Connection, payload: dict, unique_id: str) -> dict:
    await db.run(
        security_services.operation_status_record,
        charger_id=conn.charger_id,
        kind="firmware",
        request_id=payload.get("requestId"),
        status=payload["status"],
    )
    return {}


# -- reservations (H01-H04) -----------------------------------------------------------------------


async def reservation_status_update(conn: Connection, payload: dict, unique_id: str) -> dict:
    # H01.FR.16/17, H04: the charger ended a reservation (expired, or its EVSE became unusable).
    await db.run(
        sessions.reservation_status_update,
        charger_id=conn.charger_id,
        reservation_id=payload["reservationId"],
        update=payload["reservationUpdateStatus"],
    )
    return {}


# -- smart charging (K09-K17) and monitoring (N02) -------------------------------------------------


async def _store_notice(conn: Connection, action: str, payload: dict) -> None:
    from chargers.devices import smart_charging

    await db.run(
        smart_charging.notice_store, charger_id=conn.charger_id, action=action, payload=payload
    )


def notice(action: str) -> Handler:
    """A handler that stores the notification as received (ChargerNotice, in the notices API and
    the admin; limits also on the charger's Smart charging tab) and acknowledges it:
    NotifyChargingLimit (K12), ClearedChargingLimit (K13), NotifyCustomerInformation (N09),
    NotifyDisplayMessages (O04), PublishFirmwareStatusNotification (L03)."""

    async def handle(conn: Connection, payload: dict, unique_id: str) -> dict:
        await _store_notice(conn, action, payload)
        return {}

    return handle


async def report_charging_profiles(conn: Connection, payload: dict, unique_id: str) -> dict:
    from chargers.devices import smart_charging

    await db.run(smart_charging.profiles_report_store, charger_id=conn.charger_id, payload=payload)
    return {}


async def notify_monitoring_report(conn: Connection, payload: dict, unique_id: str) -> dict:
    from chargers.devices import monitoring

    await db.run(monitoring.monitoring_report_store, charger_id=conn.charger_id, payload=payload)
    await _store_notice(conn, "NotifyMonitoringReport", payload)
    return {}


async def data_transfer(conn: Connection, payload: dict, unique_id: str) -> dict:
    # No vendor extensions are implemented (P01/P02): UnknownVendorId.
    return {"status": "UnknownVendorId"}


HANDLERS: dict[str, Handler] = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize_request,
    "TransactionEvent": transaction_event,
    "MeterValues": meter_values,
    "NotifyReport": notify_report,
    "NotifyEvent": notify_event,
    "SecurityEventNotification": v16_security.security_event_notification,
    "FirmwareStatusNotification": firmware_status_notification,
    "LogStatusNotification": v16_security.log_status_notification,
    "DataTransfer": data_transfer,
    "ReservationStatusUpdate": reservation_status_update,
    "NotifyChargingLimit": notice("NotifyChargingLimit"),
    "ClearedChargingLimit": notice("ClearedChargingLimit"),
    "ReportChargingProfiles": report_charging_profiles,
    "NotifyMonitoringReport": notify_monitoring_report,
    # N09/N10: the customer data a CustomerInformation(report=true) asked for; O04: the display
    # messages a GetDisplayMessages asked for; L03: a local controller's firmware publication.
    "NotifyCustomerInformation": notice("NotifyCustomerInformation"),
    "NotifyDisplayMessages": notice("NotifyDisplayMessages"),
    "PublishFirmwareStatusNotification": notice("PublishFirmwareStatusNotification"),
    # ISO 15118 (chargers.handlers.v201_pnc): SignCertificate (both types), GetCertificateStatus,
    # Get15118EVCertificate, NotifyEVChargingNeeds, NotifyEVChargingSchedule.
    **v201_pnc.HANDLERS,
}

# Read leniently (a schema violation is recorded, not refused): billing data.
LENIENT = {"TransactionEvent", "MeterValues"}
# B03.FR.07: a Rejected station gets SecurityError for anything but BootNotification; we still
# take transaction events (never lose billing data, as in 1.6). B02.FR.09: a Pending one may also
# send what GetBaseReport/GetReport asks for (NotifyReport) and what a TriggerMessage it accepted
# asked for (within chargers.sessions.transactions.TRIGGER_VALID_S).
ALLOWED_WHEN_REJECTED = {"BootNotification", "TransactionEvent"}
ALLOWED_WHEN_PENDING = ALLOWED_WHEN_REJECTED | {"NotifyReport"}


async def handle_call(conn: Connection, action: str, payload: dict, unique_id: str) -> dict:
    """Answer one CALL (the consumer has checked the action is one a Charging Station sends)."""
    handler = HANDLERS.get(action)
    if handler is None:
        raise OcppError(NOT_SUPPORTED, f"{action} is not supported by this CSMS")
    status = conn.registration_status
    if (status == "Rejected" and action not in ALLOWED_WHEN_REJECTED) or (
        status == "Pending"
        and action not in ALLOWED_WHEN_PENDING
        and not await db.run(
            sessions.trigger_accepted_recently, charger_id=conn.charger_id, message=action
        )
    ):
        raise OcppError(SECURITY_ERROR, f"The Charging Station is {status} by the CSMS")
    conn.violation = ""
    if action not in LENIENT:
        validate(conn.requests[action], payload)
    return await handler(conn, common.storable_payload(conn, payload), unique_id)

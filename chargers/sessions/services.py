"""Session services the writes share: a charger's decision facts, the announcements of started
and finished sessions, meter value rows, transaction ids, the decisions recorded with a stop or a
replayed start. Synchronous ORM code. The writes themselves: chargers.sessions.opening,
chargers.sessions.closing, chargers.sessions.transactions (rules: chargers.sessions.rules)."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from authorization.decisions import ChargerFacts, Context
from authorization.models import Token
from chargers.messagelog import meter_values
from chargers.models import Charger, ChargingSession, SignedSample
from chargers.ocpp.tolerant import MeterReading
from chargers.sessions import rules
from chargers.sessions.signed import SignedValue
from chargers.signals import (
    flush_batched,
    session_finished,
    session_started,
    session_without_energy_reading,
    signed_values_received,
)

logger = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1


def charger_facts(charger: Charger, group_ids: frozenset[int] | None = None) -> ChargerFacts:
    """The charger's decision facts; `group_ids` (its token groups and its property's restricted
    ones) when the caller has read them already (chargers.sessions.starts)."""
    place = charger.property if charger.property_id else None
    if group_ids is None:
        # One statement for both lists (StartTransaction and Authorize read this on every call).
        groups = charger.token_groups.order_by().values_list("pk", flat=True)
        if place is not None:
            groups = groups.union(
                place.restricted_token_groups.order_by().values_list("pk", flat=True)
            )
        group_ids = frozenset(groups)
    return ChargerFacts(
        station_id=charger.station_id,
        organization_id=place.organization_id if place is not None else None,
        license_valid_until=charger.license_valid_until,
        access_mode=charger.access_mode,
        roaming_enabled=charger.effective_roaming_enabled,
        guest_charging_enabled=charger.effective_guest_charging_enabled,
        restricted_group_ids=frozenset(group_ids),
        property_id=charger.property_id,
        unit_id=charger.unit_id,
        timezone=place.timezone if place is not None else "UTC",
    )


def charger_facts_by_id(
    charger_id: int, connector_id: int | None = None
) -> tuple[ChargerFacts, str]:
    """Return the charger's facts for a decision about `connector_id` (None: the charger as a
    whole) and its location id (for OCPI)."""
    from dataclasses import replace

    from chargers.sessions.reservations import reserved_for

    charger = Charger.objects.select_related("property").get(pk=charger_id)
    facts = replace(charger_facts(charger), reserved=reserved_for(charger_id, connector_id))
    return facts, str(charger.property_id or "")


def token_active_sessions(token: Token) -> int:
    return ChargingSession.objects.filter(token=token, status=ChargingSession.Status.ACTIVE).count()


def session_announce_on_commit(event: str, session_id: int) -> None:
    """Once committed, announce that a session "started" or "finished" (chargers.signals), in
    this process: receivers rely on it (the guest's page turns to "Charging" inline) and queue
    their own slow work."""

    def announce() -> None:
        signal = session_started if event == "started" else session_finished
        signal.send(sender=ChargingSession, session_id=session_id)

    transaction.on_commit(announce)


def session_flag_no_reading_on_commit(session: ChargingSession) -> None:
    """Once committed, say that a finished session had no energy reading (its energy is
    unknown, priced by time only), so support can look at the charger's metering."""
    if session.meter_stop_wh is not None:
        return
    session_id = session.pk

    def announce() -> None:
        try:
            session_without_energy_reading.send(sender=ChargingSession, session_id=session_id)
        except Exception:  # the session is stored; a flag that failed is logged
            logger.exception("Flagging session %s without an energy reading failed", session_id)

    transaction.on_commit(announce)


def sessions_announce(event: str, session_ids: list[int]) -> None:
    """Announce sessions whose start or stop is committed ("started" / "finished"), for a batch
    (chargers.sessions.opening, chargers.sessions.closing, chargers.sessions.transactions). A
    receiver that fails is logged: the sessions are stored, and their chargers still get their
    answers."""
    signal = session_started if event == "started" else session_finished
    batch: dict[str, object] = {}  # chargers.signals.asked_once: one answer for all of them
    for session_id in session_ids:
        try:
            signal.send(sender=ChargingSession, session_id=session_id, batch=batch)
        except Exception:
            logger.exception("Announcing that session %s %s failed", session_id, event)
    flush_batched(batch)  # what receivers gathered for the whole batch (chargers.signals.batched)


def session_find_repeat(
    *,
    charger_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: Decimal,
    started_at: datetime,
    clock_wrong: bool = False,
) -> ChargingSession | None:
    """Return the session of an earlier identical StartTransaction (its reply was lost).
    `clock_wrong`: its time was replaced by its receive time (rules.CLOCK_WRONG_REPEAT_WINDOW)."""
    same_time = Q(started_at=started_at)
    if clock_wrong:
        same_time |= Q(
            status=ChargingSession.Status.ACTIVE,
            started_at__gt=started_at - rules.CLOCK_WRONG_REPEAT_WINDOW,
            started_at__lte=started_at,
        )
    return (
        ChargingSession.objects.filter(
            same_time,
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start_wh=meter_start,
        )
        .order_by("-started_at")
        .first()
    )


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
    *,
    charger_id: int,
    connector_id: int,
    id_tag: str,
    meter_start: Decimal,
    started_at: datetime,
    clock_wrong: bool = False,
) -> StartFacts:
    repeat = session_find_repeat(
        charger_id=charger_id,
        connector_id=connector_id,
        id_tag=id_tag,
        meter_start=meter_start,
        started_at=started_at,
        clock_wrong=clock_wrong,
    )
    if repeat is not None:
        return StartFacts(repeat)
    return StartFacts(
        None, *decision_inputs(charger_id=charger_id, connector_id=connector_id, id_tag=id_tag)
    )


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
    return meter_values.store_orm(
        meter_values.rows_of(charger_id, connector_id, session_id, readings)
    )


@transaction.atomic
def signed_samples_store(
    *,
    charger_id: int,
    connector_id: int,
    transaction_id: int | None,
    values: list[SignedValue],
    received: datetime,
    open_session: bool = False,
) -> int:
    """Keep the signed values of a MeterValues whole (chargers.models.SignedSample) and, after
    the commit, tell metering (chargers.signals.signed_values_received). A 2.0.1 MeterValues
    names no transaction (`open_session`): its values go to the session open on the EVSE at
    their time, if any (then metering reads them with the session's TransactionEvents)."""
    from chargers.ocpp.protocol import parse_datetime
    from chargers.ocpp.storable import clean_text

    rows = []
    for value in values:
        try:
            when = parse_datetime(value.timestamp) if value.timestamp else received
        except (ValueError, OverflowError):
            when = received
        rows.append(
            SignedSample(
                charger_id=charger_id,
                connector_id=connector_id,
                transaction_id=transaction_id,
                timestamp=when,
                context=clean_text(value.context)[:20],
                measurand=clean_text(value.measurand)[:50],
                value=clean_text(
                    value.value
                    if isinstance(value.value, str)
                    else json.dumps(value.value, separators=(",", ":"))
                ),
                received_at=received,
            )
        )
    if rows and transaction_id is None and open_session:
        transaction_id = _open_transaction(charger_id, connector_id, rows[0].timestamp)
        for row in rows:
            row.transaction_id = transaction_id
    SignedSample.objects.bulk_create(rows)
    if rows and transaction_id is not None:
        transaction.on_commit(lambda: _signed_announce(charger_id, transaction_id))
    return len(rows)


def _open_transaction(charger_id: int, connector_id: int, at: datetime) -> int | None:
    """The transaction_id of the session open on this connector at `at` (the latest started)."""
    return (
        ChargingSession.objects.filter(
            charger_id=charger_id, connector_id=connector_id, started_at__lte=at
        )
        .filter(Q(stopped_at__isnull=True) | Q(stopped_at__gte=at))
        .order_by("-started_at", "-pk")
        .values_list("transaction_id", flat=True)
        .first()
    )


def _signed_announce(charger_id: int, transaction_id: int) -> None:
    try:
        signed_values_received.send(
            sender=SignedSample, charger_id=charger_id, transaction_id=transaction_id
        )
    except Exception:  # stored: metering reads them again when the session finishes
        logger.exception("Announcing signed values of transaction %s failed", transaction_id)


def session_signed_energy_record(*, session_id: int, energy_wh: Decimal | None) -> None:
    """Keep the session's verified signed energy (metering decides it; None: it does not verify),
    so `ChargingSession.energy_wh` shows it on every surface."""
    ChargingSession.objects.filter(pk=session_id).update(signed_energy_wh=energy_wh)


def session_for_transaction(*, charger_id: int, transaction_id: int) -> ChargingSession | None:
    return ChargingSession.objects.filter(
        charger_id=charger_id, transaction_id=transaction_id
    ).first()


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


def energy_reporting_16_due(*, charger_id: int, checked_for: str) -> Charger | None:
    """The 1.6 charger if its energy reporting is still to be checked for `checked_for` (its
    vendor|model|firmware): never checked or checked for another, and its organization has not
    turned the setting off. A proxied charger is left to its Leader backoffice, which may manage
    its configuration. Asked again when the follow-up runs: the queue may hold it a while."""
    return (
        Charger.objects.filter(pk=charger_id, proxied=False)
        .exclude(property__organization__configure_energy_reporting=False)
        .exclude(
            energy_reporting_checked_at__isnull=False, energy_reporting_checked_for=checked_for
        )
        .first()
    )


def energy_reporting_16_checked(*, charger_id: int, checked_for: str, problems: list[str]) -> None:
    Charger.objects.filter(pk=charger_id).update(
        energy_reporting_checked_at=timezone.now(),
        energy_reporting_checked_for=checked_for,
        energy_reporting_problems="; ".join(problems),
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
    from chargers.plumbing.journal import is_outage

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

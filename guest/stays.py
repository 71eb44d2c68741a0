"""A guest starts charging with their reservation's access code (stays, docs/pms.md).

When the property includes charging in the stay there is no payment step: the code is checked by
the authorization engine (the reservation's unit, its dates, the kWh cap), a guest token tied to
the reservation is issued and the charger is started remotely. The decision, accepted or not,
is recorded with the reservation behind it.
"""

from __future__ import annotations

import logging
import secrets
import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from authorization.decisions import Context, Decision, decide
from authorization.models import Token
from authorization.services import decision_record, stay_facts_of, token_facts
from chargers.devices.commands import (
    ChargerOffline,
    CommandTimeout,
    InvalidCommand,
    send_command_sync,
)
from chargers.models import Charger, ChargingSession, Command
from chargers.plumbing.live import connector_watch
from chargers.sessions.reservations import reserved_for
from chargers.sessions.services import charger_facts
from stays.models import Reservation
from stays.selectors import reservation_access, reservation_by_code

from .models import GuestSession
from .prompts import PROMPTS, PromptCode, landing_prompt
from .selectors import (
    connector_busy_with_guest,
    connector_statuses,
    port_rows,
    ports_held_for_guests,
    running_kwh,
    station_facts,
)
from .starts import fail_and_release, ports_locked, start_check, start_timeout_s

logger = logging.getLogger(__name__)


@dataclass
class StayRefused(Exception):
    """The code cannot start this charger now; `message` is for the guest, `reason` for the record."""

    reason: str
    message: str
    billed: bool = False  # the code is fine but the stay does not include charging: pay instead


def _local(value: datetime, tz_name: str) -> str:
    try:
        zone = zoneinfo.ZoneInfo(tz_name)
    except Exception:
        zone = zoneinfo.ZoneInfo("UTC")
    return timezone.localtime(value, zone).strftime("%a %d %b %H:%M")


def refusal_message(decision: Decision, reservation: Reservation, charger: Charger) -> str:
    """Return what the guest reads when their code is refused at this charger."""
    access = reservation_access(reservation)
    tz = reservation.property.timezone
    if decision.reason == "reservation_not_active":
        if reservation.status != Reservation.Status.CONFIRMED:
            return "This reservation is not confirmed (it may have been cancelled), so its code cannot start charging."
        return (
            f"Your reservation allows charging from {_local(access.valid_from, tz)} to "
            f"{_local(access.valid_until, tz)} ({tz}). Please come back then."
        )
    if decision.reason == "reservation_other_unit":
        own = (
            list(
                Charger.objects.filter(
                    property_id=reservation.property_id, unit_id=reservation.unit_id
                )
                .exclude(unit__isnull=True)
                .values_list("station_id", flat=True)[:5]
            )
            if reservation.unit_id
            else []
        )
        where = f" for {reservation.unit.name}" if reservation.unit else ""
        hint = f" Your charger: {', '.join(own)}." if own else ""
        return f"This code is{where} and does not start this charger.{hint}"
    if decision.reason == "reservation_cap_reached":
        return "The energy included in your stay is used up. Please contact your host."
    if decision.reason == "connector_reserved":
        return "This port is reserved for another driver right now. Please use another port or come back later."
    if decision.reason == "license_inactive":
        return "This charger cannot start sessions right now. Please contact your host."
    return decision.message


def reservation_kwh_used(reservation: Reservation) -> float:
    """Return the kWh the reservation's finished sessions took (anywhere at its property)."""
    total = ChargingSession.objects.filter(
        token__reservation=reservation, meter_stop_wh__isnull=False, meter_start_wh__isnull=False
    ).aggregate(wh=Sum(ChargingSession.energy_sql()))["wh"]
    return float(max(Decimal(total or 0), Decimal(0)) / 1000)


def stay_start(
    *,
    charger: Charger,
    code: str,
    connector_id: int | None,
    site_url: str = "",
    now: datetime | None = None,
) -> GuestSession:
    """Start charging for the guest of the reservation with access code `code` (charging included).

    Raises StayRefused when the code is unknown, refused here or now, or when the stay does not
    include charging (billed=True: the guest pays on the normal page).
    """
    now = now or timezone.now()
    organization_id = charger.property.organization_id if charger.property is not None else None
    reservation = reservation_by_code(code, organization_id=organization_id)
    if reservation is None:
        raise StayRefused(
            "unknown_code", "This access code is not known here. Check it in your booking message."
        )
    connectors = connector_statuses(charger)
    prompt = landing_prompt(station_facts(charger, connectors), today=charger.license_today())
    # A unit's charger is usually private (no cards, no paying guests): the reservation is its
    # access rule, so only a charger that cannot work stops here; the license is the decision's.
    if prompt in (PromptCode.INVALID, PromptCode.OUT_OF_ORDER):
        raise StayRefused(prompt.value, PROMPTS[prompt].title)

    # The port is chosen before the decision: a connector held by ReserveNow for another card
    # refuses the code (connector_reserved) instead of a remote start the charger would reject.
    held = ports_held_for_guests(charger.pk)
    startable = [row["id"] for row in port_rows(connectors, held) if row["startable"]]
    port = connector_id if connector_id in startable else None
    if port is None:
        free = [cid for cid in startable if reserved_for(charger.pk, cid) is None]
        port = free[0] if free else (startable[0] if startable else None)

    uid = "S" + secrets.token_hex(9).upper()  # 19 characters: within OCPP 1.6's 20
    access = reservation_access(reservation)
    token = Token.objects.create(
        uid=uid,
        type=Token.Type.GUEST,
        organization_id=organization_id,
        reservation=reservation,
        allowed_station_ids=[charger.station_id],
        single_session=True,
        expires_at=access.valid_until,
        label=f"Stay access code ({reservation})"[:200],
    )
    facts = replace(
        token_facts(token),
        stay=stay_facts_of(reservation, kwh_used=reservation_kwh_used(reservation)),
    )
    here = replace(
        charger_facts(charger), reserved=reserved_for(charger.pk, port) if port else None
    )
    decision = decide(facts, here, Context.REMOTE_APP, now=now)
    decision_record(
        decision=decision,
        uid=uid,
        token_id=token.pk,
        organization_id=organization_id,
        station_id=charger.station_id,
        connector_id=port or connector_id,
        context=Context.REMOTE_APP,
    )
    if not decision.accepted:
        Token.objects.filter(pk=token.pk).update(valid=False)
        raise StayRefused(decision.reason, refusal_message(decision, reservation, charger))
    if not access.charging_included:
        Token.objects.filter(pk=token.pk).update(valid=False)
        raise StayRefused(
            "stay_billed",
            "Charging is billed at this property's rate: please pay below.",
            billed=True,
        )

    with transaction.atomic():
        ports_locked(charger.pk)  # one guest per port: a second code waits, then finds it taken
        gs = None
        if port is not None and not connector_busy_with_guest(charger.pk, port):
            gs = GuestSession.objects.create(
                charger=charger,
                connector_id=port,
                email=reservation.guest_email,
                token=token,
                id_tag=uid,
                site_url=site_url,
                # Nothing to pay and maybe no address: no receipt email unless the guest has one.
                receipt_sent_at=None if reservation.guest_email else now,
            )
    if gs is None or port is None:
        Token.objects.filter(pk=token.pk).update(valid=False)
        raise StayRefused(
            "port_busy", "No port is free right now. Please try again when one is free."
        )
    connector_watch(charger.pk)
    try:
        command = send_command_sync(
            charger, "RemoteStartTransaction", {"connectorId": port, "idTag": uid}, source="guest"
        )
    except ChargerOffline:
        return fail_and_release(
            gs, "charger_offline", "The charger went offline before it could start."
        )
    except CommandTimeout:
        return fail_and_release(
            gs, "start_timeout", "The charger did not answer the start request."
        )
    except InvalidCommand:
        logger.exception("Stay remote start payload refused for %s", charger.station_id)
        return fail_and_release(gs, "start_failed", "The charger could not be started.")
    if command.status != Command.Status.ANSWERED or command.result_status != "Accepted":
        return fail_and_release(gs, "start_rejected", "The charger refused to start a session.")
    GuestSession.objects.filter(pk=gs.pk, state=GuestSession.State.PENDING).update(
        state=GuestSession.State.STARTING, start_requested_at=timezone.now()
    )
    gs.refresh_from_db()
    if gs.state == GuestSession.State.STARTING:
        # Queued with its countdown; kept with its time while the broker is down.
        start_check(gs.pk, start_timeout_s())
    return gs


# -- the kWh cap during a session ----------------------------------------------------------------

# A stop the charger did not carry out is asked again after this long.
CAP_STOP_REPEAT_S = 120


def stay_caps_enforce(*, now: datetime | None = None) -> list[int]:
    """Stop the running sessions of stays whose included energy is used up; return their ids.

    The cap is checked at the start (finished sessions) and here, from the meter values, while a
    session runs (beat: STAYS_CAP_CHECK_SECONDS). The stop goes through the protocol-neutral
    RemoteStopTransaction (translated for 2.0.1 chargers) and is recorded as a refused
    `reservation_cap_reached` decision naming the reservation and the energy.
    """
    from datetime import timedelta

    from authorization.decisions import REASONS, Status
    from authorization.models import AuthorizationDecision

    now = now or timezone.now()
    stopped: list[int] = []
    running = ChargingSession.objects.filter(
        status=ChargingSession.Status.ACTIVE, token__reservation__isnull=False
    ).select_related(
        "charger",
        "charger__property",
        "token",
        "token__reservation",
        "token__reservation__property",
    )
    for session in running:
        token = session.token
        assert token is not None and token.reservation is not None
        reservation = token.reservation
        access = reservation_access(reservation)
        if not access.charging_included or access.kwh_cap is None:
            continue
        used = reservation_kwh_used(reservation) + running_kwh(session)
        if used < float(access.kwh_cap):
            continue
        recently = AuthorizationDecision.objects.filter(
            token=token,
            reason="reservation_cap_reached",
            created_at__gte=now - timedelta(seconds=CAP_STOP_REPEAT_S),
        )
        if recently.exists():
            continue
        step, message = REASONS["reservation_cap_reached"]
        charger = session.charger
        decision = Decision(
            Status.INVALID,
            "reservation_cap_reached",
            step,
            f"Stopped remotely: the stay's included {float(access.kwh_cap):g} kWh are used up ({used:.2f} kWh). {message}",
            reservation.pk,
        )
        decision_record(
            decision=decision,
            uid=token.uid,
            token_id=token.pk,
            organization_id=charger.property.organization_id
            if charger.property is not None
            else None,
            station_id=charger.station_id,
            connector_id=session.connector_id,
            context=Context.REMOTE_APP,
        )
        GuestSession.objects.filter(token=token, stop_requested_at__isnull=True).update(
            stop_requested_at=now
        )
        try:
            command = send_command_sync(
                charger,
                "RemoteStopTransaction",
                {"transactionId": session.transaction_id},
                source="stays",
            )
        except (ChargerOffline, CommandTimeout, InvalidCommand) as exc:
            logger.warning("Could not stop session %s at its stay's kWh cap: %s", session.pk, exc)
            continue
        if command.status == Command.Status.ANSWERED and command.result_status == "Accepted":
            stopped.append(session.pk)
        else:
            logger.warning(
                "Charger %s did not accept the cap stop of session %s",
                charger.station_id,
                session.pk,
            )
    return stopped

"""Connector reservations (OCPP 1.6 §5.13 ReserveNow/CancelReservation, 2.0.1 H01-H04): writes
and reads, protocol-neutral.

A reservation is made by sending ReserveNow (in 1.6 words; chargers.devices.commands translates it for a
2.0.1 charger) and becomes active only when the charger answers Accepted. While active and not
expired, the authorization engine refuses other cards on the reserved connector
(authorization.decisions step 11, reason `connector_reserved`); a session of the reserved card
(or one naming the reservation) uses it up. 2.0.1 chargers report expiry and removal with
ReservationStatusUpdate; for 1.6 chargers the expiry time is the rule (the charger ends the
reservation itself, H01.FR.15 / §5.13), so an expired reservation counts as expired when read and
is marked so by `reservations_expire`.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import receiver
from django.utils import timezone

from authorization.decisions import Reserved
from chargers.models import Charger, ChargingSession, Command, Connector, ConnectorReservation
from chargers.ocpp.protocol import format_datetime
from chargers.signals import asked_once, session_started

Status = ConnectorReservation.Status
# ReserveNow answers: 1.6 Accepted/Faulted/Occupied/Rejected/Unavailable, 2.0.1 adds nothing else.
ACCEPTED = "Accepted"


class ReservationRefused(Exception):
    """Bad input for a reservation: nothing was sent."""


def new_reservation_id() -> int:
    """A reservationId (1.6) / id (2.0.1): a positive 31-bit integer nobody can guess."""
    return secrets.randbelow(2**31 - 1) + 1


def reserve_now_payload(
    *,
    connector_id: int,
    id_tag: str,
    expires_at: datetime,
    reservation_id: int,
    group_id_tag: str = "",
) -> dict[str, Any]:
    """Return ReserveNow in 1.6 words (translated for 2.0.1 chargers by chargers.devices.commands)."""
    payload: dict[str, Any] = {
        "connectorId": connector_id,
        "expiryDate": format_datetime(expires_at),
        "idTag": id_tag,
        "reservationId": reservation_id,
    }
    if group_id_tag:
        payload["parentIdTag"] = group_id_tag
    return payload


def check_reservation(
    *,
    charger: Charger,
    connector_id: int,
    id_tag: str,
    expires_at: datetime,
    now: datetime | None = None,
) -> None:
    """Raise ReservationRefused when the reservation cannot be made (before anything is sent)."""
    now = now or timezone.now()
    if not id_tag or len(id_tag) > 20:
        # 1.6 IdToken is CiString20 (2.0.1 allows 36; the common limit works for both).
        raise ReservationRefused("The card's UID must be 1 to 20 characters.")
    if expires_at <= now:
        raise ReservationRefused("The reservation must end in the future.")
    if connector_id < 0:
        raise ReservationRefused("The connector must be 0 (any) or a connector number.")
    if (
        connector_id
        and not Connector.objects.filter(charger=charger, connector_id=connector_id).exists()
    ):
        raise ReservationRefused(f"This charger has no connector {connector_id}.")


@transaction.atomic
def reservation_record_answer(
    *,
    charger_id: int,
    payload: dict[str, Any],
    status: str,
    response: Any,
    source: str = "api",
    user_id: int | None = None,
) -> ConnectorReservation | None:
    """Store what the charger answered to a ReserveNow or CancelReservation (`payload` as we sent
    it, in 1.6 or 2.0.1 words). Returns the reservation concerned, if any."""
    answer = str(response.get("status", "")) if isinstance(response, dict) else ""
    if "reservationId" in payload and "connectorId" not in payload and "expiryDate" not in payload:
        # CancelReservation (same shape in both versions).
        reservation = (
            ConnectorReservation.objects.select_for_update()
            .filter(charger_id=charger_id, reservation_id=payload["reservationId"])
            .first()
        )
        if reservation is not None and answer == ACCEPTED:
            reservation.status = Status.CANCELLED
            reservation.save(update_fields=["status", "updated_at"])
        return reservation
    if "idToken" in payload:  # 2.0.1 ReserveNow
        fields = {
            "reservation_id": payload["id"],
            "connector_id": payload.get("evseId") or 0,
            "id_tag": payload["idToken"]["idToken"],
            "group_id_tag": (payload.get("groupIdToken") or {}).get("idToken", ""),
            "expires_at": payload["expiryDateTime"],
        }
    else:
        fields = {
            "reservation_id": payload["reservationId"],
            "connector_id": payload.get("connectorId") or 0,
            "id_tag": payload["idTag"],
            "group_id_tag": payload.get("parentIdTag", ""),
            "expires_at": payload["expiryDate"],
        }
    from chargers.ocpp.protocol import parse_datetime

    fields["expires_at"] = parse_datetime(fields["expires_at"])
    if status == Command.Status.ANSWERED:
        fields["status"] = Status.ACTIVE if answer == ACCEPTED else Status.REFUSED
        fields["charger_answer"] = answer[:20]
    else:
        # No answer (timeout, error, offline): the charger may or may not hold it; not enforced.
        fields["status"] = Status.REFUSED
        fields["charger_answer"] = str(status)[:20]
    reservation, _ = ConnectorReservation.objects.update_or_create(
        charger_id=charger_id,
        reservation_id=fields.pop("reservation_id"),
        defaults={**fields, "source": source[:20], "requested_by_id": user_id, "session": None},
    )
    return reservation


@transaction.atomic
def reservation_status_update(*, charger_id: int, reservation_id: int, update: str) -> bool:
    """2.0.1 ReservationStatusUpdate (H01.FR.16, H03): the charger ended a reservation. Returns
    whether we knew it."""
    new_status = Status.EXPIRED if update == "Expired" else Status.REMOVED
    return bool(
        ConnectorReservation.objects.filter(charger_id=charger_id, reservation_id=reservation_id)
        .exclude(status__in=[Status.USED, Status.CANCELLED])
        .update(status=new_status, updated_at=timezone.now())
    )


def reservations_expire(*, now: datetime | None = None) -> int:
    """Mark active reservations past their expiry as expired; return how many."""
    return ConnectorReservation.objects.filter(
        status=Status.ACTIVE, expires_at__lte=now or timezone.now()
    ).update(status=Status.EXPIRED, updated_at=timezone.now())


def _active(charger_id: int, now: datetime) -> QuerySet[ConnectorReservation]:
    return ConnectorReservation.objects.filter(
        charger_id=charger_id, status=Status.ACTIVE, expires_at__gt=now
    )


def reserved_for(
    charger_id: int, connector_id: int | None, *, now: datetime | None = None
) -> Reserved | None:
    """Return who may start on `connector_id` (None/0: the charger as a whole, as Authorize asks)
    when reservations hold it, else None.

    A reservation of connector 0 holds "some connector" (the charger keeps one free for it), so it
    holds a given connector only on a charger with one connector. Asked about the whole charger
    (an Authorize names no connector), it is held when every connector is reserved.
    """
    rows = list(
        _active(charger_id, now or timezone.now()).values_list(
            "connector_id", "id_tag", "group_id_tag"
        )
    )
    if not rows:
        return None
    connectors = set(
        Connector.objects.filter(charger_id=charger_id, connector_id__gt=0).values_list(
            "connector_id", flat=True
        )
    )
    any_connector = [r for r in rows if r[0] == 0]
    if connector_id:
        holding = [r for r in rows if r[0] == connector_id]
        if len(connectors - {connector_id}) == 0:
            holding += any_connector
    else:
        specific = {r[0] for r in rows if r[0]}
        free = connectors - specific
        if len(free) > len(any_connector) or (not connectors and not any_connector):
            return None
        holding = rows
    if not holding:
        return None
    return Reserved(
        id_tags=frozenset(r[1] for r in holding),
        group_id_tags=frozenset(r[2] for r in holding if r[2]),
    )


@transaction.atomic
def reservation_use(*, session_id: int) -> ConnectorReservation | None:
    """A session started: the reservation it names, or the one its card held on its connector,
    is used up (1.6 §5.13, H01.FR.06)."""
    session = ChargingSession.objects.filter(pk=session_id).first()
    if session is None:
        return None
    active = _active(session.charger_id, session.started_at).select_for_update()
    reservation = None
    if session.reservation_id is not None:
        reservation = active.filter(reservation_id=session.reservation_id).first()
    if reservation is None and session.id_tag:
        reservation = (
            active.filter(id_tag__iexact=session.id_tag, connector_id__in=[0, session.connector_id])
            .order_by("-connector_id")
            .first()
        )
    if reservation is None:
        return None
    reservation.status, reservation.session = Status.USED, session
    reservation.save(update_fields=["status", "session", "updated_at"])
    return reservation


@receiver(session_started, dispatch_uid="chargers.reservation_use")
def _session_started(sender: Any, session_id: int, **kwargs: Any) -> None:
    # The one place both protocols' starts meet (after commit); cheap when nothing is reserved.
    if asked_once(
        kwargs,
        "reservations-active",
        ConnectorReservation.objects.filter(status=Status.ACTIVE).exists,
    ):
        reservation_use(session_id=session_id)


# -- sending (portal, API) ---------------------------------------------------------------------


def reservations_for(charger: Charger) -> QuerySet[ConnectorReservation]:
    return ConnectorReservation.objects.filter(charger=charger).select_related(
        "requested_by", "session"
    )

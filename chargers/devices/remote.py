"""Remote start: decide with the authorization engine first, then send RemoteStartTransaction.
Also the other portal/API commands that need more than a payload: a reservation and its
cancellation, clearing monitors in batches, a new AuthorizationKey pushed over OCPP, and the
log upload and signed firmware update operations. Their answers are stored by
chargers.devices.commands."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync

from authorization.decisions import Context, Decision
from authorization.models import Token, normalize_uid
from authorization.services import authorize, token_group_add_uid
from backoffice import db
from chargers.devices import commands, monitoring
from chargers.models import Charger, Command, ConnectorReservation
from chargers.security import credentials
from chargers.sessions import reservations, services


async def remote_start(
    charger: Charger,
    *,
    id_tag: str,
    connector_id: int | None,
    context: Context = Context.REMOTE_APP,
    source: str = "api",
    user_id: int | None = None,
    timeout: float | None = None,
    charging_profile: dict | None = None,
    once: bool = False,
) -> tuple[Decision, Command | None]:
    """Return the recorded decision and, when it accepted, the RemoteStartTransaction command.

    `charging_profile` (a 1.6 TxProfile) goes to the charger as given; the outgoing schema
    checks it. `once`: a person pressed it (chargers.devices.commands.send_command). Raises the
    exceptions of chargers.devices.commands.send_command.
    """
    payload: dict = {"idTag": id_tag}
    if connector_id:
        payload["connectorId"] = connector_id
    if charging_profile is not None:
        payload["chargingProfile"] = charging_profile
    # Refuse a malformed payload before a decision is recorded for a start that cannot happen.
    commands.check_outgoing_or_raise("RemoteStartTransaction", payload)
    facts, location_id = await db.run(services.charger_facts_by_id, charger.pk, connector_id)
    decision = await authorize(
        uid=id_tag,
        charger=facts,
        context=context,
        location_id=location_id,
        connector_id=connector_id,
        active_sessions_of=services.token_active_sessions,
    )
    if not decision.accepted:
        return decision, None
    command = await commands.send_command(
        charger,
        "RemoteStartTransaction",
        payload,
        source=source,
        user_id=user_id,
        timeout=timeout,
        once=once,
    )
    return decision, command


def remote_start_sync(charger: Charger, **kwargs: Any) -> tuple[Decision, Command | None]:
    return async_to_sync(remote_start)(charger, **kwargs)


def operator_token(charger: Charger, *, uid: str = "", label: str = "") -> Token:
    """Return a token of the charger's organization that may start here (an operator's override):
    `uid` when given, else OPERATOR-<station id>; valid, and in the charger's local token groups
    when it has any, so the authorization engine accepts it at this charger."""
    if charger.organization_id is None:
        raise ValueError("The charger has no property, so no organization's token can start it.")
    uid = uid.strip() or f"OPERATOR-{charger.station_id}"[:36]
    token = Token.objects.filter(
        organization_id=charger.organization_id, uid_normalized=normalize_uid(uid)
    ).first()
    if token is None:
        token = Token.objects.create(
            uid=uid,
            organization_id=charger.organization_id,
            type=Token.Type.OTHER,
            label=label or f"Operator override at {charger.station_id}",
        )
    groups = list(charger.token_groups.all())
    if groups and not token.groups.filter(pk__in=[g.pk for g in groups]).exists():
        token_group_add_uid(group=groups[0], uid=token.uid)
    return token


def operator_remote_start_sync(
    charger: Charger,
    *,
    connector_id: int,
    uid: str = "",
    label: str = "",
    source: str = "admin",
    user_id: int | None = None,
    once: bool = False,
) -> tuple[Token, Decision, Command | None]:
    """Start an operator's override session through the same path as any remote start: a token
    that is valid here (never the last guest's, which is dead once its session ended), the
    authorization engine's recorded decision, then RemoteStartTransaction."""
    token = operator_token(charger, uid=uid, label=label)
    decision, command = remote_start_sync(
        charger,
        id_tag=token.uid,
        connector_id=connector_id,
        context=Context.REMOTE_APP,
        source=source,
        user_id=user_id,
        once=once,
    )
    return token, decision, command


async def authorization_key_push(
    charger: Charger,
    *,
    source: str = "api",
    user_id: int | None = None,
    timeout: float | None = None,
) -> Command:
    """Send the charger a new random AuthorizationKey (ChangeConfiguration, OCPP-J 1.6 §6 /
    whitepaper A01). Nobody ever sees the key: only its hash is kept, and it replaces the
    password when the charger answers Accepted (Rejected or NotSupported keep the old one).

    Raises the exceptions of chargers.devices.commands.send_command.
    """
    password = credentials.generate_password()
    if charger.speaks_v2():
        # 2.0.1 A01: SetVariables SecurityCtrlr.BasicAuthPassword (the same 40 hex digits).
        variable = {
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "BasicAuthPassword"},
            "attributeValue": password,
        }
        return await commands.send_command(
            charger,
            "SetVariables",
            {"setVariableData": [variable]},
            source=source,
            user_id=user_id,
            timeout=timeout,
        )
    payload = {"key": "AuthorizationKey", "value": password}
    return await commands.send_command(
        charger, "ChangeConfiguration", payload, source=source, user_id=user_id, timeout=timeout
    )


def authorization_key_push_sync(charger: Charger, **kwargs: Any) -> Command:
    return async_to_sync(authorization_key_push)(charger, **kwargs)


def new_request_id() -> int:
    """Return a requestId for GetLog / SignedUpdateFirmware (a positive 31-bit integer)."""
    return secrets.randbelow(2**31 - 1) + 1


async def remote_start_decide(
    charger: Charger, *, id_tag: str, connector_id: int | None, context: Context
) -> Decision:
    """Return the authorization engine's (recorded) decision on a remote start of `id_tag`, the
    same one a 1.6 remote start gets (chargers.devices.remote.remote_start), for a 2.0.1 RequestStartTransaction."""
    from authorization.services import authorize

    facts, location_id = await db.run(services.charger_facts_by_id, charger.pk, connector_id)
    return await authorize(
        uid=id_tag,
        charger=facts,
        context=context,
        location_id=location_id,
        connector_id=connector_id,
        active_sessions_of=services.token_active_sessions,
    )


def remote_start_decide_sync(charger: Charger, **kwargs: Any) -> Decision:
    return async_to_sync(remote_start_decide)(charger, **kwargs)


def reserve_sync(
    charger: Charger,
    *,
    connector_id: int,
    id_tag: str,
    expires_at: datetime,
    group_id_tag: str = "",
    source: str = "portal",
    user_id: int | None = None,
) -> Command:
    """Check and send a ReserveNow; return the Command (its answer is stored by chargers.devices.commands).

    Raises ReservationRefused or the exceptions of chargers.devices.commands.send_command.
    """
    reservations.check_reservation(
        charger=charger, connector_id=connector_id, id_tag=id_tag, expires_at=expires_at
    )
    payload = reservations.reserve_now_payload(
        connector_id=connector_id,
        id_tag=id_tag,
        expires_at=expires_at,
        reservation_id=reservations.new_reservation_id(),
        group_id_tag=group_id_tag,
    )
    return async_to_sync(commands.send_command)(
        charger, "ReserveNow", payload, source=source, user_id=user_id
    )


def cancel_sync(
    charger: Charger,
    reservation: ConnectorReservation,
    *,
    source: str = "portal",
    user_id: int | None = None,
) -> Command:
    """Send CancelReservation for one of this charger's reservations; return the Command."""
    return async_to_sync(commands.send_command)(
        charger,
        "CancelReservation",
        {"reservationId": reservation.reservation_id},
        source=source,
        user_id=user_id,
    )


async def clear_monitors(
    charger: Any,
    ids: list[int],
    *,
    source: str = "api",
    user_id: int | None = None,
    timeout: float | None = None,
) -> list[Command]:
    """Clear the charger's monitors `ids`, in as many ClearVariableMonitoringRequests as its
    ItemsPerMessage allows. The limit is asked with GetVariables each time (N06 flow: a firmware
    update may change it; the answer also lands in the device model); a charger that does not
    report it gets all ids in one request. Returns the ClearVariableMonitoring commands sent.
    Raises what chargers.devices.commands.send_command raises."""
    asked = await commands.send_command(
        charger,
        "GetVariables",
        {
            "getVariableData": [
                {
                    "component": monitoring.CLEAR_ITEMS_COMPONENT,
                    "variable": monitoring.CLEAR_ITEMS_VARIABLE,
                }
            ]
        },
        source=source,
        user_id=user_id,
        timeout=timeout,
    )
    results = (
        asked.response.get("getVariableResult") or [] if isinstance(asked.response, dict) else []
    )
    size = next(
        (
            monitoring.clear_batch_size(r.get("attributeValue"))
            for r in results
            if r.get("attributeStatus") == "Accepted"
        ),
        None,
    )
    sent = []
    for batch in monitoring.chunks(ids, size):
        sent.append(
            await commands.send_command(
                charger,
                "ClearVariableMonitoring",
                {"id": batch},
                source=source,
                user_id=user_id,
                timeout=timeout,
            )
        )
    return sent


def clear_monitors_sync(charger: Any, ids: list[int], **kwargs: Any) -> list[Command]:
    return async_to_sync(clear_monitors)(charger, ids, **kwargs)

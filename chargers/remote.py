"""Remote start: decide with the authorization engine first, then send RemoteStartTransaction.
Also the other portal/API commands that need more than a payload: a new AuthorizationKey
pushed over OCPP, and the log upload and signed firmware update operations."""

from __future__ import annotations

import secrets
from typing import Any

from asgiref.sync import async_to_sync

from authorization.decisions import Context, Decision
from authorization.models import Token, normalize_uid
from authorization.services import authorize, token_group_add_uid
from backoffice import db

from . import commands, credentials, services
from .models import Charger, Command


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
) -> tuple[Decision, Command | None]:
    """Return the recorded decision and, when it accepted, the RemoteStartTransaction command.

    `charging_profile` (a 1.6 TxProfile) goes to the charger as given; the outgoing schema
    checks it. Raises the exceptions of chargers.commands.send_command.
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
        charger, "RemoteStartTransaction", payload, source=source, user_id=user_id, timeout=timeout
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

    Raises the exceptions of chargers.commands.send_command.
    """
    password = credentials.generate_password()
    if charger.ocpp_version == Charger.OcppVersion.V201:
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

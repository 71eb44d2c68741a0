"""Remote start: decide with the authorization engine first, then send RemoteStartTransaction."""

from __future__ import annotations

from asgiref.sync import async_to_sync

from authorization.decisions import Context, Decision
from authorization.services import authorize
from backoffice import db

from . import commands, services
from .models import Charger, Command


async def remote_start(
    charger: Charger, *, id_tag: str, connector_id: int | None, context: Context = Context.REMOTE_APP,
    source: str = "api", user_id: int | None = None, timeout: float | None = None,
) -> tuple[Decision, Command | None]:
    """Return the recorded decision and, when it accepted, the RemoteStartTransaction command.

    Raises the exceptions of chargers.commands.send_command.
    """
    facts, location_id = await db.run(services.charger_facts_by_id, charger.pk)
    decision = await authorize(
        uid=id_tag, charger=facts, context=context, location_id=location_id, connector_id=connector_id,
        active_sessions_of=services.token_active_sessions,
    )
    if not decision.accepted:
        return decision, None
    payload = {"idTag": id_tag}
    if connector_id:
        payload["connectorId"] = connector_id
    command = await commands.send_command(
        charger, "RemoteStartTransaction", payload, source=source, user_id=user_id, timeout=timeout
    )
    return decision, command


def remote_start_sync(charger: Charger, **kwargs) -> tuple[Decision, Command | None]:
    return async_to_sync(remote_start)(charger, **kwargs)

"""Send a CALL to a charger connected to any process, through the channel layer, and await it.

Each connected charger's consumer joins the group `cp.<charger pk>`. The caller records a
Command row (so a lost message still shows up as a timeout to the operator), sends the CALL
to the group with a private reply channel, and waits for the answer with a timeout.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backoffice import db

from .credentials import redact_payload, redact_response
from .models import Charger, Command
from .ocpp.protocol import OcppError, check_outgoing
from .services import command_security_complete, command_security_prepare

logger = logging.getLogger(__name__)


class ChargerOffline(Exception):
    pass


class CommandTimeout(Exception):
    def __init__(self, command: Command):
        super().__init__(f"{command.action} to {command.charger_id} got no answer in time")
        self.command = command


class InvalidCommand(Exception):
    def __init__(self, error: OcppError):
        super().__init__(error.description)
        self.error = error


def command_group(charger_id: int) -> str:
    return f"cp.{charger_id}"


def check_outgoing_or_raise(action: str, payload: dict) -> None:
    try:
        check_outgoing(action, payload)
    except OcppError as exc:
        raise InvalidCommand(exc) from None


@transaction.atomic
def _command_create(charger_id: int, action: str, payload: dict, source: str, user_id, status: str) -> Command:
    command = Command.objects.create(
        charger_id=charger_id, action=action, payload=redact_payload(action, payload), source=source,
        requested_by_id=user_id, status=status,
        completed_at=timezone.now() if status != Command.Status.PENDING else None,
    )
    # Security (docs/security.md): the hash of a new AuthorizationKey, log/firmware operations.
    command_security_prepare(command=command, payload=payload)
    return command


def command_complete(*, command_id: int, status: str, response=None, error: str = "", unique_id: str = "") -> None:
    # redact_response: an AuthorizationKey a charger wrongly reports back is not stored.
    fields = {"status": status, "response": redact_response(response), "error": error[:2000], "completed_at": timezone.now()}
    if unique_id:
        fields["unique_id"] = unique_id
    updated = Command.objects.filter(pk=command_id, status=Command.Status.PENDING).update(**fields)
    if updated:
        # Security (docs/security.md): adopt an accepted AuthorizationKey, follow operations.
        command_security_complete(command_id=command_id, status=status, response=response)


async def send_command(
    charger: Charger, action: str, payload: dict, *, source: str = "api", user_id: int | None = None,
    timeout: float | None = None,
) -> Command:
    """Send `action` to the charger and return the completed Command.

    Raises InvalidCommand, ChargerOffline or CommandTimeout.
    """
    check_outgoing_or_raise(action, payload)
    timeout = timeout or settings.OCPP_CALL_TIMEOUT
    if not charger.is_online():
        await db.run(_command_create, charger.pk, action, payload, source, user_id, Command.Status.OFFLINE)
        raise ChargerOffline(charger.station_id)
    command = await db.run(_command_create, charger.pk, action, payload, source, user_id, Command.Status.PENDING)
    layer = get_channel_layer()
    # The default prefix, not a private one: channels_redis reads all process-local channels of
    # a process through one receive lock whose holder pops only the Redis key of its own prefix
    # ("specific.<process>!"). A "cmdreply." channel lived in a key nobody popped while a charger
    # consumer held the lock: with two chargers connected every answer waited for the timeout.
    reply_channel = await layer.new_channel()
    await layer.group_send(
        command_group(charger.pk),
        {
            "type": "cp.call", "command_id": command.pk, "action": action, "payload": payload,
            "reply_channel": reply_channel, "timeout": timeout,
        },
    )
    try:
        # The consumer answers within `timeout`; the margin covers the hops in between.
        await asyncio.wait_for(layer.receive(reply_channel), timeout + 2)
    except TimeoutError:
        await db.run(
            command_complete, command_id=command.pk, status=Command.Status.TIMEOUT,
            error="No process holding this charger's connection answered.",
        )
    await db.run(command.refresh_from_db)
    if command.status == Command.Status.TIMEOUT:
        raise CommandTimeout(command)
    return command


def send_command_sync(charger: Charger, action: str, payload: dict, **kwargs) -> Command:
    return async_to_sync(send_command)(charger, action, payload, **kwargs)

"""Log upload from a campaign's chargers (docs/firmware.md "Logs"): each charger is asked to
upload its diagnostics log to the location the operator gives. 2.0.1, and 1.6 with the security
extension: `GetLog {logType: DiagnosticsLog, requestId, log: {remoteLocation}}` (its
LogStatusNotifications follow the charger's log operation, chargers.security). A 1.6 charger
without GetLog (a CALLERROR NotSupported / NotImplemented) gets `GetDiagnostics {location}`
instead (its DiagnosticsStatusNotifications are in its message log). Chargers in parallel,
FLEET_LOG_CONCURRENCY at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection

from chargers.devices import commands
from chargers.devices.remote import new_request_id
from chargers.models import Charger, Command
from fleet.models import CampaignTarget

# The most chargers one request asks at once (the answer waits for every charger).
MAX_CHARGERS = 100
# CALLERROR codes of a 1.6 charger that has no GetLog (security extension not implemented).
NOT_SUPPORTED = {"NotSupported", "NotImplemented"}


def _error_code(command: Command) -> str:
    response = command.response if isinstance(command.response, dict) else {}
    return str(response.get("errorCode", ""))


def _said(action: str, command: Command) -> str:
    if command.status == Command.Status.ERROR:
        return f"{action} refused ({_error_code(command) or 'CALLERROR'})"
    if command.status != Command.Status.ANSWERED:
        return f"{action}: no answer"
    response = command.response if isinstance(command.response, dict) else {}
    if action == "GetDiagnostics":
        name = response.get("fileName")
        return f"GetDiagnostics: uploading {name}" if name else "GetDiagnostics: no file to upload"
    filename = response.get("filename")
    status = str(response.get("status", "")) or "no status"
    return f"GetLog {status}" + (f": uploading {filename}" if filename else "")


async def request_log(charger: Charger, remote_location: str, note: str) -> str:
    """Ask one charger for its diagnostics log; return what it answered, in words."""
    get_log = {
        "logType": "DiagnosticsLog",
        "requestId": new_request_id(),
        "log": {"remoteLocation": remote_location},
    }
    try:
        command = await commands.send_command(charger, "GetLog", get_log, source="fleet", note=note)
        if (
            not charger.speaks_v2()
            and command.status == Command.Status.ERROR
            and _error_code(command) in NOT_SUPPORTED
        ):
            command = await commands.send_command(
                charger, "GetDiagnostics", {"location": remote_location}, source="fleet", note=note
            )
            return _said("GetDiagnostics", command)
        return _said("GetLog", command)
    except commands.ChargerOffline:
        return "offline"
    except commands.CommandTimeout as exc:
        return "offline" if exc.disconnected else "no answer"
    except commands.InvalidCommand as exc:
        return f"not sent: {exc}"


def _targets(campaign_id: int, station_ids: Sequence[str], failed_only: bool) -> list[Charger]:
    targets = CampaignTarget.objects.filter(campaign_id=campaign_id).select_related("charger")
    if station_ids:
        targets = targets.filter(charger__station_id__in=list(station_ids))
    if failed_only:
        targets = targets.filter(status=CampaignTarget.Status.FAILED)
    return [t.charger for t in targets.order_by("position")]


class TooMany(ValueError):
    """More chargers than one request may ask."""


async def _request_all(chargers: list[Charger], remote_location: str, note: str) -> list[str]:
    limit = asyncio.Semaphore(int(getattr(settings, "FLEET_LOG_CONCURRENCY", 10)))

    async def bounded(charger: Charger) -> str:
        async with limit:
            return await request_log(charger, remote_location, note)

    return list(await asyncio.gather(*(bounded(c) for c in chargers)))


def campaign_logs(
    *, campaign_id: int, remote_location: str, station_ids: Sequence[str], failed_only: bool
) -> dict[str, str]:
    """Ask the campaign's chargers (these station ids, or its failed ones, or all) for their
    diagnostics logs; return each charger's answer in words. Raises TooMany past MAX_CHARGERS."""
    chargers = _targets(campaign_id, station_ids, failed_only)
    if len(chargers) > MAX_CHARGERS:
        raise TooMany(f"Ask at most {MAX_CHARGERS} chargers at a time (list their station_ids).")
    if not connection.in_atomic_block:  # the chargers take their time: give the connection back
        connection.close()
    note = f"Diagnostics log (campaign {campaign_id})"
    answers = async_to_sync(_request_all)(chargers, remote_location, note)
    return {c.station_id: answer for c, answer in zip(chargers, answers, strict=True)}

"""Send the claimed targets their update (docs/firmware.md): plain UpdateFirmware on 1.6,
SignedUpdateFirmware on 1.6 for a signed release where the charger takes it, UpdateFirmware
with signingCertificate/signature on 2.0.1. Chargers in parallel, one CALL at a time each."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django.utils import timezone

from backoffice import db
from chargers.devices import commands
from chargers.devices.remote import new_request_id
from chargers.models import Charger, Command
from fleet.models import CampaignTarget, FirmwareRelease

from . import services

logger = logging.getLogger(__name__)

# Answers to SignedUpdateFirmware (security whitepaper) / 2.0.1 UpdateFirmware that take it.
TAKEN = {"Accepted", "AcceptedCanceled"}
# 1.6 CALLERROR codes of a charger that has no such action (a charger that supports signed
# updates answers plain UpdateFirmware with NotSupported: whitepaper L01).
NOT_SUPPORTED = {"NotSupported", "NotImplemented"}


@dataclass(frozen=True)
class Call:
    method: str
    action: str
    payload: dict
    request_id: int | None


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def call_for(release: FirmwareRelease, charger: Charger, method: str, now: datetime) -> Call:
    """The CALL of `method` (CampaignTarget.Method) for this release."""
    if method == CampaignTarget.Method.PLAIN:
        return Call(
            method,
            "UpdateFirmware",
            {"location": release.location, "retrieveDate": _iso(now)},
            None,
        )
    request_id = new_request_id()
    firmware: dict = {"location": release.location, "retrieveDateTime": _iso(now)}
    if release.signed:
        firmware["signingCertificate"] = release.signing_certificate
        firmware["signature"] = release.signature
    action = "SignedUpdateFirmware" if method == CampaignTarget.Method.SIGNED else "UpdateFirmware"
    return Call(method, action, {"requestId": request_id, "firmware": firmware}, request_id)


def first_method(release: FirmwareRelease, charger: Charger, signed_known: bool) -> str:
    if charger.ocpp_version == Charger.OcppVersion.V201:
        return CampaignTarget.Method.V201
    if release.signed and signed_known:
        return CampaignTarget.Method.SIGNED
    return CampaignTarget.Method.PLAIN


def _load(target_id: int) -> tuple[CampaignTarget, bool, bool]:
    target = CampaignTarget.objects.select_related("charger", "campaign__release").get(pk=target_id)
    return (
        target,
        services.charger_busy(target.charger_id),
        services.signed_known(target.charger_id),
    )


def _error_code(command: Command) -> str:
    return (
        str((command.response or {}).get("errorCode", ""))
        if isinstance(command.response, dict)
        else ""
    )


async def _send(target: CampaignTarget, call: Call) -> Command | str:
    """Send one CALL; return the command, or why it did not go out ("offline")."""
    try:
        return await commands.send_command(
            target.charger,
            call.action,
            call.payload,
            source="fleet",
            note=f"Firmware {target.campaign.release.version} (campaign {target.campaign_id})",
        )
    except commands.ChargerOffline:
        return "offline"
    except commands.CommandTimeout as exc:
        return "offline" if exc.disconnected else f"No answer to {call.action}."
    except commands.InvalidCommand as exc:
        return f"Not sent: {exc}"


async def dispatch_one(target_id: int) -> str:
    """Send one claimed target its update; return its outcome in words."""
    target, busy, signed_known = await db.run(_load, target_id)
    if busy:  # a session began since the step: never during a session
        await db.run(
            services.target_unsent, target_id=target_id, reason="A session is open.", failed=False
        )
        return "busy"
    release, charger = target.campaign.release, target.charger
    call = call_for(release, charger, first_method(release, charger, signed_known), timezone.now())
    result = await _send(target, call)
    if (
        isinstance(result, Command)
        and call.method == CampaignTarget.Method.PLAIN
        and result.status == Command.Status.ERROR
        and _error_code(result) in NOT_SUPPORTED
    ):
        if not release.signed:
            result = "The charger takes only signed updates and the release is unsigned."
        else:  # L01: a charger that knows signed updates refuses the plain one: sent signed
            await db.run(
                services.target_note,
                target_id=target_id,
                status="NotSupported",
                details="UpdateFirmware refused: sent SignedUpdateFirmware",
            )
            call = call_for(release, charger, CampaignTarget.Method.SIGNED, timezone.now())
            result = await _send(target, call)
    return await _record(target_id, call, result)


async def _record(target_id: int, call: Call, result: Command | str) -> str:
    if isinstance(result, str):
        await db.run(
            services.target_unsent, target_id=target_id, reason=result, failed=result != "offline"
        )
        return result
    if result.status == Command.Status.ERROR:
        reason = f"{call.action} refused: {result.error}"
        await db.run(services.target_unsent, target_id=target_id, reason=reason, failed=True)
        return reason
    answer = result.result_status
    if call.method != CampaignTarget.Method.PLAIN and answer not in TAKEN:
        reason = f"{call.action} answered {answer or 'without a status'}."
        await db.run(services.target_unsent, target_id=target_id, reason=reason, failed=True)
        return reason
    await db.run(
        services.target_sent,
        target_id=target_id,
        method=call.method,
        request_id=call.request_id,
        command_id=result.pk,
        answer=answer,
    )
    return "sent"


async def _dispatch_all(target_ids: Sequence[int]) -> list[str]:
    return list(await asyncio.gather(*(dispatch_one(t) for t in target_ids)))


def dispatch(target_ids: Sequence[int]) -> list[str]:
    """Send the targets their updates, chargers in parallel; return each outcome."""
    if not target_ids:
        return []
    return async_to_sync(_dispatch_all)(target_ids)


def campaigns_advance(now: datetime | None = None) -> dict[str, int]:
    """One pass over the campaigns with work (the fleet.campaigns_advance beat task): each step
    commits, then its claimed targets are sent. Return the outcomes counted."""
    counted: dict[str, int] = {}
    for campaign_id in services.campaigns_due():
        for outcome in dispatch(services.campaign_step(campaign_id=campaign_id, now=now)):
            key = outcome if outcome in ("sent", "offline", "busy") else "failed"
            counted[key] = counted.get(key, 0) + 1
    return counted

"""Send a baseline to a charger (docs/operations.md "Configuration baselines"): 1.6 one
ChangeConfiguration per key; 2.0.1 one SetVariables, split by the charger's
ItemsPerMessageSetVariables / BytesPerMessageSetVariables (B05.FR.11; chargers.devices.commands
splits it). A value that needs a reboot resets the charger once per baseline version (2.0.1
OnIdle; 1.6 Soft, never during a session). Outside any request: the beat task
`fleet.baselines_apply` sends what is due at the fleet's pace (FLEET_BASELINE_BATCH chargers per
run, FLEET_BASELINE_CONCURRENCY at once), long after the boot was answered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from asgiref.sync import async_to_sync
from django.conf import settings as django_settings
from django.db import connection

from backoffice import db
from chargers.devices import commands
from chargers.models import Charger, Command
from fleet.models import BaselineApplication

from . import rules, services

logger = logging.getLogger(__name__)
Outcome = BaselineApplication.Outcome


class Unreached(Exception):
    """The charger went away or stopped answering: the rest is not sent."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


async def _call(charger: Charger, action: str, payload: dict, note: str) -> Command:
    try:
        return await commands.send_command(charger, action, payload, source="fleet", note=note)
    except commands.ChargerOffline:
        raise Unreached(Outcome.OFFLINE) from None
    except commands.CommandTimeout as exc:
        raise Unreached(Outcome.OFFLINE if exc.disconnected else Outcome.FAILED) from None


def _answer(command: Command) -> str | None:
    if command.status == Command.Status.ERROR:
        code = command.response.get("errorCode", "") if isinstance(command.response, dict) else ""
        return f"CALLERROR {code}".strip()
    if command.status != Command.Status.ANSWERED:
        return None
    return command.result_status or None


async def _apply_16(charger: Charger, items: list[rules.Setting], note: str) -> list[str | None]:
    statuses: list[str | None] = []
    for payload in rules.change_configuration_16(items):
        statuses.append(_answer(await _call(charger, "ChangeConfiguration", payload, note)))
    return statuses


async def _apply_201(charger: Charger, items: list[rules.Setting], note: str) -> list[str | None]:
    command = await _call(
        charger, "SetVariables", {"setVariableData": rules.set_variable_data(items)}, note
    )
    if command.status != Command.Status.ANSWERED or not isinstance(command.response, dict):
        return [_answer(command)] * len(items)
    results = command.response.get("setVariableResult")
    return rules.statuses_201(items, results if isinstance(results, list) else [])


async def _reboot(charger: Charger, busy: bool, note: str) -> str:
    """Reset the charger so the values that need it take effect; say what happened."""
    if charger.speaks_v2():
        command = await _call(charger, "Reset", {"type": "OnIdle"}, note)
    elif busy:
        return "Reboot needed: not asked during a session (re-apply once it ends)."
    else:
        command = await _call(charger, "Reset", {"type": "Soft"}, note)
    return f"Reset {_answer(command) or 'not answered'}"


async def apply_one(application_id: int) -> str:
    """Send one claimed application and record each answer; return its outcome."""
    application, items, busy = await db.run(services.application_load, application_id)
    charger, baseline = application.charger, application.baseline
    note = f"Baseline {baseline.name} v{application.version}"
    statuses: list[str | None] = [None] * len(items)
    reboot_asked, extra = False, ""
    try:
        if items:
            apply = _apply_201 if charger.speaks_v2() else _apply_16
            statuses = await apply(charger, items, note)
        outcome = rules.outcome(statuses) if items else Outcome.APPLIED
        wanted = baseline.reboot_when_required and rules.reboot_to_ask(
            statuses, application.version, application.reboot_asked_version
        )
        if wanted:
            extra = await _reboot(charger, busy, note)
            reboot_asked = extra.startswith("Reset")
        elif rules.REBOOT_REQUIRED in statuses and baseline.reboot_when_required:
            extra = "Reboot already asked once for this version: not asked again."
    except Unreached as unreached:
        outcome = unreached.outcome
    except commands.InvalidCommand as exc:
        outcome, extra = Outcome.FAILED, f"Not sent: {exc}"
    await db.run(
        services.application_record,
        application_id=application_id,
        settings=items,
        statuses=statuses,
        outcome=outcome,
        reboot_asked=reboot_asked,
        note=extra,
    )
    return outcome


async def _apply_all(application_ids: Sequence[int]) -> list[str]:
    limit = asyncio.Semaphore(int(getattr(django_settings, "FLEET_BASELINE_CONCURRENCY", 10)))

    async def bounded(application_id: int) -> str:
        async with limit:
            try:
                return await apply_one(application_id)
            except Exception:  # one charger's failure never stops the others
                logger.exception("Baseline application %s failed", application_id)
                return Outcome.FAILED

    return list(await asyncio.gather(*(bounded(a) for a in application_ids)))


def baselines_apply() -> dict[str, int]:
    """One pass of the beat task fleet.baselines_apply: claim what is due (asked on demand,
    or made due by a boot), at most FLEET_BASELINE_BATCH, then send it. Outcomes counted."""
    due = services.due_claim(limit=int(getattr(django_settings, "FLEET_BASELINE_BATCH", 50)))
    counted: dict[str, int] = {}
    if due:
        for outcome in async_to_sync(_apply_all)([d.application_id for d in due]):
            counted[outcome] = counted.get(outcome, 0) + 1
    return counted


def _release_connection() -> None:
    # The charger may take up to the call timeout per answer: the request's thread gives its
    # pooled connection back meanwhile (as chargers.devices.commands.send_command_sync does).
    if not connection.in_atomic_block:
        connection.close()


def apply_now(application_id: int) -> str:
    """Send one application from a request (the charger page's one-click re-apply)."""
    _release_connection()
    return async_to_sync(apply_one)(application_id)


async def read_back(charger: Charger, items: list[rules.Setting]) -> str:
    """Ask the charger for the baseline's values (1.6 GetConfiguration of its keys; 2.0.1
    GetVariables, split like SetVariables); the answers are kept where drift is read from."""
    if not items:
        return "Nothing to read."
    try:
        if charger.speaks_v2():
            asked: dict = {"getVariableData": rules.get_variable_data(items)}
            command = await _call(charger, "GetVariables", asked, "Baseline check")
        else:
            keys: dict = {"key": [s.variable for s in items]}
            command = await _call(charger, "GetConfiguration", keys, "Baseline check")
    except Unreached as unreached:
        return "The charger is offline." if unreached.outcome == Outcome.OFFLINE else "No answer."
    except commands.InvalidCommand as exc:
        return f"Not sent: {exc}"
    return "Read." if command.status == Command.Status.ANSWERED else "The charger refused."


def read_back_now(charger: Charger, items: list[rules.Setting]) -> str:
    _release_connection()
    return async_to_sync(read_back)(charger, items)

"""First aid (docs/reliability.md, "First aid"): what an alert rule may send a charger by itself,
off unless the rule chooses it, at most `remediation_max_per_day` times a day per charger and
rule. Every command goes the usual way (chargers.devices.commands) and each action with the
charger's answer is kept on the alert and on the port's timeline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from chargers.devices.commands import (
    ChargerOffline,
    CommandTimeout,
    InvalidCommand,
    send_command_sync,
)
from chargers.models import Charger, ChargingSession, Command

from ..models import Alert, AlertRule, PortEvent

logger = logging.getLogger(__name__)

Remedy = AlertRule.Remediation
COMMAND_TIMEOUT_S = 20


def _answer(send: Callable[[], Command]) -> str:
    """The charger's answer in a word or a short sentence, never exception text."""
    try:
        command = send()
    except ChargerOffline:
        return "Not sent: the charger is offline."
    except CommandTimeout:
        return "No answer in time."
    except InvalidCommand:
        return "Not sent: the charger does not take this command."
    if command.status != command.Status.ANSWERED:
        return f"{command.get_status_display()}."
    return command.result_status or "Answered"


def _act(alert: Alert, action: str, payload: dict, now: datetime) -> dict:
    charger = alert.charger
    assert charger is not None  # treat() gives first aid to charger alerts only
    result = _answer(
        lambda: send_command_sync(
            charger, action, payload, source="first_aid", timeout=COMMAND_TIMEOUT_S
        )
    )
    entry = {"action": action, "sent_at": now.isoformat(), "result": result}
    alert.remediation = [*alert.remediation, entry]
    alert.save(update_fields=["remediation"])
    PortEvent.objects.create(
        charger=charger,
        connector_id=alert.connector_id,
        kind=PortEvent.Kind.REMEDY,
        at=now,
        status=action[:30],
        info=f"First aid for alert {alert.pk} ({alert.kind}): {result}"[:500],
    )
    return entry


def sent_today(rule: AlertRule, charger: Charger, now: datetime) -> int:
    """First-aid actions this rule began on this charger in the last 24 hours (a remedy of two
    steps counts once)."""
    since = now - timedelta(days=1)
    count = 0
    for alert in Alert.objects.filter(
        rule=rule, charger=charger, opened_at__gte=since - timedelta(days=1)
    ):
        steps = alert.remediation or []
        if steps and steps[0].get("sent_at", "") >= since.isoformat():
            count += 1
    return count


def _stuck_session(alert: Alert) -> ChargingSession | None:
    return (
        ChargingSession.objects.filter(
            charger=alert.charger, connector_id=alert.connector_id, stopped_at__isnull=True
        )
        .order_by("-started_at")
        .first()
    )


def _faulted(alert: Alert, remedy: str, now: datetime) -> None:
    port = alert.connector_id
    if remedy == Remedy.SOFT_RESET:
        _act(alert, "Reset", {"type": "Soft"}, now)
    elif remedy == Remedy.TRIGGER_STATUS:
        trigger: dict[str, Any] = {"requestedMessage": "StatusNotification"}
        if port:
            trigger["connectorId"] = port
        _act(alert, "TriggerMessage", trigger, now)
        _act(alert, "ChangeAvailability", {"connectorId": port, "type": "Operative"}, now)


def _stuck(alert: Alert, now: datetime) -> None:
    """First ask: GetTransactionStatus (2.0.1) or a MeterValues trigger (1.6). Still stuck
    `after_s` later: a soft stop (RemoteStopTransaction / RequestStopTransaction)."""
    session = _stuck_session(alert)
    if session is None:
        return
    if not alert.remediation:
        v201 = alert.charger is not None and alert.charger.speaks_v2()
        if v201 and session.ocpp_transaction_id:
            _act(alert, "GetTransactionStatus", {"transactionId": session.ocpp_transaction_id}, now)
        else:
            trigger = {"requestedMessage": "MeterValues", "connectorId": alert.connector_id}
            _act(alert, "TriggerMessage", trigger, now)
        return
    if any(step.get("action") == "RemoteStopTransaction" for step in alert.remediation):
        return
    asked_at = datetime.fromisoformat(alert.remediation[0]["sent_at"])
    if now - asked_at >= timedelta(seconds=alert.rule.after_s):
        _act(alert, "RemoteStopTransaction", {"transactionId": session.transaction_id}, now)


def treat(alert: Alert, now: datetime | None = None) -> None:
    """Give this open alert the first aid its rule chose, if any is due and the day's limit
    allows."""
    now = now or timezone.now()
    rule = alert.rule
    remedy = rule.remediation
    charger = alert.charger
    if remedy == Remedy.NONE or alert.cleared_at is not None or charger is None:
        return  # no first aid for a problem that is no charger's (an access point's feed)
    first_step = not alert.remediation
    if first_step and sent_today(rule, charger, now) >= rule.remediation_max_per_day:
        return
    try:
        if alert.kind == AlertRule.Kind.FAULTED and first_step:
            _faulted(alert, remedy, now)
        elif alert.kind == AlertRule.Kind.STUCK_SESSION and remedy == Remedy.STOP_STUCK:
            _stuck(alert, now)
    except Exception:  # one charger's trouble never stops the others' alerts
        logger.exception("First aid for alert %s failed", alert.pk)

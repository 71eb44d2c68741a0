"""Plain words for the charger's own codes on portal pages (issue 51 item 4): a connector's
status and error, why a session stopped, a decision's reason. The code stays in the element's
title (and in Logs, where hosts read the protocol itself)."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()

STATUS_WORDS = {
    "Available": "Available",
    "Preparing": "Preparing",
    "Charging": "Charging",
    "SuspendedEV": "Paused by the car",
    "SuspendedEVSE": "Paused by the charger",
    "Finishing": "Finishing",
    "Reserved": "Reserved",
    "Unavailable": "Unavailable",
    "Faulted": "Fault",
    "Occupied": "In use",
}
ERROR_WORDS = {
    "ConnectorLockFailure": "Cable lock failure",
    "EVCommunicationError": "Cannot talk to the car",
    "GroundFailure": "Ground fault",
    "HighTemperature": "Too hot",
    "InternalError": "Internal error",
    "LocalListConflict": "Card list conflict",
    "OtherError": "Other error",
    "OverCurrentFailure": "Overcurrent",
    "OverVoltage": "Overvoltage",
    "PowerMeterFailure": "Meter failure",
    "PowerSwitchFailure": "Power switch failure",
    "ReaderFailure": "Card reader failure",
    "ResetFailure": "Reset failed",
    "UnderVoltage": "Undervoltage",
    "WeakSignal": "Weak signal",
}
# OCPP 1.6 Reason and 2.0.1 ReasonEnumType of a stop, and our own estimates (chargers.sessions.rules,
# chargers.devices.stale).
STOP_WORDS = {
    "DeAuthorized": "card no longer valid",
    "EmergencyStop": "emergency stop",
    "EnergyLimitReached": "energy limit reached",
    "EVDisconnected": "cable unplugged",
    "GroundFault": "ground fault",
    "HardReset": "charger restarted",
    "ImmediateReset": "charger restarted",
    "Local": "stopped at the charger",
    "LocalOutOfCredit": "out of credit",
    "MasterPass": "stopped with a master card",
    "Other": "other reason",
    "OvercurrentFault": "overcurrent",
    "PowerLoss": "power cut",
    "PowerQuality": "power quality",
    "Reboot": "charger rebooted",
    "Remote": "stopped from the app or portal",
    "SOCLimitReached": "battery limit reached",
    "SoftReset": "charger restarted",
    "StoppedByEV": "stopped by the car",
    "TimeLimitReached": "time limit reached",
    "Timeout": "timed out",
    "UnlockCommand": "cable released remotely",
    "Superseded": "closed: a newer session started",
    "NoStopTransaction": "closed: the charger's stop never came",
    "NoEndedEvent": "closed: the charger's end never came",
}


# A card's answer at the start (OCPP 1.6 AuthorizationStatus, 2.0.1 AuthorizationStatusEnumType).
CARD_WORDS = {
    "Accepted": "Accepted",
    "Blocked": "Blocked",
    "Expired": "Expired",
    "Invalid": "Not accepted",
    "ConcurrentTx": "Already charging elsewhere",
    "NoCredit": "No credit",
    "NotAllowedTypeEVSE": "Not allowed on this connector type",
    "NotAtThisLocation": "Not allowed at this location",
    "NotAtThisTime": "Not allowed at this time",
    "Unknown": "Not known",
}


@register.filter
def card_words(code: Any) -> str:
    text = str(code or "")
    return CARD_WORDS.get(text, text)


@register.filter
def status_words(code: Any) -> str:
    return STATUS_WORDS.get(str(code or ""), str(code or "–"))


@register.filter
def error_words(code: Any) -> str:
    text = str(code or "")
    return "" if text in ("", "NoError") else ERROR_WORDS.get(text, text)


@register.filter
def stop_words(code: Any) -> str:
    text = str(code or "")
    return STOP_WORDS.get(text, text)


@register.filter
def port_name(connector_id: Any) -> str:
    """Connector 0 is the charger as a whole in OCPP; others by their number."""
    return "Whole charger" if str(connector_id) == "0" else f"Connector {connector_id}"

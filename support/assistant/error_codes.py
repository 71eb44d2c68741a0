"""OCPP 1.6 ChargePointErrorCode values in plain language (OCPP 1.6 §7.6), for guests and hosts.

Pure: no Django. Vendor-specific codes (vendorErrorCode) live in the VendorErrorCode table, which
agents extend in the admin.
"""

from __future__ import annotations

OCPP_ERROR_CODES: dict[str, str] = {
    "ConnectorLockFailure": "the connector could not lock or unlock",
    "EVCommunicationError": "the charger could not talk to the car (usually a cable that is not fully "
    "seated, or the car not ready to charge)",
    "GroundFailure": "the ground-fault protection tripped (a safety cut-out for leaking current)",
    "HighTemperature": "it is too hot inside the charger",
    "InternalError": "a part of the charger's hardware or software failed",
    "LocalListConflict": "the charger's stored card list disagrees with the central system",
    "OtherError": "the charger reported an error of its own (see the vendor code)",
    "OverCurrentFailure": "the over-current protection tripped",
    "OverVoltage": "the supply voltage is too high",
    "PowerMeterFailure": "the charger cannot read its energy meter",
    "PowerSwitchFailure": "the charger cannot switch the power on or off",
    "ReaderFailure": "the card reader failed",
    "ResetFailure": "the charger could not restart",
    "UnderVoltage": "the supply voltage is too low",
    "WeakSignal": "the charger's wireless connection is weak",
}


def explain_error_code(code: str) -> str:
    """Return a plain-language explanation of an OCPP error code ('' for NoError or unknown)."""
    return OCPP_ERROR_CODES.get(code, "")

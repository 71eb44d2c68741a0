"""Pure: find the signed meter values in OCPP meterValue lists (no Django).

OCPP 1.6 carries a signed value as a sampledValue with format `SignedData` (OCA "Signed Meter
Values in OCPP" 3.2.1); OCPP 2.0.1 as a sampledValue with a `signedMeterValue` object. Both are
returned whole, as sent: metering unwraps and verifies them (metering.ocmf). A sampledValue
whose value is OCMF text without the format (some 1.6 chargers) is taken as signed too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The key of a journaled 2.0.1 MeterValues (1.6 shape) that holds its signed values as
# meterValue entries: replayed for the session open on the EVSE (chargers.sessions.replay).
SIGNED_201 = "signedMeterValues201"


@dataclass(frozen=True)
class SignedValue:
    timestamp: str  # the meterValue's timestamp, as sent ('' when missing)
    context: str  # Transaction.Begin, Transaction.End, Sample.Periodic, ...
    measurand: str
    value: Any  # 1.6: the value text; 2.0.1: the signedMeterValue object


def _signed(sample: dict) -> Any:
    signed = sample.get("signedMeterValue")
    if isinstance(signed, dict):
        return signed
    value = sample.get("value")
    if not isinstance(value, str):
        return None
    if str(sample.get("format", "")).lower() == "signeddata" or value.lstrip().startswith("OCMF|"):
        return value
    return None


def signed_values(meter_values: Any) -> list[SignedValue]:
    """Return the signed sampled values of a meterValue list (1.6 or 2.0.1), in order."""
    out: list[SignedValue] = []
    for entry in meter_values if isinstance(meter_values, list) else []:
        if not isinstance(entry, dict):
            continue
        samples = entry.get("sampledValue")
        for sample in samples if isinstance(samples, list) else []:
            if not isinstance(sample, dict):
                continue
            value = _signed(sample)
            if value is None:
                continue
            out.append(
                SignedValue(
                    timestamp=str(entry.get("timestamp") or ""),
                    context=str(sample.get("context") or ""),
                    measurand=str(sample.get("measurand") or "Energy.Active.Import.Register"),
                    value=value,
                )
            )
    return out

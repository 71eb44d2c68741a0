"""The charging-rate units a charger takes in a profile, in the domain's words ("A", "W", "A,W";
"" unknown), from what each OCPP version calls them (docs/power.md, "Units"). Pure: no Django.

- 1.6: the configuration key ChargingScheduleAllowedChargingRateUnit, a list of "Current" and
  "Power" (§9.4);
- 2.0.1: the device-model variable SmartChargingCtrlr.RateUnit, a member list of "A" and "W"
  (K01, appendix 2).
"""

from __future__ import annotations

from collections.abc import Iterable

KEY_16 = "ChargingScheduleAllowedChargingRateUnit"
COMPONENT_201 = "SmartChargingCtrlr"
VARIABLE_201 = "RateUnit"

_WORDS = {"current": "A", "a": "A", "power": "W", "w": "W"}


def _units(value: object) -> str:
    items = {_WORDS.get(item.strip().lower(), "") for item in str(value or "").split(",")}
    return ",".join(sorted(items - {""}))


def units_16(value: object) -> str:
    """A 1.6 ChargingScheduleAllowedChargingRateUnit value ("Current,Power") as "A,W"."""
    return _units(value)


def units_201(value: object) -> str:
    """A 2.0.1 SmartChargingCtrlr.RateUnit value ("A,W", "W") in the same words."""
    return _units(value)


def from_configuration_16(configuration_key: Iterable[object]) -> str | None:
    """The units in a GetConfiguration answer's configurationKey; None when it has no such key
    (or an empty one)."""
    for entry in configuration_key:
        if isinstance(entry, dict) and entry.get("key") == KEY_16:
            return units_16(entry.get("value")) or None
    return None

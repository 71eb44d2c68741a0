"""Which known protocol deviations a charger has (docs/quirks.md). Pure: no I/O, no Django.

A deviation is a named way a charger model departs from the OCPP text (its energy register in
kWh labelled Wh, profiles refused in amperes, ...). Support keeps them as data (the admin's
Deviations and Quirk profiles, chargers.models); a profile maps a vendor, a model and a range of
firmware to deviations. `resolve` answers, once per connection and again at each boot, which
deviations a charger has: the reader (energy readings) and the command builder (profiles,
configuration) then ask the answer, `Quirks.has`, a frozenset lookup, never the database.

What the tolerant reader meets that no profile of the charger names is recorded on the charger
(`chargers.state.quirks.observed`) so support can propose a profile: never silently absorbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# The deviations the code knows how to read or answer. A Deviation row's code is one of these
# (or a kind only recorded, for support: UNKNOWN_ENERGY_UNIT, ENERGY_REGISTER_MISMATCH).
ENERGY_KWH_AS_WH = "energy_kwh_as_wh"
METER_STOP_MISSING = "meter_stop_missing"
WATT_ONLY = "watt_only"
STOP_TXN_SAMPLED_DATA_UNSET = "stop_txn_sampled_data_unset"
UPDATED_AFTER_ENDED = "updated_after_ended"
REJECTS_RELATIVE = "rejects_relative_profiles"
# Only recorded (no handling to switch on): support reads the example frame.
UNKNOWN_ENERGY_UNIT = "unknown_energy_unit"
METER_START_MISSING = "meter_start_missing"
CLOCK_WRONG = "clock_wrong"  # a time before 2015 or far ahead of ours (chargers.ocpp.clock)

KNOWN = (
    ENERGY_KWH_AS_WH,
    METER_STOP_MISSING,
    WATT_ONLY,
    STOP_TXN_SAMPLED_DATA_UNSET,
    UPDATED_AFTER_ENDED,
    REJECTS_RELATIVE,
    UNKNOWN_ENERGY_UNIT,
    METER_START_MISSING,
    CLOCK_WRONG,
)

ENERGY_REGISTER = "Energy.Active.Import.Register"
_WH = ("", "wh")


@dataclass(frozen=True)
class Quirks:
    """The deviations one charger has, as resolved for its vendor, model and firmware."""

    codes: frozenset[str] = frozenset()

    def has(self, code: str) -> bool:
        return code in self.codes


NONE = Quirks()


@dataclass(frozen=True)
class Rule:
    """One quirk profile: which chargers (empty: any) and the deviations they have.

    `vendor` matches the BootNotification vendor exactly (case-insensitive), `model_prefix` and
    `firmware_prefix` the start of the model and firmware, and `firmware_min` / `firmware_max`
    (inclusive) compare firmware versions number by number ("4.10" after "4.9")."""

    deviations: frozenset[str]
    vendor: str = ""
    model_prefix: str = ""
    firmware_prefix: str = ""
    firmware_min: str = ""
    firmware_max: str = ""

    def matches(self, vendor: str, model: str, firmware: str) -> bool:
        if self.vendor and self.vendor.strip().lower() != vendor.strip().lower():
            return False
        if self.model_prefix and not _starts(model, self.model_prefix):
            return False
        if self.firmware_prefix and not _starts(_bare(firmware), _bare(self.firmware_prefix)):
            return False
        version = version_key(firmware)
        if self.firmware_min and (not version or version < version_key(self.firmware_min)):
            return False
        if self.firmware_max and (not version or version > version_key(self.firmware_max)):
            return False
        return True


def _starts(text: str, prefix: str) -> bool:
    return text.strip().lower().startswith(prefix.strip().lower())


def _bare(firmware: str) -> str:
    """A firmware as compared: without a leading "v" ("v4.2.2" is 4.2.2)."""
    text = firmware.strip()
    return text[1:] if text[:1] in ("v", "V") else text


_NUMBERS = re.compile(r"\d+")


def version_key(firmware: str) -> tuple[int, ...]:
    """A firmware version as numbers, compared one by one ("4.10.1" > "4.9"); () for none."""
    return tuple(int(n) for n in _NUMBERS.findall(_bare(firmware))[:8])


def resolve(rules: Iterable[Rule], vendor: str, model: str, firmware: str) -> Quirks:
    """The deviations of a charger with this vendor, model and firmware: those of every rule
    that matches it (profiles add up; none: NONE)."""
    codes: set[str] = set()
    for rule in rules:
        if rule.matches(vendor or "", model or "", firmware or ""):
            codes |= rule.deviations
    return Quirks(frozenset(codes)) if codes else NONE


# -- what the reader does with them ---------------------------------------------------------------


def met(found: list[tuple[str, str]], quirks: Quirks, code: str, detail: str) -> None:
    """Note a deviation the reader met (`code`, what it saw) unless the charger's profile names
    it: an expected deviation is handled, an unexpected one is recorded on the charger."""
    if not quirks.has(code) and all(c != code for c, _ in found):
        found.append((code, detail[:200]))


def energy_unit(measurand: str, unit: str, quirks: Quirks) -> str:
    """The unit an energy register reading is really in: "kWh" for a charger whose profile says
    its register is in kWh while labelled Wh (or unlabelled, which means Wh); else as sent."""
    if (
        quirks.has(ENERGY_KWH_AS_WH)
        and measurand.startswith("Energy.")
        and measurand.endswith(".Register")
        and unit.strip().lower() in _WH
    ):
        return "kWh"
    return unit


def register_kwh(quirks: Quirks) -> bool:
    """Whether a 1.6 charger's meterStart and meterStop are in kWh too: a charger whose profile
    says its register is kWh labelled Wh reads them from that same register (MicroOcpp, which
    OpenEVSE runs, takes meterStart/meterStop from the sampler it reports as
    Energy.Active.Import.Register), so they are scaled alike (docs/quirks.md)."""
    return quirks.has(ENERGY_KWH_AS_WH)


_ENERGY_UNITS = ("", "wh", "kwh")


def unknown_energy_unit(measurand: str, unit: str) -> bool:
    """Whether an energy register reading names a unit that is neither Wh nor kWh (read as Wh,
    the OCPP default, and recorded on the charger)."""
    return (
        measurand.startswith("Energy.")
        and measurand.endswith(".Register")
        and unit.strip().lower() not in _ENERGY_UNITS
    )

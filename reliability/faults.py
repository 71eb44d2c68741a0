"""Vendor fault codes → ChargeX MREC codes (docs/reliability.md, "Fault codes")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from chargers.models import Charger, ChargerEvent, Connector

from .models import FaultCode, FaultCodeMapping

_SEPARATORS = re.compile(r"[;,]")

# MREC's responsibility letters (docs/reliability.md, "Fault codes").
RESPONSIBLE = {
    "U": "EV user",
    "C": "charging station operator",
    "S": "charging station",
    "V": "vehicle",
}


def responsibility_words(letters: str) -> str:
    """'S, V' → 'charging station, vehicle'; a letter MREC does not define is kept as written."""
    parts = [p.strip() for p in _SEPARATORS.split(letters or "") if p.strip()]
    return ", ".join(RESPONSIBLE.get(p.upper(), p) for p in parts)


@dataclass(frozen=True)
class Fault:
    """One MREC code as the product shows it: name, who may cause it, its class and where the
    row was read (`secondary`: on a secondary source alone, which is said wherever it shows)."""

    code: str
    name: str
    description: str
    responsibility: str
    fault_class: str
    source: str
    secondary: bool

    @property
    def responsible(self) -> str:
        return responsibility_words(self.responsibility)

    @property
    def label(self) -> str:
        return f"{self.code} {self.name}"

    @property
    def source_words(self) -> str:
        return f"Source: {self.source}" if self.source else "Source: not recorded"

    def as_json(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "description": self.description,
            "responsibility": self.responsibility,
            "responsible": self.responsible,
            "class": self.fault_class,
            "source": self.source,
            "secondary_source": self.secondary,
        }


@dataclass(frozen=True)
class _Row:
    error_code: str
    vendor: str
    vendor_error_code: str
    code: str

    @property
    def rank(self) -> int:
        """Vendor code beats vendor beats errorCode: the most specific mapping wins."""
        return 4 * bool(self.vendor_error_code) + 2 * bool(self.vendor) + bool(self.error_code)


class FaultTable:
    """The mapping table, read once for a page or an export."""

    def __init__(self) -> None:
        self.rows = [
            _Row(m.error_code, m.vendor.lower(), m.vendor_error_code, m.fault_code.code)
            for m in FaultCodeMapping.objects.select_related("fault_code")
            if m.error_code or m.vendor_error_code  # a row that names nothing matches nothing
        ]
        self.faults = {
            f.code: Fault(
                f.code,
                f.name,
                f.description,
                f.responsibility,
                f.fault_class,
                f.source,
                f.secondary_source,
            )
            for f in FaultCode.objects.all()
        }

    def faults_of(
        self, error_code: str, vendor_error_code: str = "", vendor: str = ""
    ) -> list[Fault]:
        """What a charger reported, as the MREC Faults it maps to."""
        return [
            self.faults[c]
            for c in self.codes(error_code, vendor_error_code, vendor)
            if c in self.faults
        ]

    def codes(self, error_code: str, vendor_error_code: str = "", vendor: str = "") -> list[str]:
        """The MREC codes of what a charger reported, in its order. MREC reports simultaneous
        faults in one StatusNotification, their vendorErrorCode (and vendorId) values separated
        by semicolons (EVgo's variant: commas); the N-th vendorId goes with the N-th code."""
        parts = [p.strip() for p in _SEPARATORS.split(vendor_error_code or "")]
        if len(parts) < 2:
            found = self._one(error_code, vendor_error_code, vendor)
            return [found] if found else []
        vendors = [v.strip() for v in _SEPARATORS.split(vendor or "")]
        if len(vendors) != len(parts):
            vendors = [vendor or ""] * len(parts)
        found_all = [self._one(error_code, p, v) for p, v in zip(parts, vendors, strict=True) if p]
        return list(dict.fromkeys(c for c in found_all if c))

    def code(self, error_code: str, vendor_error_code: str = "", vendor: str = "") -> str:
        """The MREC code ("CX002") of what a charger reported ("CX002;CX003" for simultaneous
        faults), or "" when none is mapped."""
        return ";".join(self.codes(error_code, vendor_error_code, vendor))

    def _one(self, error_code: str, vendor_error_code: str, vendor: str) -> str:
        error_code = (error_code or "").strip()
        vendor_error_code = (vendor_error_code or "").strip()
        if error_code in ("", "NoError") and not vendor_error_code:
            return ""
        vendor = (vendor or "").lower()
        matches = [
            r
            for r in self.rows
            if r.vendor in ("", vendor)
            and r.vendor_error_code in ("", vendor_error_code)
            and r.error_code in ("", error_code)
        ]
        return max(matches, key=lambda r: r.rank).code if matches else ""


# The table a block of work shares (`shared_table`): a page that looks at many chargers reads
# the mapping table once, not twice per charger (the dashboard's Needs attention: 16 queries).
_shared: ContextVar[FaultTable | None] = ContextVar("reliability_fault_table", default=None)


def table() -> FaultTable:
    """The table of the enclosing `shared_table` block, else one read now."""
    return _shared.get() or FaultTable()


@contextmanager
def shared_table() -> Iterator[FaultTable]:
    """Read the mapping table once for everything inside the block (one request's work: a
    table edited meanwhile is seen by the next request)."""
    current = _shared.get()
    if current is not None:
        yield current
        return
    fresh = FaultTable()
    token = _shared.set(fresh)
    try:
        yield fresh
    finally:
        _shared.reset(token)


def mrec_for(error_code: str, vendor_error_code: str = "", vendor: str = "") -> str:
    return table().code(error_code, vendor_error_code, vendor)


# 2.0.1: EVerest reports an MREC code as a NotifyEvent of the variable Problem with techCode
# "CXnnn" (eventNotificationType HardWiredNotification), actualValue "false" or cleared true when
# it clears. The newest 500 Problem events of a charger are read: far more than its open codes.
PROBLEM = "Problem"
_RECENT_PROBLEMS = 500


def _problem_open(event: ChargerEvent) -> bool:
    return event.cleared is not True and event.actual_value.strip().lower() != "false"


def _problem_port(event: ChargerEvent) -> int:
    evse = ((event.data or {}).get("component") or {}).get("evse") or {}
    try:
        return int(evse.get("id") or 0) if isinstance(evse, dict) else 0
    except (TypeError, ValueError):
        return 0


def open_problems(charger_id: int) -> dict[int, list[str]]:
    """The techCodes of the 2.0.1 Problem events still open on each port (0: the whole charger),
    the newest event of a (port, techCode) deciding."""
    newest: dict[tuple[int, str], bool] = {}
    events = ChargerEvent.objects.filter(charger_id=charger_id, variable=PROBLEM).order_by(
        "-timestamp", "-id"
    )[:_RECENT_PROBLEMS]
    for event in events:
        tech_code = str((event.data or {}).get("techCode") or "").strip()[:50]
        if tech_code:
            newest.setdefault((_problem_port(event), tech_code), _problem_open(event))
    found: dict[int, list[str]] = {}
    for (port, tech_code), is_open in sorted(newest.items()):
        if is_open:
            found.setdefault(port, []).append(tech_code)
    return found


def port_faults(charger: Charger) -> dict[int, list[dict]]:
    """The MREC faults open on each port of a charger, as the port shows them: the 1.6
    StatusNotification's errorCode/vendorErrorCode (EVerest: "CX016") and the 2.0.1 Problem
    events' techCode. Registered as chargers.web.providers.port_faults."""
    faults = table()
    found: dict[int, dict[str, Fault]] = {}
    for connector in Connector.objects.filter(charger=charger):
        for fault in faults.faults_of(
            connector.error_code, connector.vendor_error_code, charger.vendor
        ):
            found.setdefault(connector.connector_id, {})[fault.code] = fault
    for port, tech_codes in open_problems(charger.pk).items():
        for tech_code in tech_codes:
            for fault in faults.faults_of("", tech_code, charger.vendor):
                found.setdefault(port, {})[fault.code] = fault
    return {
        port: [
            f.as_json() | {"label": f.label, "source_words": f.source_words}
            for f in port_found.values()
        ]
        for port, port_found in found.items()
    }

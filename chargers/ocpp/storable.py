"""Make any decoded JSON value storable in PostgreSQL's jsonb and text columns. Pure.

A charger may send text PostgreSQL refuses (a NUL byte or a lone UTF-16 surrogate, both
legal as JSON escapes) and numbers JSON cannot hold (NaN, Infinity, 1e999). One such frame
used to make the log writer retry the same batch forever. Frames are cleaned before they
are buffered: the stored payload has those replaced by visible escapes and the frame is
kept losslessly, JSON-escaped, in `raw` (see docs/ocpp.md, "What is stored").
"""

from __future__ import annotations

import json
import math
import re
import threading
from typing import Any

# Test on a frame's text, where it was not decoded by `loads_flagged`: only frames that may hold
# such values are walked. A float overflows by its exponent or by 309 digits before its point.
_SUSPECT = re.compile(r"\\u|\x00|NaN|Infinity|[eE][+-]?\d{3}|\d{309}")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


def _escape_char(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def clean_text(text: str) -> str:
    """Replace NUL and lone surrogates with their visible \\uXXXX escapes."""
    if text.isascii() and "\x00" not in text:  # nearly every text; isascii() reads a flag
        return text
    return _BAD_CHAR.sub(_escape_char, text)


def text_is_clean(text: str) -> bool:
    if text.isascii():
        return "\x00" not in text
    return _BAD_CHAR.search(text) is None


def clean_value(value: Any) -> tuple[Any, bool]:
    """Return (storable copy of value, whether anything had to change)."""
    if isinstance(value, str):
        if _BAD_CHAR.search(value):
            return clean_text(value), True
        return value, False
    if isinstance(value, float):
        if math.isfinite(value):
            return value, False
        return ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")), True
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            clean_key, key_changed = clean_value(key)
            clean_item, item_changed = clean_value(item)
            out[clean_key] = clean_item
            changed = changed or key_changed or item_changed
        return (out, True) if changed else (value, False)
    if isinstance(value, list):
        items = [clean_value(item) for item in value]
        if any(changed for _, changed in items):
            return [item for item, _ in items], True
        return value, False
    return value, False


def clean_texts(value: Any) -> Any:
    """A copy of `value` with every string in it (keys too) cleaned by clean_text. Numbers are
    left as they are: a NaN reading stays a number for the handler to judge."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_texts(key): clean_texts(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clean_texts(item) for item in value]
    return value


def may_need_cleaning(text: str) -> bool:
    return _SUSPECT.search(text) is not None


def ours_may_need_cleaning(text: str) -> bool:
    """`may_need_cleaning` for a frame written by `chargers.ocpp.protocol.dumps`: it writes NUL
    and lone surrogates as \\u escapes, a non-finite float as NaN or Infinity, never an
    overflowing number. Literal tests instead of the regular expression: every answer we send is
    logged (docs/performance.md)."""
    return "\\u" in text or "NaN" in text or "Infinity" in text


_decoding = threading.local()


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e999, or 400 digits: finite in JSON, not in a float or in jsonb
        _decoding.nonfinite = True
    return value


def _constant(name: str) -> float:
    _decoding.nonfinite = True  # NaN, Infinity, -Infinity: Python's JSON extension
    return float(name)


_DECODER = json.JSONDecoder(parse_float=_float, parse_constant=_constant)


def loads_flagged(text: str) -> tuple[Any, bool]:
    """`json.loads(text)`, and whether the value may need `clean_value` before it is stored: it
    holds a non-finite number, or text with a \\u escape (NUL and lone surrogates come only as
    escapes in valid JSON). As precise as `may_need_cleaning` and cheaper than it on every frame:
    the regular expression scan cost more than the decoding (docs/performance.md, session 10)."""
    _decoding.nonfinite = False
    value = _DECODER.decode(text)
    return value, _decoding.nonfinite or "\\u" in text or "\x00" in text


def escaped_raw(text: str) -> str:
    """The frame text as a JSON string literal: ASCII only, lossless (json.loads gives it back)."""
    return json.dumps(text)

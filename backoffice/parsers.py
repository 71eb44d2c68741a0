"""JSON in and out of the API for text that is not valid Unicode.

JSON can carry a lone surrogate ("\\ud800", half of a UTF-16 pair), which Python decodes into a
str no encoder accepts: echoed in a validation error ('"\\ud800" is not a valid choice') it made
the renderer fail with a 500, and stored it would fail in the database. The parser refuses such
a body with a 400 in plain words; the renderer escapes anything that still cannot be encoded.
"""

from __future__ import annotations

import io
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer


def holds_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(holds_lone_surrogate(k) or holds_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_lone_surrogate(item) for item in value)
    return False


# Deeper than any body we read (OCPI objects nest about 6 levels); Python's decoder recurses once
# per level and raised RecursionError (a 500) at about 1,000 (issue 47).
MAX_JSON_DEPTH = 64
DEPTH_MESSAGE = f"JSON nested too deeply: at most {MAX_JSON_DEPTH} levels of [ and {{."
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def nested_too_deeply(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text opens more than `limit` arrays or objects inside one another,
    counted before it is decoded (brackets inside strings do not count)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _JSON_BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        if bracket[0] in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


class UnicodeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        body = stream.read() if stream is not None else b""
        if nested_too_deeply(body):
            raise ParseError(DEPTH_MESSAGE)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:  # DRF's own message is Python's codec error text
            raise ParseError(
                f"The body is not UTF-8 text, as JSON must be: byte 0x{exc.object[exc.start]:02x} "
                f"at position {exc.start}."
            ) from None
        data = super().parse(io.BytesIO(body), media_type, parser_context)
        if holds_lone_surrogate(data):
            raise ParseError(
                "The JSON holds a lone surrogate (an escape from \\ud800 to \\udfff without its "
                "pair), which is not text: send valid Unicode."
            )
        return data


class SafeJSONRenderer(JSONRenderer):
    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:  # text that is not valid Unicode: escape it (\udXXX)
            self.ensure_ascii = True  # this response's renderer only
            return super().render(data, accepted_media_type, renderer_context)

"""JSON in and out of the API for text that is not valid Unicode.

JSON can carry a lone surrogate ("\\ud800", half of a UTF-16 pair), which Python decodes into a
str no encoder accepts: echoed in a validation error ('"\\ud800" is not a valid choice') it made
the renderer fail with a 500, and stored it would fail in the database. The parser refuses such
a body with a 400 in plain words; the renderer escapes anything that still cannot be encoded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, MultiPartParser
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


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


# Python's decoder messages (json.JSONDecodeError.msg) in the house's words.
_DECODE_WORDS = (
    (
        "Expecting value",
        "a value (a string, number, object, array, true, false or null) was expected",
    ),
    ("Expecting property name", "a key in double quotes was expected"),
    ("Expecting ',' delimiter", "a comma was expected between two items"),
    ("Expecting ':' delimiter", "a colon was expected after a key"),
    ("Extra data", "more text follows the JSON value; send one value only"),
    ("Unterminated string", "a string is not closed with a double quote"),
    (
        "Invalid control character",
        "a string holds a control character (such as a raw line break), which must be escaped",
    ),
    ("Invalid \\escape", "a string holds a backslash escape JSON does not have"),
    ("Invalid \\uXXXX escape", "a string holds a \\u escape without four hex digits"),
)


def json_error_sentence(exc: json.JSONDecodeError) -> str:
    """Where and what is wrong with a JSON body, in plain words (no decoder text)."""
    what = next((words for start, words in _DECODE_WORDS if exc.msg.startswith(start)), "")
    where = f"line {exc.lineno}, column {exc.colno}"
    if not exc.doc.strip():
        return "The body is empty: send a JSON value (for example an object in { })."
    return f"The body is not valid JSON at {where}" + (f": {what}." if what else ".")


def json_parse(text: str) -> Any:
    """Decode a JSON body, or raise ParseError with a sentence in the house's words: NaN and
    Infinity are refused (JSON has no such numbers; DRF's STRICT_JSON), and so is a number of
    more than 4,300 digits (Python's limit on converting digits to an int)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except _NotANumber:
        raise ParseError(
            "The body is not valid JSON: NaN and Infinity are not numbers JSON allows."
        ) from None
    except json.JSONDecodeError as exc:
        raise ParseError(json_error_sentence(exc)) from None
    except ValueError:  # int() of too many digits (sys.get_int_max_str_digits)
        raise ParseError(
            "The body is not valid JSON here: a number has more than 4,300 digits."
        ) from None
    except RecursionError:  # nested_too_deeply runs first; this is the last guard
        raise ParseError(DEPTH_MESSAGE) from None


class HouseMultiPartParser(MultiPartParser):
    """multipart/form-data with its errors in plain words, not the library's."""

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except ParseError:
            raise ParseError(
                "The body is not a valid multipart/form-data form (check its boundary and "
                "parts), or send JSON with Content-Type: application/json."
            ) from None


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
        data = json_parse(body.decode("utf-8"))
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

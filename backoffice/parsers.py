"""JSON in and out of the API for text that is not valid Unicode.

JSON can carry a lone surrogate ("\\ud800", half of a UTF-16 pair), which Python decodes into a
str no encoder accepts: echoed in a validation error ('"\\ud800" is not a valid choice') it made
the renderer fail with a 500, and stored it would fail in the database. The parser refuses such
a body with a 400 in plain words; the renderer escapes anything that still cannot be encoded.
"""

from __future__ import annotations

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


class UnicodeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        data = super().parse(stream, media_type, parser_context)
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

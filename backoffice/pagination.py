"""Paging of the API's lists: a page of API_PAGE_SIZE rows unless `limit` asks for another size,
never more than API_MAX_LIMIT. A limit or offset that is not a whole number in range is answered
with 400 saying the range, instead of a whole table or a database overflow (a 500). A `page`
(the other common style) is a 400 that says how these lists page: ignored, it answered the first
page for every page, and a client walking pages read the same rows forever."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

# Far beyond any table's size, well inside a 64-bit OFFSET on SQLite and PostgreSQL.
MAX_OFFSET = 1_000_000_000
MAX_ID = 2**63 - 1


def query_int(
    request: Request, name: str, *, default: int | None, low: int, high: int
) -> int | None:
    """The query parameter `name` as a whole number from `low` to `high`; `default` when absent.
    Anything else is a 400 naming the range."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    value = raw.strip()
    if value.isascii() and value.isdigit() and len(value) <= 19 and low <= int(value) <= high:
        return int(value)
    raise ValidationError({name: [f"Use a whole number from {low} to {high}."]})


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    """The query parameter `name` as one of `choices` (any case), "" when absent. Anything else is
    a 400 naming the choices: a filter with a mistyped value answered every row, as if the
    filter held."""
    raw = request.query_params.get(name, "").strip()
    if raw == "":
        return ""
    for choice in choices:
        if raw.lower() == choice.lower():
            return choice
    raise ValidationError({name: [f"Use one of: {', '.join(choices)}."]})


def query_bool(request: Request, name: str) -> bool | None:
    """The query parameter `name` as true/false (or 1/0), None when absent; anything else a 400."""
    value = query_choice(request, name, ("true", "false", "1", "0"))
    return None if value == "" else value in ("true", "1")


class CappedLimitOffsetPagination(LimitOffsetPagination):
    @property
    def default_limit(self) -> int:
        return settings.API_PAGE_SIZE

    @property
    def max_limit(self) -> int:
        return settings.API_MAX_LIMIT

    def get_limit(self, request: Request) -> int:
        limit = query_int(
            request, self.limit_query_param, default=self.default_limit, low=1, high=self.max_limit
        )
        return limit or self.default_limit

    def get_offset(self, request: Request) -> int:
        if "page" in request.query_params:
            raise ValidationError(
                {
                    "page": [
                        "This list pages by offset, not by page number: ask for "
                        f"?{self.offset_query_param}= (the rows to skip) and "
                        f"?{self.limit_query_param}= (rows per page, at most {self.max_limit}), "
                        "or follow the answer's `next` link."
                    ]
                }
            )
        return query_int(request, self.offset_query_param, default=0, low=0, high=MAX_OFFSET) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["description"] = (
                    f"Rows per page: {self.default_limit} unless given, at most {self.max_limit}."
                )
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_limit}
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
        return parameters

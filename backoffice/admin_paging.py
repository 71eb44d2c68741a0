"""Admin paging for tables of millions of rows (OCPP messages, meter values, sessions, decisions).

Django's admin counts the whole (filtered) queryset on every page: COUNT(*) over 10M rows takes
seconds. This paginator reads PostgreSQL's row estimate for an unfiltered list and counts at most
CAP rows of a filtered one, so a page costs an index scan and a bounded count.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

CAP = 10_000


class EstimatedCountPaginator(Paginator):
    """A paginator whose count is PostgreSQL's estimate (unfiltered) or capped at CAP + 1 (filtered)."""

    @cached_property
    def count(self) -> int:
        queryset: Any = self.object_list
        query = getattr(queryset, "query", None)
        if query is None:
            return len(queryset)
        connection = connections[queryset.db]
        if not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > CAP:  # -1 / small: never analyzed or small enough to count exactly
                return int(row[0])
        # COUNT over a LIMIT subquery: bounded however many rows match.
        return int(queryset.order_by()[: CAP + 1].count())


def fixed_choices_filter(field: str, title: str, choices: list[str]) -> type:
    """Return a list filter offering fixed values: Django's default for a plain text field runs
    SELECT DISTINCT over the whole table on every page (seconds at millions of rows)."""
    from django.contrib import admin

    class FixedChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
            return [(value, value) for value in choices]

        def queryset(self, request: Any, queryset: Any) -> Any:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    FixedChoicesFilter.title = title
    return FixedChoicesFilter


# OCPP 1.6 and 2.0.1 actions, for filters on the message log (its `action` column).
OCPP_ACTIONS = [
    "Authorize",
    "BootNotification",
    "CancelReservation",
    "ChangeAvailability",
    "ChangeConfiguration",
    "ClearCache",
    "DataTransfer",
    "GetConfiguration",
    "GetVariables",
    "Heartbeat",
    "MeterValues",
    "NotifyEvent",
    "RemoteStartTransaction",
    "RemoteStopTransaction",
    "RequestStartTransaction",
    "RequestStopTransaction",
    "ReserveNow",
    "Reset",
    "SetVariables",
    "StartTransaction",
    "StatusNotification",
    "StopTransaction",
    "TransactionEvent",
    "TriggerMessage",
    "UnlockConnector",
]
# OCPP 1.6 StopTransaction reasons (7.30) and ours ("Superseded").
STOP_REASONS = [
    "DeAuthorized",
    "EmergencyStop",
    "EVDisconnected",
    "HardReset",
    "Local",
    "Other",
    "PowerLoss",
    "Reboot",
    "Remote",
    "SoftReset",
    "UnlockCommand",
    "Superseded",
]

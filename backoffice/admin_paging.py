"""Admin paging for tables of millions of rows (OCPP messages, meter values, sessions, decisions).

Django's admin counts the whole (filtered) queryset on every page: COUNT(*) over 10M rows takes
seconds. This paginator reads PostgreSQL's row estimate for an unfiltered list and counts at most
CAP rows of a filtered one, so a page costs an index scan and a bounded count.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections, models
from django.utils import timezone
from django.utils.functional import cached_property

CAP = 10_000
# The most periods one probing query asks about (a year's months, a month's days, the years of a
# decade fit); a wider range is left to Django's own DISTINCT.
MAX_PROBES = 400


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


def _next(start: dt.datetime, kind: str) -> dt.datetime:
    if kind == "year":
        return start.replace(year=start.year + 1)
    if kind == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return (start + dt.timedelta(days=1)).replace(hour=0)


def _periods(first: dt.datetime, last: dt.datetime, kind: str) -> list[dt.datetime]:
    """The local starts of every year/month/day from `first` to `last` (naive local times)."""
    start = first.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind in ("year", "month"):
        start = start.replace(day=1)
    if kind == "year":
        start = start.replace(month=1)
    periods: list[dt.datetime] = []
    while start <= last and len(periods) <= MAX_PROBES:
        periods.append(start)
        start = _next(start, kind)
    return periods


class ProbedDatesQuerySet(models.QuerySet[Any]):
    """`dates()` / `datetimes()` for the admin's date hierarchy without SELECT DISTINCT over the
    table: the (filtered) rows' first and last value (two index reads), then one query asking, for
    each year, month or day between them, whether a row falls in it (an index probe each). Over a
    million sessions Django's DISTINCT date_trunc took ~300 ms per list page."""

    def _probed(self, field_name: str, kind: str, as_dates: bool) -> list[Any]:
        if kind not in ("year", "month", "day"):
            return []
        bounds = self.aggregate(first=models.Min(field_name), last=models.Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        aware = not as_dates and timezone.is_aware(first)
        if aware:
            first, last = timezone.localtime(first), timezone.localtime(last)
        if as_dates:
            first = dt.datetime.combine(first, dt.time())
            last = dt.datetime.combine(last, dt.time())
        try:
            periods = _periods(first.replace(tzinfo=None), last.replace(tzinfo=None), kind)
        except (ValueError, OverflowError):  # a row in year 9999: no next period to probe to
            periods = [first] * (MAX_PROBES + 1)
        if len(periods) > MAX_PROBES:
            return list(
                getattr(super(), "datetimes" if not as_dates else "dates")(field_name, kind)
            )

        def edge(moment: dt.datetime) -> Any:
            if as_dates:
                return moment.date()
            return timezone.make_aware(moment) if aware else moment

        probes = {
            f"p{n}": models.Exists(
                self.filter(
                    **{
                        f"{field_name}__gte": edge(start),
                        f"{field_name}__lt": edge(_next(start, kind)),
                    }
                )
            )
            for n, start in enumerate(periods)
        }
        found = self.model._default_manager.using(self.db).annotate(**probes).values(*probes)[:1]
        row = next(iter(found), None) or {}
        return [edge(start) for n, start in enumerate(periods) if row.get(f"p{n}")]

    def dates(self, field_name: str, kind: Any, order: Any = "ASC") -> Any:
        days = self._probed(field_name, kind, as_dates=True)
        return days[::-1] if order == "DESC" else days

    def datetimes(
        self, field_name: str, kind: Any, order: Any = "ASC", tzinfo: Any = None, **kwargs: Any
    ) -> Any:
        if tzinfo is not None or kwargs:
            return super().datetimes(field_name, kind, order, tzinfo, **kwargs)
        moments = self._probed(field_name, kind, as_dates=False)
        return moments[::-1] if order == "DESC" else moments


class _BoundedDateChangeList(ChangeList):
    def get_filters(self, request: Any) -> Any:
        try:
            return super().get_filters(request)
        except OverflowError as exc:
            # Django steps a month or a day past the date hierarchy's choice: December 9999
            # (?created_at__year=9999&created_at__month=12) went past date.max, a 500.
            raise IncorrectLookupParameters(exc) from exc


class DateHierarchyInRange:
    """ModelAdmin mixin for every admin with a date hierarchy: a year, month or day at the edge
    of the calendar is a bad filter (the admin's usual "?e=1" redirect), not a server error."""

    def get_changelist(self, request: Any, **kwargs: Any) -> Any:
        return _BoundedDateChangeList


class ProbedDateHierarchy(DateHierarchyInRange):
    """ModelAdmin mixin: the changelist's date hierarchy asks `ProbedDatesQuerySet`, so its
    year, month and day links cost index probes, not a scan of the table."""

    def get_queryset(self, request: Any) -> Any:
        queryset = cast(Any, super()).get_queryset(request)  # a ModelAdmin's, after this mixin
        probed = ProbedDatesQuerySet(
            model=queryset.model, query=queryset.query.chain(), using=queryset.db
        )
        return probed


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
# OCPP 1.6 StopTransaction reasons (7.30) and our estimates ("Superseded", "NoStopTransaction",
# "NoEndedEvent").
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
    "NoStopTransaction",
    "NoEndedEvent",
]

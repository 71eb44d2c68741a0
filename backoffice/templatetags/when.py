"""Times and dates on pages, one way everywhere (issue 35 items 6 and 7).

    {{ session.started_at|when }}             24 Nov 2026, 08:45 CET  (the page's zone)
    {{ session.started_at|when:session }}      in the session's location's zone
    {{ decision.created_at|when_seconds }}     24 Nov 2026, 08:45:11 CET
    {{ value|when_time }} / {{ value|when_time_s }}   08:45 CET / 08:45:11 CET
    {{ value|when_date }}                      24 Nov 2026

The zone argument may be a zone name, a location (Property), or anything with a charger or a
property (a charger, a session, a guest session); without one, the zone active for the request
(the viewer's, or the location's on a page about one location).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import template
from django.utils import timezone

from backoffice import formatting

register = template.Library()

# True while a page is rendered for a viewer who chose one zone for every time (the dashboard's
# "Show times in"): then each row's location zone gives way to it (ViewerTimezoneMiddleware).
viewer_zone_chosen: ContextVar[bool] = ContextVar("viewer_zone_chosen", default=False)


def _current() -> ZoneInfo:
    current = timezone.get_current_timezone()
    return current if isinstance(current, ZoneInfo) else formatting.zone_or_utc(str(current))


def zone_of(source: Any = None) -> ZoneInfo:
    """The zone to show a time in, from a zone name or an object that has a location."""
    if viewer_zone_chosen.get():
        return _current()
    if isinstance(source, ZoneInfo):
        return source
    if isinstance(source, str) and source:
        return formatting.zone_or_utc(source)
    for path in ("timezone", "property.timezone", "charger.property.timezone"):
        value: Any = source
        for name in path.split("."):
            value = getattr(value, name, None) if value is not None else None
        if isinstance(value, str) and value:
            return formatting.zone_or_utc(value)
    return _current()


# An empty value renders empty, so `|default:"never"` still reads as before.


@register.filter
def when(value: datetime | None, source: Any = None) -> str:
    return formatting.datetime_text(value, zone_of(source)) if value else ""


@register.filter
def when_seconds(value: datetime | None, source: Any = None) -> str:
    return formatting.datetime_text(value, zone_of(source), seconds=True) if value else ""


@register.filter
def when_ms(value: datetime | None, source: Any = None) -> str:
    """With milliseconds, for the OCPP log."""
    return formatting.datetime_text(value, zone_of(source), milliseconds=True) if value else ""


@register.filter
def when_time(value: datetime | None, source: Any = None) -> str:
    return formatting.time_text(value, zone_of(source)) if value else ""


@register.filter
def when_time_s(value: datetime | None, source: Any = None) -> str:
    return formatting.time_text(value, zone_of(source), seconds=True) if value else ""


@register.filter
def when_date(value: date | datetime | None, source: Any = None) -> str:
    return formatting.date_text(value, zone_of(source)) if value else ""

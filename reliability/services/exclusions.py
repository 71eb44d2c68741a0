"""Exclusions from uptime, with the regulators' caps (docs/reliability.md, "Exclusions"):
vandalism at most 10 days per incident, planned maintenance at most 72 hours a calendar year
per port; grid power loss and natural disasters have no cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chargers.models import Charger

from .. import outages, window
from ..models import Exclusion, ExclusionAudit
from . import timeline

VANDALISM_CAP = timedelta(days=10)
MAINTENANCE_CAP_PER_YEAR = timedelta(hours=72)


def _year_bounds(year: int, tz: tzinfo) -> tuple[datetime, datetime]:
    return datetime(year, 1, 1, tzinfo=tz), datetime(year + 1, 1, 1, tzinfo=tz)


def _overlap(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> timedelta:
    """Real time in both (in UTC: two times of one zone subtract on the wall clock, which gives
    72 hours for the 73 from noon to noon over the night the clocks go back)."""
    latest_start = max(a_start, b_start).astimezone(UTC)
    return max(min(a_end, b_end).astimezone(UTC) - latest_start, timedelta(0))


def maintenance_used(charger: Charger, connector_id: int | None, year: int) -> timedelta:
    """Planned maintenance already excluded in that calendar year on the port (the most of any
    port, when connector_id is None: a charger-wide exclusion counts for every port)."""
    tz = timezone.get_current_timezone()
    year_start, year_end = _year_bounds(year, tz)
    rows = Exclusion.objects.filter(
        charger=charger,
        reason=Exclusion.Reason.PLANNED_MAINTENANCE,
        withdrawn_at__isnull=True,
        start__lt=year_end,
        end__gt=year_start,
    )
    per_port: dict[int | None, timedelta] = {}
    for row in rows:
        used = _overlap(row.start, row.end, year_start, year_end)
        per_port[row.connector_id] = per_port.get(row.connector_id, timedelta(0)) + used
    whole = per_port.pop(None, timedelta(0))
    if connector_id is None:
        return whole + max(per_port.values(), default=timedelta(0))
    return whole + per_port.get(connector_id, timedelta(0))


def cap_refusal(
    charger: Charger, connector_id: int | None, start: datetime, end: datetime, reason: str
) -> str | None:
    """Why the regulators would not accept this exclusion, in plain words; None: it is within."""
    if end <= start:
        return "The end must be after the start."
    if reason == Exclusion.Reason.VANDALISM and _overlap(start, end, start, end) > VANDALISM_CAP:
        return "A vandalism exclusion covers at most 10 days per incident."
    if reason == Exclusion.Reason.PLANNED_MAINTENANCE:
        tz = timezone.get_current_timezone()
        for year in range(start.astimezone(tz).year, end.astimezone(tz).year + 1):
            year_start, year_end = _year_bounds(year, tz)
            asked = _overlap(start, end, year_start, year_end)
            used = maintenance_used(charger, connector_id, year)
            if used + asked > MAINTENANCE_CAP_PER_YEAR:
                left = max(MAINTENANCE_CAP_PER_YEAR - used, timedelta(0))
                hours = left.total_seconds() / 3600
                return (
                    f"Planned maintenance is excluded for at most 72 hours a year per port; "
                    f"{hours:g} hours are left for {year}."
                )
    return None


UNPLANNED_AHEAD = timedelta(days=1)
UNPLANNED = (
    Exclusion.Reason.VANDALISM,
    Exclusion.Reason.GRID_OUTAGE,
    Exclusion.Reason.NATURAL_DISASTER,
)


def bounds_refusal(
    charger: Charger,
    connector_id: int | None,
    start: datetime,
    end: datetime,
    reason: str,
    now: datetime,
) -> dict[str, str] | None:
    """Why the exclusion cannot be entered at all, by field; None: it fits. The port is one of
    the charger's; both dates lie in the reporting window; an unplanned cause (vandalism, grid
    power loss, a disaster) is entered while or after it happens, so it ends at most a day after
    now (an outage in progress and its expected end): further ahead it would hide a real fault
    yet to come (issue 47)."""
    if connector_id is not None and connector_id not in timeline.ports_of(charger):
        return {"connector_id": f"Charger {charger.station_id} has no port {connector_id}."}
    tz = timezone.get_current_timezone()
    for field, moment in (("start", start), ("end", end)):
        refusal = window.outside(moment, now, tz)
        if refusal:
            return {field: refusal}
    if reason in UNPLANNED and end > now + UNPLANNED_AHEAD:
        return {
            "end": "An unplanned cause is entered while or after it happens: "
            "its end is at most a day from now."
        }
    return None


def _facts(exclusion: Exclusion) -> dict:
    return {
        "station_id": exclusion.charger.station_id,
        "connector_id": exclusion.connector_id,
        "start": exclusion.start.isoformat(),
        "end": exclusion.end.isoformat(),
        "reason": exclusion.reason,
        "note": exclusion.note,
    }


def exclusion_create(
    *,
    charger: Charger,
    connector_id: int | None,
    start: datetime,
    end: datetime,
    reason: str,
    note: str = "",
    by: Any = None,
) -> Exclusion:
    """Enter an exclusion within the caps (checked under a lock on the charger, so two at once
    cannot both take the last hours); a refusal is audited and raised as ValidationError."""
    refusal: str | dict[str, str] | None = bounds_refusal(
        charger, connector_id, start, end, reason, timezone.now()
    )
    with transaction.atomic():
        Charger.objects.select_for_update().filter(pk=charger.pk).first()
        refusal = refusal or cap_refusal(charger, connector_id, start, end, reason)
        if refusal is None:
            exclusion = Exclusion.objects.create(
                charger=charger,
                connector_id=connector_id,
                start=start,
                end=end,
                reason=reason,
                note=note,
                created_by=by,
            )
            ExclusionAudit.objects.create(
                exclusion=exclusion,
                charger=charger,
                action=ExclusionAudit.Action.CREATED,
                by=by,
                details=_facts(exclusion),
            )
            return exclusion
    asked = Exclusion(
        charger=charger, connector_id=connector_id, start=start, end=end, reason=reason, note=note
    )
    ExclusionAudit.objects.create(
        charger=charger,
        action=ExclusionAudit.Action.REFUSED,
        by=by,
        details={**_facts(asked), "refusal": refusal},
    )
    raise ValidationError(refusal)


@transaction.atomic
def exclusion_withdraw(exclusion: Exclusion, by: Any = None) -> Exclusion:
    """Withdraw the exclusion once: a second withdrawal (two tabs, two agents) keeps the first's
    time and adds no second audit row."""
    now = timezone.now()
    if Exclusion.objects.filter(pk=exclusion.pk, withdrawn_at__isnull=True).update(
        withdrawn_at=now
    ):
        exclusion.withdrawn_at = now
        ExclusionAudit.objects.create(
            exclusion=exclusion,
            charger=exclusion.charger,
            action=ExclusionAudit.Action.WITHDRAWN,
            by=by,
            details=_facts(exclusion),
        )
    else:
        exclusion.refresh_from_db(fields=["withdrawn_at"])
    return exclusion


@transaction.atomic
def exclusion_delete(exclusion: Exclusion, by: Any = None) -> None:
    """Staff only (the admin, DELETE /api/v1/exclusions/{id}/): the exclusion goes, its audit
    rows stay, and one more says who deleted what."""
    details = _facts(exclusion) | {
        "withdrawn_at": exclusion.withdrawn_at and exclusion.withdrawn_at.isoformat()
    }
    charger = exclusion.charger
    exclusion.delete()
    ExclusionAudit.objects.create(
        charger=charger, action=ExclusionAudit.Action.DELETED, by=by, details=details
    )


def exclusion_spans(charger: Charger, connector_id: int) -> list[outages.Span]:
    """The exclusions in force on this port (its own and its charger's)."""
    rows = Exclusion.objects.filter(
        Q(connector_id__isnull=True) | Q(connector_id=connector_id),
        charger=charger,
        withdrawn_at__isnull=True,
    ).order_by("start")
    return [outages.Span(row.start, row.end) for row in rows]

"""The assistant's findings for a host's chargers: what the portal's "Needs attention" and the
Support page show, from the same diagnosis the assistant answers with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from chargers.models import Charger
from chargers.web.filters import chargers_with_state
from reliability.services import shared_fault_table

from .assistant.diagnosis import Viewer, diagnose
from .assistant.refusals import current_refusal_stations
from .assistant.topics import Finding, Topic
from .models import Ticket

MAX_CHARGERS = 8


@dataclass
class ChargerFinding:
    charger: Charger
    problem: str  # "faulted" | "offline" | "refused"
    facts: list[str]


def host_findings(
    user: Any, *, now: datetime | None = None, limit: int = MAX_CHARGERS
) -> list[ChargerFinding]:
    """Return the user's chargers that need attention (faulted, offline, refusing cards in the
    last 24 h that are still refused now) with the assistant's facts about each, worst first;
    one sentence per card and reason, each with its time."""
    now = now or timezone.now()
    with_state = chargers_with_state(user)  # shared with the dashboard's own figures
    chargers = [charger for charger, _ in with_state]
    viewer = Viewer.for_user(user)
    states = {charger.pk: state for charger, state in with_state}
    # Only refusals still a problem now: not the ones whose card was whitelisted or has charged.
    refused = current_refusal_stations(
        [c for c in chargers if states[c.pk] == "online"],
        since=now - timedelta(hours=24),
        now=now,
    )
    order = {"faulted": 0, "offline": 1, "refused": 2}
    problems = []
    for charger in chargers:
        state = states[charger.pk]
        if state == "online" and charger.station_id in refused:
            state = "refused"
        if state in order:
            problems.append((order[state], charger.station_id, charger, state))
    problems.sort(key=lambda p: (p[0], p[1]))
    findings = []
    with shared_fault_table():  # one read of the fault-code table for every charger below
        for _rank, _sid, charger, state in problems[:limit]:
            finding = _finding(viewer, charger, state, now)
            if finding is not None:
                findings.append(finding)
    return findings


def _finding(viewer: Viewer, charger: Any, state: str, now: datetime) -> ChargerFinding | None:
    topic = Topic.NO_PERMISSION if state == "refused" else Topic.CHARGER_OFFLINE
    # A short row each (issue 51 items 4 and 8): the charger's uptime and alerts are on its
    # own pages (and in the dashboard's alert rows), not recomputed here per charger.
    diagnosis = diagnose(
        topic, viewer=viewer, station_id=charger.station_id, now=now, reliability=False
    )
    facts = [f for f in diagnosis.facts if " is online (" not in f]
    if state == "faulted" and Finding.FAULTED not in diagnosis.findings:
        return None
    return ChargerFinding(charger, state, facts)


def tickets_for(user: Any) -> QuerySet[Ticket]:
    """Return the tickets a host may see: their organizations' and the ones they opened."""
    tickets = Ticket.objects.select_related("charger", "property")
    if user.is_staff:
        return tickets
    ids = Viewer.for_user(user).organization_ids or []
    from django.db.models import Q

    return tickets.filter(Q(organization_id__in=ids) | Q(requested_by=user))

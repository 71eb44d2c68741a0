"""Uptime per port, counted from the timeline (reliability.services.timeline) by the pure rules of
reliability.outages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from chargers.models import Charger

from .. import outages
from . import timeline
from .exclusions import exclusion_spans

# NEVI (23 CFR 680.116(b)) and CEC: each port at least 97 % up.
TARGET_PERCENT = 97.0


@dataclass(frozen=True)
class PortUptime:
    charger: Charger
    connector_id: int
    uptime: outages.Uptime


def port_uptime(
    charger: Charger, connector_id: int, start: datetime, end: datetime, now: datetime | None = None
) -> PortUptime:
    now = now or timezone.now()
    facts = timeline.port_facts(charger, connector_id, start, end)
    result = outages.port_uptime(
        start=start,
        end=end,
        now=now,
        port=facts.port,
        whole=facts.whole,
        links=facts.links,
        attempts=facts.attempts,
        host_off=facts.host_off,
        exclusions=exclusion_spans(charger, connector_id),
        failed_start_after_s=timeline.failed_start_after_s(),
        firmware=facts.firmware,
    )
    return PortUptime(charger, connector_id, result)


def charger_uptime(
    charger: Charger, start: datetime, end: datetime, now: datetime | None = None
) -> list[PortUptime]:
    """Every port of the charger; its connection changes brought up to date first."""
    now = now or timezone.now()
    timeline.links_sync([charger], now)
    return [port_uptime(charger, port, start, end, now) for port in timeline.ports_of(charger)]


def aggregate(ports: list[PortUptime]) -> outages.Uptime:
    """All ports together: their time, outages and exclusions summed (port-weighted uptime)."""
    return outages.Uptime(
        outages=(),
        period_seconds=sum(p.uptime.period_seconds for p in ports),
        outage_seconds=sum(p.uptime.outage_seconds for p in ports),
        excluded_seconds=sum(p.uptime.excluded_seconds for p in ports),
    )

"""The port timeline: what chargers records, copied into PortEvent as it happens, and read back
as the facts reliability.outages counts (docs/reliability.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from chargers.models import (
    Charger,
    ChargerEvent,
    ChargingSession,
    Command,
    Connector,
    MeterValue,
    OcppMessage,
    StatusEvent,
    TransactionEvent,
)

from .. import outages
from ..models import PortEvent

# Statuses of a port with nothing plugged in.
_EMPTY = {"Available"}
_ENERGY = "Energy.Active.Import.Register"


def failed_start_after_s() -> int:
    return int(getattr(settings, "RELIABILITY_FAILED_START_AFTER_S", outages.FAILED_START_AFTER_S))


# -- recording ------------------------------------------------------------------------------------


def statuses_record(ports: Iterable[tuple[int, int]]) -> int:
    """Copy the StatusNotifications (1.6 and 2.0.1) of these ports that are not on the timeline
    yet; the newest carries the connector's vendor code and info. Returns how many were new."""
    rows = []
    for charger_id, connector_id in set(ports):
        last = (
            PortEvent.objects.filter(
                charger_id=charger_id,
                connector_id=connector_id,
                source__startswith="status_event:",
            )
            .order_by("-id")
            .values_list("source", flat=True)
            .first()
        )
        after = int(last.split(":", 1)[1]) if last else 0
        events = list(
            StatusEvent.objects.filter(
                charger_id=charger_id, connector_id=connector_id, id__gt=after
            ).order_by("id")[:1000]
        )
        if not events:
            continue
        connector = Connector.objects.filter(
            charger_id=charger_id, connector_id=connector_id
        ).first()
        for event in events:
            newest = (
                connector is not None and event is events[-1] and connector.status == event.status
            )
            rows.append(
                PortEvent(
                    charger_id=charger_id,
                    connector_id=connector_id,
                    kind=PortEvent.Kind.STATUS,
                    at=event.timestamp,
                    status=event.status,
                    error_code=event.error_code,
                    vendor_error_code=connector.vendor_error_code if newest and connector else "",
                    info=connector.info if newest and connector else "",
                    source=f"status_event:{event.pk}",
                )
            )
    PortEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def charger_event_record(event: ChargerEvent) -> bool:
    """A 2.0.1 NotifyEvent that reports a connector's or EVSE's AvailabilityState is a status
    change of that port (the EVSE number is our connector id, as for StatusNotification)."""
    if event.variable != "AvailabilityState" or not event.actual_value:
        return False
    component = (event.data or {}).get("component") or {}
    evse = component.get("evse") or {}
    try:
        connector_id = int(evse.get("id") or 0)
    except (TypeError, ValueError):
        return False
    PortEvent.objects.bulk_create(
        [
            PortEvent(
                charger_id=event.charger_id,
                connector_id=connector_id,
                kind=PortEvent.Kind.STATUS,
                at=event.timestamp,
                status=event.actual_value[:30],
                error_code="",
                # EVerest sends its MREC code as techCode; older chargers put a code in techInfo.
                vendor_error_code=str((event.data or {}).get("techCode") or event.tech_info)[:50],
                info=f"NotifyEvent {component.get('name', '')}"[:500],
                source=f"charger_event:{event.pk}",
            )
        ],
        ignore_conflicts=True,
    )
    return True


def session_record(session_id: int) -> None:
    """A session's start, or its outcome once it finished (energy delivered or not)."""
    session = ChargingSession.objects.filter(pk=session_id).first()
    if session is None:
        return
    if session.stopped_at is None:
        kind, at, status = "session_start", session.started_at, "started"
    else:
        energy = _energy_wh(session)
        status = "no energy" if energy is not None and energy <= 0 else "finished"
        kind, at = "session", session.stopped_at
    PortEvent.objects.bulk_create(
        [
            PortEvent(
                charger_id=session.charger_id,
                connector_id=session.connector_id,
                kind=PortEvent.Kind.SESSION,
                at=at,
                status=status,
                info=session.stop_reason if kind == "session" else session.id_tag_status,
                source=f"{kind}:{session.pk}",
            )
        ],
        ignore_conflicts=True,
    )


FIRMWARE_FAILED = "install failed"
FIRMWARE_INSTALLED = "installed"


def firmware_install_record(
    *, charger_id: int, at: datetime, installed: bool, info: str, source: str
) -> bool:
    """A firmware install's outcome (fleet's campaigns): a failed one marks the charger and its
    ports down until a good one (outages.FIRMWARE). A good one is recorded only to end such an
    outage. `source` makes it once (a campaign target). Return whether it was recorded."""
    if installed:
        last = (
            PortEvent.objects.filter(charger_id=charger_id, kind=PortEvent.Kind.FIRMWARE)
            .order_by("-at", "-id")
            .first()
        )
        if last is None or last.status != FIRMWARE_FAILED:
            return False
    if PortEvent.objects.filter(source=source[:40]).exists():
        return False
    PortEvent.objects.bulk_create(
        [
            PortEvent(
                charger_id=charger_id,
                connector_id=0,
                kind=PortEvent.Kind.FIRMWARE,
                at=at,
                status=FIRMWARE_INSTALLED if installed else FIRMWARE_FAILED,
                info=info[:500],
                source=source[:40],
            )
        ],
        ignore_conflicts=True,
    )
    return True


def _last_link(charger_id: int) -> PortEvent | None:
    return (
        PortEvent.objects.filter(
            charger_id=charger_id, kind__in=[PortEvent.Kind.OFFLINE, PortEvent.Kind.ONLINE]
        )
        .order_by("-at", "-id")
        .first()
    )


def _link_candidates(charger: Charger, now: datetime) -> list[tuple[datetime, bool]]:
    """The connection changes the charger's own fields prove: its last connect and disconnect,
    and, for a socket still open but silent past the missed-heartbeat rule, the last time it
    was heard."""
    candidates = []
    if charger.connected_at:
        candidates.append((charger.connected_at, True))
    if charger.disconnected_at:
        candidates.append((charger.disconnected_at, False))
    if charger.connection_id and not charger.is_online(now) and charger.last_seen_at:
        candidates.append((charger.last_seen_at, False))
    return sorted(candidates)


def _last_links(charger_ids: set[int]) -> dict[int, PortEvent]:
    """`_last_link` of many chargers in one query (the latest connect or drop of each)."""
    if not charger_ids:
        return {}
    latest = (
        PortEvent.objects.filter(
            charger_id__in=charger_ids, kind__in=[PortEvent.Kind.OFFLINE, PortEvent.Kind.ONLINE]
        )
        .annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("charger_id")],
                order_by=[F("at").desc(), F("id").desc()],
            )
        )
        .filter(place=1)
    )
    return {event.charger_id: event for event in latest}


def links_record(changes: Iterable[tuple[int, str, bool, datetime]]) -> int:
    """Record connects and drops as chargers announces them, each once (by its connection id).
    A close counts as a drop only if that connection was still the charger's: a socket that a
    newer one of the same charger replaced did not leave it offline.

    A batch (a restart storm announces thousands together) is read in one query and written in
    one: the last link of each charger that dropped, then this batch's own rows in time order."""
    changes = sorted(changes, key=lambda c: c[3])
    last = _last_links({charger_id for charger_id, _, connected, _ in changes if not connected})
    rows = []
    for charger_id, connection_id, connected, at in changes:
        if connected:
            row = _link_row(charger_id, at, True, f"on:{connection_id}")
        else:
            before = last.get(charger_id)
            if before is None or before.kind != PortEvent.Kind.ONLINE:
                continue
            if before.source.startswith("on:") and before.source != f"on:{connection_id}":
                continue  # replaced by a newer connection
            if (
                not before.source
                and Charger.objects.filter(pk=charger_id).exclude(connection_id="").exists()
            ):
                continue  # not ours to judge: another connection is current
            row = _link_row(charger_id, at, False, f"off:{connection_id}")
        rows.append(row)
        if charger_id not in last or last[charger_id].at <= at:
            # What `_last_link` reads once this row is written (unless a row of the same charger,
            # kind and instant was already stored, unique_portevent_link: the insert skips it).
            last[charger_id] = row
    return len(PortEvent.objects.bulk_create(rows, ignore_conflicts=True))


def links_sync(chargers: Iterable[Charger], now: datetime | None = None) -> int:
    """Record the connection changes of these chargers that the timeline does not have yet:
    silence past the missed-heartbeat rule (nothing announces it), and any connect or drop whose
    announcement (links_record) was lost, from the charger's last connect/disconnect."""
    now = now or timezone.now()
    rows = []
    for charger in chargers:
        last = _last_link(charger.pk)
        online = None if last is None else last.kind == PortEvent.Kind.ONLINE
        since = last.at if last else None
        for at, is_online in _link_candidates(charger, now):
            if since is not None and at <= since:
                continue
            if is_online != online:
                rows.append(_link_row(charger.pk, at, is_online))
                online, since = is_online, at
        if online is False and charger.is_online(now) and since is not None:
            # Silent, then heard again on the same socket: back from its first message since.
            back = (
                OcppMessage.objects.filter(charger_id=charger.pk, timestamp__gt=since)
                .order_by("timestamp")
                .values_list("timestamp", flat=True)
                .first()
            )
            rows.append(_link_row(charger.pk, back or charger.last_seen_at or now, True))
    # Once per instant (unique_portevent_link): an announcement may have written it meanwhile.
    return len(PortEvent.objects.bulk_create(rows, ignore_conflicts=True))


def _link_row(charger_id: int, at: datetime, online: bool, source: str = "") -> PortEvent:
    return PortEvent(
        charger_id=charger_id,
        connector_id=0,
        kind=PortEvent.Kind.ONLINE if online else PortEvent.Kind.OFFLINE,
        at=at,
        source=source,
    )


# -- reading the facts back -----------------------------------------------------------------------


def _energy_wh(session: ChargingSession) -> Decimal | None:
    if session.meter_stop_wh is None or session.meter_start_wh is None:
        return None
    return session.meter_stop_wh - session.meter_start_wh


def _first_energy_at(session: ChargingSession) -> datetime | None:
    """When energy first flowed: the first reading above the start register (or a positive
    power reading). A session that finished with energy but sent no readings is taken to have
    delivered from its start: nothing says otherwise."""
    start_wh = session.meter_start_wh
    for value in MeterValue.objects.filter(
        session=session, measurand__in=[_ENERGY, "Power.Active.Import"], value__isnull=False
    ).order_by("timestamp", "id"):
        assert value.value is not None
        if value.measurand != _ENERGY:
            if value.value > 0:
                return value.timestamp
            continue
        wh = value.value * 1000 if value.unit.lower() == "kwh" else value.value
        if start_wh is None:
            start_wh = wh  # 2.0.1 without a start register: the first reading is the start
        elif wh > start_wh:
            return value.timestamp
    energy = _energy_wh(session)
    if energy is not None and energy > 0:
        return session.started_at
    return None


def _suspended_ev(session: ChargingSession, statuses: list[PortEvent]) -> bool:
    end = session.stopped_at
    if any(
        e.status == "SuspendedEV" and e.at >= session.started_at and (end is None or e.at <= end)
        for e in statuses
    ):
        return True
    if session.ocpp_transaction_id:
        return TransactionEvent.objects.filter(
            session=session, payload__transactionInfo__chargingState="SuspendedEV"
        ).exists()
    return False


def _plugged(session: ChargingSession, statuses: list[PortEvent]) -> bool:
    """Plugged unless every status of the port from just before the start to its end says
    nothing was (Available)."""
    end = session.stopped_at
    before = [e for e in statuses if e.at <= session.started_at]
    during = [e for e in statuses if e.at > session.started_at and (end is None or e.at <= end)]
    seen = ([before[-1]] if before else []) + during
    return not seen or any(e.status not in _EMPTY for e in seen)


def _attempts(
    charger: Charger, connector_id: int, start: datetime, end: datetime, statuses: list[PortEvent]
) -> list[outages.Attempt]:
    port = ChargingSession.objects.filter(charger=charger, connector_id=connector_id)
    previous = port.filter(started_at__lt=start).order_by("-started_at").first()
    sessions = list(port.filter(started_at__gte=start, started_at__lt=end).order_by("started_at"))
    if previous is not None:
        sessions.insert(0, previous)
    return [
        outages.Attempt(
            start=s.started_at,
            end=s.stopped_at,
            authorized=s.id_tag_status == "Accepted",
            plugged=_plugged(s, statuses),
            first_energy_at=_first_energy_at(s),
            suspended_ev=_suspended_ev(s, statuses),
        )
        for s in sessions
    ]


def _host_off(charger: Charger, connector_id: int) -> list[outages.Span]:
    """When the host took the port (or the charger) out of service: an accepted
    ChangeAvailability to Inoperative, until one to Operative."""
    spans: list[outages.Span] = []
    off_since: datetime | None = None
    for command in Command.objects.filter(
        charger=charger, action="ChangeAvailability", status=Command.Status.ANSWERED
    ).order_by("created_at", "id"):
        payload = command.payload or {}
        target = payload.get("connectorId")
        if target is None:
            target = (payload.get("evse") or {}).get("id", 0)
        if target not in (0, connector_id) or command.result_status not in (
            "Accepted",
            "Scheduled",
        ):
            continue
        inoperative = (payload.get("type") or payload.get("operationalStatus")) == "Inoperative"
        if inoperative and off_since is None:
            off_since = command.created_at
        elif not inoperative and off_since is not None:
            spans.append(outages.Span(off_since, command.created_at))
            off_since = None
    if off_since is not None:
        spans.append(outages.Span(off_since, None))
    return spans


def _window(queryset: QuerySet[PortEvent], start: datetime, end: datetime) -> list[PortEvent]:
    """The events in [start, end) and the last one before start (the state the period opens in)."""
    before = queryset.filter(at__lt=start).order_by("-at", "-id").first()
    inside = list(queryset.filter(at__gte=start, at__lt=end).order_by("at", "id"))
    return ([before] if before else []) + inside


@dataclass(frozen=True)
class PortFacts:
    port: list[outages.Reported]
    whole: list[outages.Reported]
    links: list[outages.Link]
    attempts: list[outages.Attempt]
    host_off: list[outages.Span]
    firmware: list[outages.Link]  # online=False: a failed install; True: a good one


def port_facts(charger: Charger, connector_id: int, start: datetime, end: datetime) -> PortFacts:
    events = PortEvent.objects.filter(charger=charger)
    statuses = events.filter(kind=PortEvent.Kind.STATUS)
    port_statuses = _window(statuses.filter(connector_id=connector_id), start, end)
    whole = _window(statuses.filter(connector_id=0), start, end) if connector_id else []
    links = _window(
        events.filter(kind__in=[PortEvent.Kind.OFFLINE, PortEvent.Kind.ONLINE]), start, end
    )
    firmware = _window(events.filter(kind=PortEvent.Kind.FIRMWARE), start, end)
    session_statuses = list(
        statuses.filter(connector_id=connector_id, at__gte=start - timedelta(days=1), at__lt=end)
    )
    return PortFacts(
        port=[_reported(e) for e in port_statuses],
        whole=[_reported(e) for e in whole],
        links=[outages.Link(e.at, e.kind == PortEvent.Kind.ONLINE) for e in links],
        attempts=_attempts(charger, connector_id, start, end, session_statuses),
        host_off=_host_off(charger, connector_id),
        firmware=[outages.Link(e.at, e.status == FIRMWARE_INSTALLED) for e in firmware],
    )


def _reported(event: PortEvent) -> outages.Reported:
    return outages.Reported(event.at, event.status, event.error_code, event.vendor_error_code)


def ports_of(charger: Charger) -> list[int]:
    """The charger's ports (connector 0, the charger as a whole, is not one)."""
    ids = set(
        Connector.objects.filter(charger=charger, connector_id__gt=0).values_list(
            "connector_id", flat=True
        )
    )
    ids |= set(
        PortEvent.objects.filter(charger=charger, connector_id__gt=0)
        .values_list("connector_id", flat=True)
        .distinct()
    )
    return sorted(ids)


def recent_events(charger: Charger, since: datetime) -> list[PortEvent]:
    return list(
        PortEvent.objects.filter(Q(at__gte=since), charger=charger).order_by("at", "id")[:500]
    )

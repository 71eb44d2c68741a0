"""The records the success KPIs are counted from (reliability.kpis), read in time slices: a
fixed handful of queries per slice, whatever the number of chargers, and a slice holds about
`BATCH_SESSIONS` sessions, so an organization's year is never in memory at once
(docs/reliability.md, "Success KPIs")."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone

from authorization.models import AuthorizationDecision, normalize_uid
from chargers.models import (
    Charger,
    ChargingSession,
    Command,
    Connector,
    MeterValue,
    TransactionEvent,
)

from . import kpis

BATCH_SESSIONS = 20_000
_ENERGY = "Energy.Active.Import.Register"
_POWER = "Power.Active.Import"
REMOTE_START_ACTIONS = ("RemoteStartTransaction", "RequestStartTransaction")


def rules() -> kpis.Rules:
    """The rules in force: published defaults, ours overridable in settings."""
    default = kpis.Rules()
    reasons = getattr(settings, "RELIABILITY_KPI_COMPLETION_REASONS", None)
    prefixes = getattr(settings, "RELIABILITY_KPI_AUTOCHARGE_PREFIXES", None)
    return kpis.Rules(
        link_s=int(getattr(settings, "RELIABILITY_KPI_LINK_S", default.link_s)),
        visit_driver_s=int(
            getattr(settings, "RELIABILITY_KPI_VISIT_DRIVER_S", default.visit_driver_s)
        ),
        visit_anonymous_s=int(
            getattr(settings, "RELIABILITY_KPI_VISIT_ANONYMOUS_S", default.visit_anonymous_s)
        ),
        completion_reasons=frozenset(reasons) if reasons else default.completion_reasons,
        completion_needs_energy=bool(
            getattr(
                settings, "RELIABILITY_KPI_COMPLETION_NEEDS_ENERGY", default.completion_needs_energy
            )
        ),
        rejected_authorize_counts=bool(
            getattr(
                settings,
                "RELIABILITY_KPI_REJECTED_AUTHORIZE_COUNTS",
                default.rejected_authorize_counts,
            )
        ),
        failed_remote_counts=bool(
            getattr(settings, "RELIABILITY_KPI_FAILED_REMOTE_COUNTS", default.failed_remote_counts)
        ),
        autocharge_prefixes=tuple(prefixes)
        if prefixes is not None
        else default.autocharge_prefixes,
    )


def slices(start: datetime, end: datetime, sessions: int) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut into as many equal slices as `sessions` needs batches."""
    batch = int(getattr(settings, "RELIABILITY_KPI_BATCH_SESSIONS", BATCH_SESSIONS))
    count = max(1, math.ceil(sessions / max(batch, 1)))
    step = (end - start) / count
    for i in range(count):
        yield start + step * i, (end if i == count - 1 else start + step * (i + 1))


def board(
    chargers: Iterable[Charger], start: datetime, end: datetime, now: datetime | None = None
) -> kpis.Board:
    """The KPIs of these chargers' ports, properties and organizations over [start, end)."""
    now = now or timezone.now()
    chargers = list(chargers)
    in_force = rules()
    result = kpis.Board(
        rules=in_force,
        places={c.pk: (c.property_id, c.organization_id) for c in chargers},
    )
    end = min(end, now)
    if not chargers or end <= start:
        return result
    ids = [c.pk for c in chargers]
    stations = {c.station_id: c.pk for c in chargers}
    single_port = _single_ports(ids)
    total = ChargingSession.objects.filter(
        charger_id__in=ids, started_at__gte=start, started_at__lt=end
    ).count()
    margin = timedelta(seconds=in_force.link_s)
    for low, high in slices(start, end, total):
        sessions = _sessions(ids, low - margin, high + margin, low, high)
        result.add(
            kpis.attempts(
                sessions,
                _authorizes(stations, low - margin, high + margin),
                _remote_starts(ids, low - margin, high + margin),
                start=low,
                end=high,
                now=now,
                rules=in_force,
                single_port=single_port,
            )
        )
    return result


def _single_ports(ids: list[int]) -> dict[int, int]:
    """The chargers with one port: an Authorize there (1.6 names no port) is that port's."""
    ports: dict[int, set[int]] = {}
    for charger_id, connector_id in Connector.objects.filter(
        charger_id__in=ids, connector_id__gt=0
    ).values_list("charger_id", "connector_id"):
        ports.setdefault(charger_id, set()).add(connector_id)
    return {c: next(iter(p)) for c, p in ports.items() if len(p) == 1}


def _sessions(
    ids: list[int], low: datetime, high: datetime, counted_low: datetime, counted_high: datetime
) -> list[kpis.Session]:
    """Sessions started in [low, high); when power first flowed is read for those in the
    counted slice only (the others are there to link an Authorize across the edge)."""
    rows = list(
        ChargingSession.objects.filter(
            charger_id__in=ids, started_at__gte=low, started_at__lt=high
        ).values_list(
            "id",
            "charger_id",
            "connector_id",
            "started_at",
            "stopped_at",
            "id_tag",
            "token__type",
            "token__msp_id",
            "token__whitelist",
            "remote_start_id",
            "stop_reason",
            "meter_start_wh",
            "meter_stop_wh",
            "signed_energy_wh",
        )
    )
    counted = ChargingSession.objects.filter(
        charger_id__in=ids, started_at__gte=counted_low, started_at__lt=counted_high
    )
    first = _first_energy(counted)
    autocharge = set(
        TransactionEvent.objects.filter(
            session__in=counted, payload__idToken__type__in=sorted(kpis.AUTOCHARGE_TOKEN_TYPES)
        ).values_list("session_id", flat=True)
    )
    return [_session(row, first.get(row[0]), row[0] in autocharge) for row in rows]


def _session(row: tuple, first_energy_at: datetime | None, autocharge: bool) -> kpis.Session:
    (pk, charger, connector, started, stopped, id_tag, token_type, msp, whitelist, remote_id) = row[
        :10
    ]
    reason, meter_start, meter_stop, signed = row[10:]
    energy = signed
    if energy is None and meter_start is not None and meter_stop is not None:
        energy = meter_stop - meter_start
    return kpis.Session(
        id=pk,
        charger=charger,
        connector=connector,
        started_at=started,
        stopped_at=stopped,
        id_tag=normalize_uid(id_tag or ""),
        token_type=token_type or "",
        roaming_token=bool(msp or whitelist),
        autocharge_token=autocharge,
        remote_start_id=remote_id,
        stop_reason=reason or "",
        energy_wh=energy,
        first_energy_at=first_energy_at,
        raw_id_tag=id_tag or "",
    )


def _first_energy(counted: QuerySet[ChargingSession]) -> dict[int, datetime]:
    """When power first flowed in each session (the pure rule of the port timeline, in SQL): the
    first energy reading above the start register, a positive power reading, or a 2.0.1 event
    saying Charging; the earliest of them."""
    first: dict[int, datetime] = {}
    above_start = Q(unit__iexact="kwh", value__gt=F("session__meter_start_wh") / 1000) | (
        ~Q(unit__iexact="kwh") & Q(value__gt=F("session__meter_start_wh"))
    )
    queries = [
        MeterValue.objects.filter(session__in=counted, measurand=_ENERGY).filter(above_start),
        MeterValue.objects.filter(session__in=counted, measurand=_POWER, value__gt=0),
        TransactionEvent.objects.filter(
            session__in=counted, payload__transactionInfo__chargingState="Charging"
        ),
    ]
    for query in queries:
        for session_id, at in (
            query.order_by()
            .values("session_id")
            .annotate(at=Min("timestamp"))
            .values_list("session_id", "at")
        ):
            if session_id is not None and (session_id not in first or at < first[session_id]):
                first[session_id] = at
    return first


def _authorizes(stations: dict[str, int], low: datetime, high: datetime) -> list[kpis.Authorize]:
    rows = AuthorizationDecision.objects.filter(
        station_id__in=list(stations),
        context=AuthorizationDecision.Context.LOCAL,
        created_at__gte=low,
        created_at__lt=high,
    ).values_list(
        "station_id",
        "connector_id",
        "created_at",
        "uid_normalized",
        "status",
        "token__type",
        "token__msp_id",
        "token__whitelist",
    )
    return [
        kpis.Authorize(
            charger=stations[station],
            connector=connector,
            at=at,
            uid=uid,
            accepted=status == "Accepted",
            token_type=token_type or "",
            roaming_token=bool(msp or whitelist),
        )
        for station, connector, at, uid, status, token_type, msp, whitelist in rows
    ]


def _remote_starts(ids: list[int], low: datetime, high: datetime) -> list[kpis.RemoteStart]:
    rows = Command.objects.filter(
        charger_id__in=ids,
        action__in=REMOTE_START_ACTIONS,
        created_at__gte=low,
        created_at__lt=high,
    ).values_list("charger_id", "created_at", "payload", "status", "response", "source")
    found = []
    for charger, at, payload, status, response, source in rows:
        payload = payload if isinstance(payload, dict) else {}
        token = payload.get("idToken")
        id_tag = token.get("idToken", "") if isinstance(token, dict) else payload.get("idTag", "")
        connector = payload.get("connectorId") or payload.get("evseId")
        remote_id = payload.get("remoteStartId")
        found.append(
            kpis.RemoteStart(
                charger=charger,
                connector=connector if isinstance(connector, int) else None,
                at=at,
                id_tag=normalize_uid(str(id_tag or "")),
                remote_start_id=remote_id if isinstance(remote_id, int) else None,
                source=source or "",
                status=status,
                answer=str(response.get("status", "")) if isinstance(response, dict) else "",
            )
        )
    return found

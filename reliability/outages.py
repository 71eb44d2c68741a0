"""When a port was down, counted the regulators' way (docs/reliability.md states every rule).

Pure: facts in (reported states, connection changes, charging attempts, exclusions), outages
out. No Django, so the rules can be read and tested as a table of cases.

A port is down while
* it (or its charger as a whole, connector 0) reports Faulted;
* it (or connector 0) reports Unavailable, except while the host made it so (an accepted
  ChangeAvailability to Inoperative that is not yet undone);
* its charger is offline (connection closed, or silent past the missed-heartbeat rule);
* its charger's firmware install failed (a campaign's verdict, fleet/): from the failure until
  a good install;
* after a failed start: an authorized attempt with the EV plugged that delivered no energy
  within `failed_start_after_s` (the EV declining energy, SuspendedEV, is not a failure) —
  from that attempt's start until energy flows again on the port.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

FAILED_START_AFTER_S = 300

FAULTED = "faulted"
UNAVAILABLE = "unavailable"
OFFLINE = "offline"
FAILED_START = "failed_start"
FIRMWARE = "firmware"

# Causes in the order one is named when several overlap (the first one wins).
CAUSE_ORDER = (OFFLINE, FAULTED, UNAVAILABLE, FIRMWARE, FAILED_START)

NEVI_MINUTES_PER_YEAR = 525_600


@dataclass(frozen=True)
class Reported:
    """A state a connector reported from `at` on (connector 0 speaks for the whole charger)."""

    at: datetime
    status: str
    error_code: str = "NoError"
    vendor_code: str = ""


@dataclass(frozen=True)
class Link:
    """The charger's connection from `at` on."""

    at: datetime
    online: bool


@dataclass(frozen=True)
class Attempt:
    """A charging session on the port, as far as it went."""

    start: datetime
    end: datetime | None  # None: still running
    authorized: bool
    plugged: bool
    first_energy_at: datetime | None  # when energy first flowed; None: none so far
    suspended_ev: bool = False  # the EV declined energy at some point (full, or schedule)


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None  # None: still open


@dataclass(frozen=True)
class Outage:
    start: datetime
    end: datetime
    cause: str
    error_code: str = ""
    vendor_code: str = ""
    excluded: bool = False

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Uptime:
    outages: tuple[Outage, ...]
    period_seconds: float
    outage_seconds: float
    excluded_seconds: float

    @property
    def percent(self) -> float:
        """((T_total - (T_outage - T_excluded)) / T_total) x 100 (23 CFR 680.116(b))."""
        if self.period_seconds <= 0:
            return 100.0
        counted = self.outage_seconds - self.excluded_seconds
        return round((self.period_seconds - counted) / self.period_seconds * 100, 3)


# -- the down intervals of each cause ------------------------------------------------------------


def _status_outages(
    port: Sequence[Reported],
    whole: Sequence[Reported],
    host_off: Sequence[Span],
    end: datetime,
) -> list[Outage]:
    """Faulted / Unavailable (not by the host) of the port or of connector 0, whichever applies:
    the two histories are walked together, each one's latest report standing until its next."""
    points = sorted(
        [(r.at, 0, r) for r in whole] + [(r.at, 1, r) for r in port], key=lambda p: p[:2]
    )
    current: dict[int, Reported] = {}
    outages: list[Outage] = []
    for index, (at, which, reported) in enumerate(points):
        current[which] = reported
        until = points[index + 1][0] if index + 1 < len(points) else end
        if until <= at:
            continue
        down = _down_state(current)
        if down is None:
            continue
        cause, reported_down = down
        for piece in (
            _minus(Span(at, until), host_off) if cause == UNAVAILABLE else [Span(at, until)]
        ):
            outages.append(
                Outage(
                    piece.start,
                    piece.end or until,
                    cause,
                    reported_down.error_code,
                    reported_down.vendor_code,
                )
            )
    return outages


def _down_state(current: dict[int, Reported]) -> tuple[str, Reported] | None:
    for which in (0, 1):  # the whole charger first: its fault outranks the port's own state
        reported = current.get(which)
        if reported is None:
            continue
        if reported.status == "Faulted":
            return FAULTED, reported
    for which in (0, 1):
        reported = current.get(which)
        if reported is not None and reported.status == "Unavailable":
            return UNAVAILABLE, reported
    return None


def _offline_outages(links: Sequence[Link], end: datetime, cause: str = OFFLINE) -> list[Outage]:
    """Down from each `online=False` until the next change (firmware: a failed install until
    the next install, `online` standing for a good one)."""
    outages = []
    ordered = sorted(links, key=lambda link: link.at)
    for index, link in enumerate(ordered):
        if link.online:
            continue
        until = ordered[index + 1].at if index + 1 < len(ordered) else end
        if until > link.at:
            outages.append(Outage(link.at, until, cause))
    return outages


def attempt_failed(attempt: Attempt, now: datetime, after_s: int = FAILED_START_AFTER_S) -> bool:
    """Whether an attempt is a failed start: authorized, EV plugged, the EV never declined
    energy, and no energy within `after_s` of its start — known once `after_s` passed, or
    earlier when it ended without energy."""
    if not (attempt.authorized and attempt.plugged) or attempt.suspended_ev:
        return False
    deadline = attempt.start + timedelta(seconds=after_s)
    if attempt.first_energy_at is not None and attempt.first_energy_at <= deadline:
        return False
    if attempt.first_energy_at is not None:
        return True  # energy came, but too late
    ended_by = attempt.end if attempt.end is not None else now
    return attempt.end is not None or ended_by >= deadline


def _failed_start_outages(
    attempts: Sequence[Attempt], now: datetime, end: datetime, after_s: int
) -> list[Outage]:
    """From each failed start until energy flows again on the port (that attempt's own late
    energy, or a later attempt's)."""
    ordered = sorted(attempts, key=lambda a: a.start)
    energy_times = sorted(a.first_energy_at for a in ordered if a.first_energy_at is not None)
    outages = []
    for attempt in ordered:
        if not attempt_failed(attempt, now, after_s):
            continue
        until = next((t for t in energy_times if t > attempt.start), end)
        if until > attempt.start:
            outages.append(Outage(attempt.start, min(until, end), FAILED_START))
    return outages


# -- combining, clipping, exclusions ---------------------------------------------------------------


def _minus(span: Span, holes: Iterable[Span]) -> list[Span]:
    """`span` without the parts covered by `holes` (open holes last forever)."""
    pieces = [span]
    for hole in holes:
        next_pieces = []
        for piece in pieces:
            piece_end = piece.end
            assert piece_end is not None
            hole_end = hole.end or datetime.max.replace(tzinfo=piece.start.tzinfo)
            if hole_end <= piece.start or hole.start >= piece_end:
                next_pieces.append(piece)
                continue
            if hole.start > piece.start:
                next_pieces.append(Span(piece.start, hole.start))
            if hole_end < piece_end:
                next_pieces.append(Span(hole_end, piece_end))
        pieces = next_pieces
    return pieces


def merge(outages: Iterable[Outage]) -> list[Outage]:
    """One outage per down period: overlapping or touching ones join, named after the cause
    that comes first in CAUSE_ORDER among those that started it (the earliest)."""
    ordered = sorted(outages, key=lambda o: (o.start, CAUSE_ORDER.index(o.cause)))
    merged: list[Outage] = []
    for outage in ordered:
        if merged and outage.start <= merged[-1].end:
            if outage.end > merged[-1].end:
                merged[-1] = replace(merged[-1], end=outage.end)
            continue
        merged.append(outage)
    return merged


def _clip(outages: Iterable[Outage], start: datetime, end: datetime) -> list[Outage]:
    clipped = []
    for outage in outages:
        s, e = max(outage.start, start), min(outage.end, end)
        if e > s:
            clipped.append(replace(outage, start=s, end=e))
    return clipped


def _split_by_exclusions(outages: Iterable[Outage], exclusions: Sequence[Span]) -> list[Outage]:
    """Each outage cut where an exclusion begins or ends: every piece is wholly excluded or not."""
    pieces: list[Outage] = []
    for outage in outages:
        kept = _minus(Span(outage.start, outage.end), exclusions)
        cuts = sorted(
            {outage.start, outage.end}
            | {p.start for p in kept}
            | {p.end for p in kept if p.end is not None}
        )
        kept_starts = {p.start for p in kept}
        for s, e in zip(cuts, cuts[1:], strict=False):
            pieces.append(replace(outage, start=s, end=e, excluded=s not in kept_starts))
    return pieces


def port_uptime(
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    port: Sequence[Reported] = (),
    whole: Sequence[Reported] = (),
    links: Sequence[Link] = (),
    attempts: Sequence[Attempt] = (),
    host_off: Sequence[Span] = (),
    exclusions: Sequence[Span] = (),
    failed_start_after_s: int = FAILED_START_AFTER_S,
    firmware: Sequence[Link] = (),
) -> Uptime:
    """The port's outages in [start, end) and its uptime. Nothing after `now` is counted (the
    period is cut there), and before its first report a port counts as up: only what was
    reported is an outage. Counted in UTC: a month given in a local zone has the hours it really
    has (743 in a March, 745 in an October in Europe), not its wall clock's 744."""
    start, end = start.astimezone(UTC), min(end, now).astimezone(UTC)
    if end <= start:
        return Uptime((), 0.0, 0.0, 0.0)
    down = (
        _status_outages(port, whole, host_off, end)
        + _offline_outages(links, end)
        + _offline_outages(firmware, end, FIRMWARE)
        + _failed_start_outages(attempts, now, end, failed_start_after_s)
    )
    outages = _split_by_exclusions(_clip(merge(down), start, end), exclusions)
    return Uptime(
        outages=tuple(outages),
        period_seconds=(end - start).total_seconds(),
        outage_seconds=sum(o.seconds for o in outages),
        excluded_seconds=sum(o.seconds for o in outages if o.excluded),
    )


def nevi_percent(outage_minutes: float, excluded_minutes: float) -> float:
    """23 CFR 680.116(b) over a year of 525,600 minutes."""
    return round(
        (NEVI_MINUTES_PER_YEAR - (outage_minutes - excluded_minutes)) / NEVI_MINUTES_PER_YEAR * 100,
        3,
    )


@dataclass(frozen=True)
class Interval:
    """One fixed-length interval record (CEC: 15 minutes): how much of it was down, and excluded."""

    start: datetime
    end: datetime
    down_seconds: float
    excluded_seconds: float
    cause: str  # of the longest outage piece in it; "" when up throughout


def intervals(
    outage_list: Sequence[Outage], start: datetime, end: datetime, minutes: int = 15
) -> list[Interval]:
    """[start, end) cut into `minutes`-long records (the last one may be shorter), in UTC: real
    minutes also over a change of the clocks."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    step = timedelta(minutes=minutes)
    ordered = sorted(outage_list, key=lambda o: o.start)
    records = []
    cursor, first = start, 0
    while cursor < end:
        until = min(cursor + step, end)
        down = excluded = 0.0
        longest: tuple[float, str] = (0.0, "")
        while first < len(ordered) and ordered[first].end <= cursor:
            first += 1
        for outage in ordered[first:]:
            if outage.start >= until:
                break
            seconds = (min(outage.end, until) - max(outage.start, cursor)).total_seconds()
            if seconds <= 0:
                continue
            down += seconds
            excluded += seconds if outage.excluded else 0.0
            longest = max(longest, (seconds, outage.cause))
        records.append(Interval(cursor, until, down, excluded, longest[1]))
        cursor = until
    return records

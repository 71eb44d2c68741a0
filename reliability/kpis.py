"""ChargeX's customer-focused success KPIs over plain records (docs/reliability.md, "Success
KPIs"). Pure: no Django; the records come from reliability.kpi_selectors, a slice at a time.

Published (ChargeX: Quinn et al., "Customer-Focused Key Performance Indicators for Electric
Vehicle Charging", INL, June 2024, doi:10.2172/2377347; Savargaonkar et al., "Implementation
Guide of Customer-Focused KPIs", INL, Dec. 2024, doi:10.2172/2513383; as INL's own calculator
implements them, IdahoLabUnsupported/OCPP-2.0.1-Interim-KPI-Calculator):

* session success = completions / charge attempts; an Authorize or a remote start that never
  led to a transaction is a failed attempt;
* charge start success = attempts that delivered power / charge attempts;
* charge end success = completions / attempts that delivered power;
* charge start time = from the attempt (the authorization's answer, else the transaction's
  start) to power flowing, as percentiles;
* an Authorize belongs to a transaction of the same token within 300 s either side.

Ours (each a field of `Rules`, set in settings): the visit windows, what counts as an attempt
beyond the published ones, that a completion needs energy, the autocharge id prefixes.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TypeVar

CARD = "card"
APP = "app"
GUEST = "guest"
AUTOCHARGE = "autocharge"
ROAMING = "roaming"
MODES = (CARD, APP, GUEST, AUTOCHARGE, ROAMING)
MODE_WORDS = {
    CARD: "card",
    APP: "app / remote",
    GUEST: "guest QR",
    AUTOCHARGE: "Plug & Charge / autocharge",
    ROAMING: "roaming",
}

# The stop reasons INL's calculator counts as a valid end (OCPP's Reason enumeration; 1.6 and
# 2.0.1 both say an absent reason means Local).
COMPLETION_REASONS = frozenset(
    {
        "Local",
        "Remote",
        "EVDisconnected",
        "StoppedByEV",
        "EnergyLimitReached",
        "SOCLimitReached",
        "TimeLimitReached",
        "LocalOutOfCredit",
    }
)
# 2.0.1 IdTokenEnumType values of a car that authorizes itself (ISO 15118 contract, MAC).
AUTOCHARGE_TOKEN_TYPES = frozenset({"eMAID", "MacAddress"})

PENDING = "pending"
FAILED = "failed"  # no power
ENDED_BADLY = "ended_badly"  # power, then an end that is not a completion
COMPLETED = "completed"
# A valid stop without power: a completion only where completion_needs_energy is off (INL's
# calculator counts it); never in charge end success, whose attempts all delivered.
UNPOWERED_STOP = "unpowered_stop"


@dataclass(frozen=True)
class Rules:
    link_s: int = 300  # published (INL calculator): Authorize <-> transaction window
    visit_driver_s: int = 1800  # ours: the same driver's retries are one visit
    visit_anonymous_s: int = 120  # ours: anonymous retries on the same port are one visit
    completion_reasons: frozenset[str] = COMPLETION_REASONS  # published list
    completion_needs_energy: bool = True  # ours: an end without energy is no completion
    rejected_authorize_counts: bool = True  # published: INL counts Rejected answers too
    failed_remote_counts: bool = True  # ours: an unanswered or offline remote start counts
    autocharge_prefixes: tuple[str, ...] = ("VID:",)  # ours: 1.6 autocharge id tags

    def as_json(self) -> dict:
        return {
            "link_s": self.link_s,
            "visit_driver_s": self.visit_driver_s,
            "visit_anonymous_s": self.visit_anonymous_s,
            "completion_reasons": sorted(self.completion_reasons),
            "completion_needs_energy": self.completion_needs_energy,
            "rejected_authorize_counts": self.rejected_authorize_counts,
            "failed_remote_counts": self.failed_remote_counts,
            "autocharge_prefixes": list(self.autocharge_prefixes),
        }


@dataclass(slots=True)
class Session:
    """A transaction as the charger reported it."""

    id: int
    charger: int
    connector: int
    started_at: datetime
    stopped_at: datetime | None
    id_tag: str  # normalized
    token_type: str  # authorization.Token.Type, "" when no token matched
    roaming_token: bool  # the token came from a roaming partner or MSP
    autocharge_token: bool  # a 2.0.1 event named an eMAID / MacAddress idToken
    remote_start_id: int | None
    stop_reason: str
    energy_wh: Decimal | None
    first_energy_at: datetime | None  # power first flowed (charger's clock)
    raw_id_tag: str = ""  # as the charger sent it (the autocharge prefix keeps its colon)


@dataclass(slots=True)
class Authorize:
    """An Authorize the charger sent (a card or token at the charger), as we decided it."""

    charger: int
    connector: int | None
    at: datetime  # when we answered
    uid: str  # normalized
    accepted: bool
    token_type: str
    roaming_token: bool


@dataclass(slots=True)
class RemoteStart:
    """A RemoteStartTransaction / RequestStartTransaction we sent."""

    charger: int
    connector: int | None
    at: datetime  # when we sent it
    id_tag: str  # normalized
    remote_start_id: int | None
    source: str  # "guest", "ocpi", "api", ...
    status: str  # chargers Command.Status: pending, answered, error, timeout, offline
    answer: str  # the charger's status: Accepted, Rejected, ""


@dataclass(slots=True)
class Attempt:
    charger: int
    connector: int  # 0: the port is not known (an Authorize names none)
    at: datetime
    mode: str
    driver: str  # "" when anonymous
    outcome: str
    start_s: float | None  # charge start time, when both ends are known
    orphan: str = ""  # "authorize" / "remote_start" when no transaction followed


def _near(a: datetime, b: datetime, seconds: int) -> bool:
    return abs((a - b).total_seconds()) <= seconds


def _port_fits(a: int | None, b: int | None) -> bool:
    return not a or not b or a == b


def _remote_mode(remote: RemoteStart, token_type: str = "") -> str:
    if remote.source == "guest" or token_type == "GUEST":
        return GUEST
    if remote.source == "ocpi":
        return ROAMING
    return APP


@lru_cache(maxsize=8)
def _prefixes(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(p.upper() for p in prefixes)


def _session_mode(session: Session, remote: RemoteStart | None, rules: Rules) -> str:
    if remote is not None:
        return _remote_mode(remote, session.token_type)
    tag = (session.raw_id_tag or session.id_tag).upper()
    if session.autocharge_token or tag.startswith(_prefixes(rules.autocharge_prefixes)):
        return AUTOCHARGE
    if session.roaming_token:
        return ROAMING
    if session.token_type == "GUEST":
        return GUEST
    if session.token_type == "APP":
        return APP
    return CARD


def _outcome(session: Session, now: datetime, rules: Rules) -> str:
    if session.stopped_at is None or session.stopped_at > now:
        return PENDING
    power = session.first_energy_at is not None or (
        session.energy_wh is not None and session.energy_wh > 0
    )
    valid_stop = (session.stop_reason or "Local") in rules.completion_reasons
    if not power:
        return UNPOWERED_STOP if valid_stop and not rules.completion_needs_energy else FAILED
    return COMPLETED if valid_stop else ENDED_BADLY


def _driver(mode: str, id_tag: str) -> str:
    # A guest's token is issued for one start: a guest who retries comes back under a new one.
    return "" if mode == GUEST else id_tag


def _session_attempt(
    session: Session,
    authorizes: list[Authorize],
    remotes: list[RemoteStart],
    now: datetime,
    rules: Rules,
) -> Attempt:
    """`authorizes` and `remotes`: those of the session's charger and id tag (or remote start id)."""
    remote = next((r for r in remotes if _linked_remote(r, session, rules.link_s)), None)
    auth_at = [a.at for a in authorizes if _linked_authorize(a, session, rules.link_s)]
    if remote is not None:
        auth_at.append(remote.at)
    mode = _session_mode(session, remote, rules)
    outcome = _outcome(session, now, rules)
    attempt_at = min(auth_at) if auth_at else session.started_at
    start_s = None
    if session.first_energy_at is not None and outcome != PENDING:
        # Our clock (the answer) to the charger's (its reading): a charger ahead of us by more
        # than the wait would give a negative time, counted as 0 s.
        start_s = max((session.first_energy_at - attempt_at).total_seconds(), 0.0)
    return Attempt(
        charger=session.charger,
        connector=session.connector,
        at=attempt_at,
        mode=mode,
        driver=_driver(mode, session.id_tag),
        outcome=outcome,
        start_s=start_s,
    )


def _linked_authorize(auth: Authorize, session: Session, link_s: int) -> bool:
    return (
        auth.charger == session.charger
        and auth.uid == session.id_tag
        and _port_fits(auth.connector, session.connector)
        and _near(auth.at, session.started_at, link_s)
    )


def _linked_remote(remote: RemoteStart, session: Session, link_s: int) -> bool:
    if remote.charger != session.charger:
        return False
    if remote.remote_start_id is not None and session.remote_start_id is not None:
        return remote.remote_start_id == session.remote_start_id
    return (
        remote.id_tag == session.id_tag
        and _port_fits(remote.connector, session.connector)
        and _near(remote.at, session.started_at, link_s)
    )


def _only_port(charger: int, connector: int | None, single_port: dict[int, int]) -> int:
    return connector or single_port.get(charger, 0)


def attempts(
    sessions: Iterable[Session],
    authorizes: Iterable[Authorize],
    remotes: Iterable[RemoteStart],
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    rules: Rules,
    single_port: dict[int, int] | None = None,
) -> list[Attempt]:
    """The charge attempts of [start, end): each transaction started in it, each Authorize and
    remote start made in it that led to none. The records may reach `rules.link_s` beyond both
    ends (to link across the edge); each attempt is counted in the slice its anchor is in."""
    single_port = single_port or {}
    by_charger_s: dict[int, list[Session]] = {}
    by_charger_a: dict[int, list[Authorize]] = {}
    by_charger_r: dict[int, list[RemoteStart]] = {}
    for s in sessions:
        by_charger_s.setdefault(s.charger, []).append(s)
    for a in authorizes:
        by_charger_a.setdefault(a.charger, []).append(a)
    for r in remotes:
        by_charger_r.setdefault(r.charger, []).append(r)
    found: list[Attempt] = []
    for charger in sorted(by_charger_s.keys() | by_charger_a.keys() | by_charger_r.keys()):
        found.extend(
            _charger_attempts(
                by_charger_s.get(charger, []),
                by_charger_a.get(charger, []),
                by_charger_r.get(charger, []),
                start,
                end,
                now,
                rules,
                single_port,
            )
        )
    found.sort(key=lambda a: (a.at, a.charger, a.connector))
    return found


@dataclass
class _Index:
    """One charger's records looked up by id tag (and remote start id): a busy charger's
    records are never compared pairwise."""

    sessions_by_tag: dict[str, list[Session]] = field(default_factory=dict)
    sessions_by_remote_id: dict[int, list[Session]] = field(default_factory=dict)
    auth_by_uid: dict[str, list[Authorize]] = field(default_factory=dict)
    remote_by_tag: dict[str, list[RemoteStart]] = field(default_factory=dict)
    remote_by_id: dict[int, list[RemoteStart]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, sessions: list[Session], authorizes: list[Authorize], remotes: list[RemoteStart]
    ) -> _Index:
        index = cls()
        for s in sessions:
            index.sessions_by_tag.setdefault(s.id_tag, []).append(s)
            if s.remote_start_id is not None:
                index.sessions_by_remote_id.setdefault(s.remote_start_id, []).append(s)
        for a in authorizes:
            index.auth_by_uid.setdefault(a.uid, []).append(a)
        for r in remotes:
            index.remote_by_tag.setdefault(r.id_tag, []).append(r)
            if r.remote_start_id is not None:
                index.remote_by_id.setdefault(r.remote_start_id, []).append(r)
        return index

    def remotes_of(self, session: Session) -> list[RemoteStart]:
        found = self.remote_by_tag.get(session.id_tag, [])
        if session.remote_start_id is not None:
            found = self.remote_by_id.get(session.remote_start_id, []) + found
        return found

    def sessions_of(self, remote: RemoteStart) -> list[Session]:
        found = self.sessions_by_tag.get(remote.id_tag, [])
        if remote.remote_start_id is not None:
            found = self.sessions_by_remote_id.get(remote.remote_start_id, []) + found
        return found


def _charger_attempts(
    sessions: list[Session],
    authorizes: list[Authorize],
    remotes: list[RemoteStart],
    start: datetime,
    end: datetime,
    now: datetime,
    rules: Rules,
    single_port: dict[int, int],
) -> Iterator[Attempt]:
    index = _Index.of(sessions, authorizes, remotes)
    for session in sessions:
        if start <= session.started_at < end:
            yield _session_attempt(
                session,
                index.auth_by_uid.get(session.id_tag, []),
                index.remotes_of(session),
                now,
                rules,
            )
    settled = now - timedelta(seconds=rules.link_s)
    for auth in authorizes:
        if not start <= auth.at < end or (
            not auth.accepted and not rules.rejected_authorize_counts
        ):
            continue
        if any(
            _linked_authorize(auth, s, rules.link_s)
            for s in index.sessions_by_tag.get(auth.uid, [])
        ):
            continue
        mode = ROAMING if auth.roaming_token else (GUEST if auth.token_type == "GUEST" else CARD)
        yield _orphan(
            auth.charger, auth.connector, auth.at, mode, auth.uid, settled, single_port, "authorize"
        )
    for remote in remotes:
        if not start <= remote.at < end or not _remote_counts(remote, rules):
            continue
        if any(_linked_remote(remote, s, rules.link_s) for s in index.sessions_of(remote)):
            continue
        yield _orphan(
            remote.charger,
            remote.connector,
            remote.at,
            _remote_mode(remote),
            remote.id_tag,
            settled,
            single_port,
            "remote_start",
        )


def _remote_counts(remote: RemoteStart, rules: Rules) -> bool:
    if remote.status == "pending":  # still waiting for the charger's answer
        return False
    return remote.answer in ("Accepted", "Rejected") or rules.failed_remote_counts


def _orphan(
    charger: int,
    connector: int | None,
    when: datetime,
    mode: str,
    id_tag: str,
    settled: datetime,
    single_port: dict[int, int],
    kind: str,
) -> Attempt:
    """An Authorize or remote start no transaction followed: a failed attempt, once the link
    window has passed without one."""
    return Attempt(
        charger=charger,
        connector=_only_port(charger, connector, single_port),
        at=when,
        mode=mode,
        driver=_driver(mode, id_tag),
        outcome=PENDING if when > settled else FAILED,
        start_s=None,
        orphan=kind,
    )


# -- counting -------------------------------------------------------------------------------------


def percentile(ordered: list[float], p: float) -> float | None:
    """The p-th percentile, interpolated linearly between ranks (numpy's default, as INL's
    calculator computes it)."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _percent(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 2) if whole else None


@dataclass
class ModeTally:
    attempts: int = 0
    delivered: int = 0
    completed: int = 0


@dataclass
class Tally:
    """One group's counts (a port, a property or a fleet)."""

    attempts: int = 0
    delivered: int = 0  # power flowed
    completed: int = 0
    ended_well: int = 0  # completions that delivered power (charge end success)
    pending: int = 0
    orphan_authorizes: int = 0
    orphan_remote_starts: int = 0
    visits: int = 0
    first_attempt_ok: int = 0
    visits_ok: int = 0
    modes: dict[str, ModeTally] = field(default_factory=lambda: {m: ModeTally() for m in MODES})
    start_seconds: array = field(default_factory=lambda: array("d"))
    # The open visit of each driver (or anonymous port): its last attempt and whether it charged.
    _visits: dict[tuple, list] = field(default_factory=dict)

    def add(self, attempt: Attempt, scope: tuple, rules: Rules) -> None:
        if attempt.outcome == PENDING:
            self.pending += 1
            return
        delivered = attempt.outcome in (COMPLETED, ENDED_BADLY)
        completed = attempt.outcome in (COMPLETED, UNPOWERED_STOP)
        self.ended_well += attempt.outcome == COMPLETED
        mode = self.modes[attempt.mode]
        self.attempts += 1
        mode.attempts += 1
        self.delivered += delivered
        mode.delivered += delivered
        self.completed += completed
        mode.completed += completed
        self.orphan_authorizes += attempt.orphan == "authorize"
        self.orphan_remote_starts += attempt.orphan == "remote_start"
        if attempt.start_s is not None:
            self.start_seconds.append(attempt.start_s)
        self._visit(attempt, scope, completed, rules)

    def _visit(self, attempt: Attempt, scope: tuple, completed: bool, rules: Rules) -> None:
        if attempt.driver:
            key: tuple = ("driver", scope, attempt.driver)
            window = rules.visit_driver_s
        else:
            key = ("port", attempt.charger, attempt.connector)
            window = rules.visit_anonymous_s
        visit = self._visits.get(key)
        if visit is not None and _near(attempt.at, visit[0], window):
            visit[0] = max(visit[0], attempt.at)
            if completed and not visit[1]:
                visit[1] = True
                self.visits_ok += 1
            return
        self._visits[key] = [attempt.at, completed]
        self.visits += 1
        self.first_attempt_ok += completed
        self.visits_ok += completed

    def as_json(self) -> dict:
        ordered = sorted(self.start_seconds)
        return {
            "charge_attempts": self.attempts,
            "power_delivered": self.delivered,
            "completions": self.completed,
            "in_progress": self.pending,
            "orphan_authorizes": self.orphan_authorizes,
            "orphan_remote_starts": self.orphan_remote_starts,
            "session_success_percent": _percent(self.completed, self.attempts),
            "charge_start_success_percent": _percent(self.delivered, self.attempts),
            "charge_end_success_percent": _percent(self.ended_well, self.delivered),
            "start_time_samples": len(ordered),
            "start_time_p50_s": _seconds(percentile(ordered, 50)),
            "start_time_p90_s": _seconds(percentile(ordered, 90)),
            "start_time_p95_s": _seconds(percentile(ordered, 95)),
            "visits": self.visits,
            "first_attempt_successes": self.first_attempt_ok,
            "first_attempt_success_percent": _percent(self.first_attempt_ok, self.visits),
            "visit_success_percent": _percent(self.visits_ok, self.visits),
            "by_mode": {
                m: {
                    "charge_attempts": t.attempts,
                    "power_delivered": t.delivered,
                    "completions": t.completed,
                    "session_success_percent": _percent(t.completed, t.attempts),
                }
                for m, t in self.modes.items()
            },
        }


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


K = TypeVar("K")


def _tally(groups: dict[K, Tally], key: K) -> Tally:
    found = groups.get(key)  # not setdefault: a Tally is not free to make
    if found is None:
        found = groups[key] = Tally()
    return found


@dataclass
class Board:
    """The KPIs of every port, property and fleet (organization) the attempts touch. Attempts
    are added in time order, slice after slice (a visit may span two slices)."""

    rules: Rules
    # charger id -> (property id, organization id)
    places: dict[int, tuple[int | None, int | None]]
    ports: dict[tuple[int, int], Tally] = field(default_factory=dict)
    properties: dict[int | None, Tally] = field(default_factory=dict)
    fleets: dict[int | None, Tally] = field(default_factory=dict)

    def add(self, found: Iterable[Attempt]) -> None:
        for attempt in found:
            prop, org = self.places.get(attempt.charger, (None, None))
            # A driver's visit is to a place: the property (or the charger, without one).
            scope = ("property", prop) if prop is not None else ("charger", attempt.charger)
            _tally(self.ports, (attempt.charger, attempt.connector)).add(attempt, scope, self.rules)
            _tally(self.properties, prop).add(attempt, scope, self.rules)
            _tally(self.fleets, org).add(attempt, scope, self.rules)

    def port(self, charger: int, connector: int) -> Tally:
        return self.ports.get((charger, connector)) or Tally()

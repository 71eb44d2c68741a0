"""Which alerts open and which clear (docs/reliability.md, "Alerts").

Pure: the problems seen now and the alerts open now in, the changes out; no Django. One alert
per problem (a rule, a charger, a port); it opens once the problem has lasted the rule's
`after_s` and clears when the problem is no longer seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# Kinds whose problem must last `after_s` before an alert opens. For the others `after_s` is
# part of the problem itself (the reboot window, the time before a certificate expires).
LASTING = {"offline", "faulted", "failed_start", "stuck_session"}

DEFAULT_UPTIME_PERCENT = 97.0
DEFAULT_REBOOTS = 3

# Webhook retries: 30 s, 1, 2, 4 ... minutes, at most an hour apart, given up after 10 tries.
RETRY_FIRST_S = 30
RETRY_MAX_S = 3600
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Problem:
    """Something wrong with a charger (connector 0) or one port, seen now."""

    kind: str
    charger_id: int
    connector_id: int
    since: datetime
    mrec_code: str = ""
    details: str = ""

    @property
    def key(self) -> tuple[int, int]:
        return (self.charger_id, self.connector_id)


@dataclass(frozen=True)
class OpenAlert:
    id: int
    charger_id: int
    connector_id: int
    since: datetime

    @property
    def key(self) -> tuple[int, int]:
        return (self.charger_id, self.connector_id)


@dataclass(frozen=True)
class Changes:
    open: list[Problem]
    clear: list[int]  # alert ids


def changes(
    kind: str,
    after_s: int,
    problems: Iterable[Problem],
    open_alerts: Iterable[OpenAlert],
    now: datetime,
) -> Changes:
    """For one rule: the problems of its kind that deserve a new alert, and the open alerts whose
    problem is gone. A problem opens an alert once it has lasted `after_s` (LASTING kinds); an
    open alert stays open while its problem is seen, even briefly shorter than that. A problem
    that began after the alert's (a stuck session that moved, then stuck again) is a new one:
    the old alert clears."""
    seen = {p.key: p for p in problems if p.kind == kind}
    due = timedelta(seconds=after_s if kind in LASTING else 0)
    to_clear = sorted(a.id for a in open_alerts if a.key not in seen or seen[a.key].since > a.since)
    still_open = {a.key for a in open_alerts if a.id not in to_clear}
    to_open = [
        p for key, p in sorted(seen.items()) if key not in still_open and now - p.since >= due
    ]
    return Changes(open=to_open, clear=to_clear)


def retry_delay_s(attempts: int) -> int:
    """The wait before try number `attempts + 1` (attempts already made, at least 1)."""
    return min(RETRY_FIRST_S * 2 ** max(attempts - 1, 0), RETRY_MAX_S)


def body(payload: dict) -> bytes:
    """The webhook body: compact JSON with sorted keys (what the signature covers)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, raw: bytes) -> str:
    """X-Signature: the hex HMAC-SHA256 of the raw body with the rule's secret."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()

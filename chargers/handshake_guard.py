"""Throttle failed OCPP handshakes (brute force on station ids and passwords, CWE-307).

Counts failures per client address and per station id in a sliding window, in process
memory: cheap enough to run before the password hash, and each process protects itself.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

WINDOW_S = 60.0
MAX_FAILURES = 10  # per station id
# Per address the bar is higher: a site's chargers often share one NAT address, and one
# misconfigured charger must not lock out its neighbours.
MAX_FAILURES_PER_ADDRESS = 200


class HandshakeGuard:
    def __init__(self, window_s: float = WINDOW_S, max_failures: int = MAX_FAILURES,
                 max_failures_per_address: int = MAX_FAILURES_PER_ADDRESS):
        self.window_s = window_s
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self._failures: dict[str, deque] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque:
        entries = self._failures[key]
        while entries and now - entries[0] > self.window_s:
            entries.popleft()
        if not entries:
            self._failures.pop(key, None)
            return deque()
        return entries

    def blocked(self, *, address: str, station_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return (
            len(self._recent(f"station:{station_id}", now)) >= self.max_failures
            or len(self._recent(f"ip:{address}", now)) >= self.max_failures_per_address
        )

    def failed(self, *, address: str, station_id: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in (f"ip:{address}", f"station:{station_id}"):
            self._failures[key].append(now)

    def succeeded(self, *, station_id: str) -> None:
        self._failures.pop(f"station:{station_id}", None)


guard = HandshakeGuard()

"""Throttle failed OCPP handshakes (brute force on station ids and passwords, CWE-307).

Failures are counted per (station id, source address) and per source address, in a sliding
window, in process memory: cheap enough to run before any lookup, and each process protects
itself. Never per station id alone: station ids are printed on QR labels, and a count any
address could raise would let a stranger lock the real charger out. So a charger with the
right password, connecting from an address that is not itself failing, is never refused.

Memory is bounded: each key keeps at most its threshold of timestamps, keys expire with the
window, and the table holds at most `max_keys` (least recently failed keys go first), so a
flood of random station ids from many addresses cannot grow it without bound. IPv6 sources are
counted per /64, the block one subscriber usually gets.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque

WINDOW_S = 60.0
MAX_FAILURES = 10  # per (station id, address)
# Per address the bar is higher: a site's chargers often share one NAT address, and one
# misconfigured charger must not lock out its neighbours.
MAX_FAILURES_PER_ADDRESS = 200
MAX_KEYS = 50_000


def address_key(address: str) -> str:
    """Return the counting unit of `address`: the address itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class HandshakeGuard:
    def __init__(
        self,
        window_s: float = WINDOW_S,
        max_failures: int = MAX_FAILURES,
        max_failures_per_address: int = MAX_FAILURES_PER_ADDRESS,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.window_s = window_s
        self.max_failures = max_failures
        self.max_failures_per_address = max_failures_per_address
        self.max_keys = max_keys
        # key -> recent failure times, oldest key (least recently failed) first.
        self._failures: OrderedDict[tuple[str, ...], deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _count(self, key: tuple[str, ...], now: float) -> int:
        entries = self._failures.get(key)
        if entries is None:
            return 0
        while entries and now - entries[0] > self.window_s:
            entries.popleft()
        if not entries:
            del self._failures[key]
            return 0
        return len(entries)

    def _expire(self, now: float) -> None:
        # Keys are ordered by their last failure: expired ones sit at the front.
        while self._failures:
            key, entries = next(iter(self._failures.items()))
            if entries and now - entries[-1] <= self.window_s:
                break
            del self._failures[key]
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def _add(self, key: tuple[str, ...], limit: int, now: float) -> None:
        entries = self._failures.get(key)
        if entries is None:
            # Only the last `limit` failures decide whether the key is blocked.
            entries = self._failures[key] = deque(maxlen=limit)
        else:
            self._failures.move_to_end(key)
        entries.append(now)

    def blocked(self, *, address: str, station_id: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        source = address_key(address)
        return (
            self._count(("pair", station_id, source), now) >= self.max_failures
            or self._count(("address", source), now) >= self.max_failures_per_address
        )

    def failed(self, *, address: str, station_id: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        source = address_key(address)
        self._add(("address", source), self.max_failures_per_address, now)
        self._add(("pair", station_id, source), self.max_failures, now)
        self._expire(now)

    def succeeded(self, *, station_id: str, address: str | None = None) -> None:
        """Forget the failures of this charger from this address (the others stay counted)."""
        if address is not None:
            self._failures.pop(("pair", station_id, address_key(address)), None)


guard = HandshakeGuard()

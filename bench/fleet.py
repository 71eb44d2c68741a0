"""What the fleet scenario needs beside the load generator: the loopback addresses its chargers
connect from, and an operator's API commands sent while the fleet runs.

Linux gives one (source address, destination address, destination port) at most the ephemeral
port range's sockets (`net.ipv4.ip_local_port_range`, 32768–60999 here: 28,232). A fleet of
30,000 chargers from 127.0.0.1 to one port would run out; the whole 127.0.0.0/8 is local, so
the chargers spread over a few of its addresses instead, as real chargers come from many.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx

# Sockets per (source address, server port) pair: well below the ephemeral range.
PER_SOURCE = 10_000


def ephemeral_ports() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def source_addresses(chargers: int, ports: int) -> list[str]:
    """Loopback addresses enough for `chargers` spread over `ports` server ports; none (the
    kernel's choice, 127.0.0.1) when one address holds them."""
    per_port = -(-chargers // max(ports, 1))
    if per_port <= PER_SOURCE:
        return []
    return [f"127.0.0.{2 + k}" for k in range(-(-per_port // PER_SOURCE))]


class ApiCommands:
    """Every `every` seconds, one TriggerMessage(Heartbeat) through the REST API to a random
    charger of the fleet, each through the next server process: an operator's commands while
    the fleet runs. Each is answered (200 and the charger's status) or counted as not."""

    def __init__(self, http_urls: list[str], token: str, stations: list[str], every: float) -> None:
        self.http_urls, self.token, self.stations, self.every = http_urls, token, stations, every
        self.results: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-commands", daemon=True)

    def start(self, at: float, until: float) -> None:
        """Send from `at` until `until` (wall clock): the fleet's measured window."""
        self._at, self._until = at, until
        self._thread.start()

    def _run(self) -> None:
        rng = random.Random("fleet-commands")
        with httpx.Client(timeout=60, headers={"Authorization": f"Token {self.token}"}) as http:
            sent = 0
            while (due := self._at + sent * self.every) < self._until and not self._stop.wait(
                max(0.0, due - time.time())
            ):
                station = rng.choice(self.stations)
                base = self.http_urls[sent % len(self.http_urls)]
                sent += 1
                started = time.monotonic()
                try:
                    response = http.post(
                        f"{base}/api/v1/chargers/{station}/commands/TriggerMessage/",
                        json={"requestedMessage": "Heartbeat"},
                    )
                    status, body = response.status_code, response.json()
                except (httpx.HTTPError, ValueError) as exc:
                    status, body = 0, {"error": type(exc).__name__}
                self.results.append(
                    {
                        "station": station,
                        "http": status,
                        "status": body.get("status"),
                        "ms": round((time.monotonic() - started) * 1000, 1),
                    }
                )

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=90)
        answered = [r for r in self.results if r["http"] == 200 and r["status"] == "Accepted"]
        times = sorted(r["ms"] for r in self.results)
        return {
            "sent": len(self.results),
            "answered": len(answered),
            "p50_ms": times[len(times) // 2] if times else None,
            "max_ms": times[-1] if times else None,
            "not_answered": [r for r in self.results if r not in answered][:5],
        }

"""The regression guard of the OCPP path (issue 48 item 4): the ratios of one run, printed by
`make bench`, compared with the last recorded ones, with how busy the machine was.

Absolute numbers move with the machine; ratios to the peer and the echo server measured in the
same run move much less, and a change that loses more than 10 % of one is a regression to win
back or explain (docs/performance.md, "Regression guard"). The load average is kept beside them:
a run on a busy machine is no measurement of the quiet-machine targets.
"""

from __future__ import annotations

import os
import threading
from typing import Any

LOSS_ALLOWED = 0.10  # a ratio may lose at most 10 % against the baseline

# (key, what, higher is better)
RATIOS = (
    ("closed_vs_peer", "closed loop msg/s ÷ the peer's", True),
    ("closed_share_of_echo", "closed loop msg/s ÷ the raw echo's", True),
    ("p99_vs_peer", "closed loop p99 ÷ the peer's", False),
    ("storm_vs_peer", "restart storm, all back online ÷ the peer's time", False),
)


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b <= 0:
        return None
    return round(a / b, 3)


def ratios(report: dict, connections: str | None = None) -> dict[str, Any]:
    """The guard's ratios of a bench report: the closed loop at `connections` (default the
    largest count run) against the peer and the echo server, the 1.6 restart storm against the
    peer. A ratio whose parts did not run is None."""
    tp = report.get("throughput", {})
    ours_runs = tp.get("ours", {})
    if connections is None and ours_runs:
        connections = str(max(int(n) for n in ours_runs))
    ours = ours_runs.get(connections or "", {})
    peer = tp.get("peer", {}).get(connections or "", {})
    echo = tp.get("echo", {}).get(connections or "", {})
    storm = report.get("storm", {})
    storm_ours, storm_peer = storm.get("ours", {}), storm.get("peer", {})
    return {
        "connections": int(connections) if connections else None,
        "storm_connections": storm_ours.get("connections"),
        "closed_vs_peer": _ratio(ours.get("msg_per_s"), peer.get("msg_per_s")),
        "closed_share_of_echo": _ratio(ours.get("msg_per_s"), echo.get("msg_per_s")),
        "p99_vs_peer": _ratio(ours.get("p99_ms"), peer.get("p99_ms")),
        "storm_vs_peer": _ratio(
            storm_ours.get("all_online_after_kill_s"), storm_peer.get("all_online_after_kill_s")
        ),
        "storm_all_back": (
            storm_ours.get("online", 0) >= storm_ours.get("connections", 1) if storm_ours else None
        ),
    }


def losses(now: dict, baseline: dict) -> dict[str, float]:
    """Each ratio that got worse than the baseline by more than LOSS_ALLOWED: how much (0.25:
    25 % worse). Ratios measured at other sizes are not compared."""
    if (now.get("connections"), now.get("storm_connections")) != (
        baseline.get("connections"),
        baseline.get("storm_connections"),
    ):
        return {}
    out = {}
    for key, _, higher_better in RATIOS:
        a, b = now.get(key), baseline.get(key)
        if not a or not b:
            continue
        loss = (b - a) / b if higher_better else (a - b) / b
        if loss > LOSS_ALLOWED:
            out[key] = round(loss, 3)
    return out


def table(now: dict, load: dict | None, baseline: dict | None = None) -> list[str]:
    """The guard's lines for the printed report."""
    lines = [
        "",
        f"Ratios (regression guard, {now.get('connections')} chargers in the closed loop, "
        f"{now.get('storm_connections')} in the storm):",
    ]
    lost = losses(now, baseline) if baseline else {}
    for key, what, _ in RATIOS:
        value = now.get(key)
        shown = "not run" if value is None else f"{value:.2f}"
        if key == "closed_share_of_echo" and value is not None:
            shown = f"{100 * value:.0f} %"
        was = baseline.get(key) if baseline else None
        versus = f" (baseline {was:.2f})" if isinstance(was, int | float) else ""
        flag = f"  LOST {100 * lost[key]:.0f} %" if key in lost else ""
        lines.append(f"  {what}: {shown}{versus}{flag}")
    if load:
        lines.append(
            f"  load average: {load.get('before')} before, {load.get('during_mean')} mean and "
            f"{load.get('during_max')} max during ({os.cpu_count()} cores)"
            + ("; a busy machine: not the quiet-machine measurement" if busy(load) else "")
        )
    return lines


def busy(load: dict) -> bool:
    """More runnable work than half the cores before the run: other work shares the machine."""
    before = load.get("before")
    return isinstance(before, int | float) and before > 0.5 * (os.cpu_count() or 1)


class LoadSampler:
    """The 1-minute load average before the run and sampled during it (every `every_s`)."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.before = round(os.getloadavg()[0], 2)
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        during = self.samples or [os.getloadavg()[0]]
        return {
            "before": self.before,
            "during_mean": round(sum(during) / len(during), 2),
            "during_max": round(max(during), 2),
        }

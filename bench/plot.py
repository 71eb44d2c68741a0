"""Draw a bench report's curve (bench/curve.py) as the pictures of docs/benchmarks.md.

    python -m bench.plot bench/results/curve.json docs/benchmarks

Writes `throughput.png` (messages per second against chargers, each server's median with its
min–max band, the knee marked) and `latency.png` (p95 against chargers, log scale). matplotlib
is the `plots` extra (`make bench-curves` installs it); nothing else of the project needs it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLOURS = {"ours": "#1f77b4", "peer": "#ff7f0e", "echo": "#7f7f7f"}


def _series(
    server: dict[str, Any], figure: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    xs, mid, low, high = [], [], [], []
    for n, point in sorted(server["points"].items(), key=lambda item: int(item[0])):
        value = point.get(figure)
        if value:
            xs.append(int(n))
            mid.append(value["median"])
            low.append(value["min"])
            high.append(value["max"])
    return xs, mid, low, high


def draw(report: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    import matplotlib.pyplot as plt

    summary = report["curve"]
    machine = report.get("machine", {})
    subtitle = (
        f"{machine.get('cpus')} cores, {summary['repeat']} runs a point "
        f"(median, min–max band), {report.get('started_at', '')[:10]}"
    )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for figure, name, label, log_y in (
        ("msg_per_s", "throughput.png", "messages per second", False),
        ("p95_ms", "latency.png", "p95 round trip (ms)", True),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
        for server_name, server in summary["servers"].items():
            xs, mid, low, high = _series(server, figure)
            colour = COLOURS.get(server_name)
            ax.plot(xs, mid, marker="o", label=server_name, color=colour)
            ax.fill_between(xs, low, high, alpha=0.2, color=colour)
            knee = server.get("knee")
            if knee and knee.get(figure) is not None:
                ax.annotate(
                    "knee",
                    (knee["chargers"], knee[figure]),
                    textcoords="offset points",
                    xytext=(6, 8),
                    fontsize=8,
                    color=colour,
                )
        ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel("chargers in the closed loop")
        ax.set_ylabel(label)
        ax.set_title(f"Closed loop: {label}\n{subtitle}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / name
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a bench JSON with a curve (--only curve)")
    parser.add_argument("out", type=Path, help="the folder for the pictures")
    args = parser.parse_args()
    for path in draw(json.loads(args.report.read_text()), args.out):
        print(path)


if __name__ == "__main__":
    main()

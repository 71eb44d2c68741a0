"""Server-rendered SVG charts for portal pages: pure geometry, no Django, no JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: float
    title: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    max_value: float
    unit: str
    axis_y: float
    ticks: list[tuple[float, str]]


def nice_max(value: float) -> float:
    """Return a round number >= value for the top of an axis (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def bar_chart(
    points: list[tuple[str, float]],
    *,
    unit: str,
    width: int = 600,
    height: int = 180,
    pad_left: int = 44,
    pad_bottom: int = 22,
) -> BarChart:
    """Lay out one bar per (label, value) point."""
    top = nice_max(max((v for _, v in points), default=0.0))
    plot_w = width - pad_left - 4
    plot_h = height - pad_bottom - 8
    n = max(len(points), 1)
    slot = plot_w / n
    bars = []
    for i, (label, value) in enumerate(points):
        h = plot_h * (float(value) / top) if top else 0  # energy is Decimal
        bars.append(
            Bar(
                x=round(pad_left + i * slot + slot * 0.15, 2),
                y=round(8 + plot_h - h, 2),
                width=round(slot * 0.7, 2),
                height=round(h, 2),
                label=label,
                value=value,
                title=f"{label}: {value:g} {unit}",
            )
        )
    ticks = [(round(8 + plot_h - plot_h * f, 2), f"{top * f:g}") for f in (0, 0.5, 1)]
    return BarChart(width, height, bars, top, unit, 8 + plot_h, ticks)


@dataclass(frozen=True)
class LineSeries:
    name: str
    unit: str
    path: str
    points: list[tuple[float, float]]
    max_value: float
    ticks: list[tuple[float, str]]


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    series: list[LineSeries]
    x_ticks: list[tuple[float, str]]
    axis_y: float


def line_chart(
    series: dict[str, tuple[str, list[tuple[datetime, Decimal | float]]]],
    *,
    width: int = 640,
    height: int = 220,
    pad_left: int = 50,
    pad_bottom: int = 24,
    pad_right: int = 8,
) -> LineChart | None:
    """Lay out time series sharing one time axis; each series gets its own y scale.

    `series` maps a name to (unit, [(timestamp, value), ...]). Returns None with no points.
    Time labels read the timestamps as given (pass them in the zone to show).
    `pad_right` leaves room for a second series' axis on the right.
    """
    all_times = [t for _, pts in series.values() for t, _ in pts]
    if not all_times:
        return None
    t0, t1 = min(all_times), max(all_times)
    span = max((t1 - t0).total_seconds(), 1.0)
    plot_w = width - pad_left - pad_right
    plot_h = height - pad_bottom - 8
    out = []
    for name, (unit, pts) in series.items():
        if not pts:
            continue
        top = nice_max(max(float(v) for _, v in pts))
        coords = [
            (
                round(pad_left + plot_w * (t - t0).total_seconds() / span, 2),
                round(8 + plot_h - plot_h * float(v) / top, 2),
            )
            for t, v in pts
        ]
        path = "M" + " L".join(f"{x},{y}" for x, y in coords)
        ticks = [(round(8 + plot_h - plot_h * f, 2), f"{top * f:g}") for f in (0, 0.5, 1)]
        out.append(LineSeries(name, unit, path, coords, top, ticks))
    x_ticks = []
    for f in (0, 0.5, 1):
        when = t0 + (t1 - t0) * f
        x_ticks.append((round(pad_left + plot_w * f, 2), when.strftime("%H:%M")))
    return LineChart(width, height, out, x_ticks, 8 + plot_h)

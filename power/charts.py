"""Pure layout of the Power page's chart: budget, limits and draw on one ampere axis (SVG)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from backoffice.charts import nice_max


@dataclass(frozen=True)
class Line:
    name: str
    css: str
    path: str


@dataclass(frozen=True)
class PowerChart:
    width: int
    height: int
    lines: list[Line]
    max_value: float
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    axis_y: float


Point = tuple[datetime, Decimal, Decimal, Decimal | None]  # at, budget, allocated, measured


def _local(seconds: float, like: datetime) -> datetime:
    """The moment `seconds` after the epoch, in the zone of `like`."""
    return datetime.fromtimestamp(seconds, tz=like.tzinfo)


def power_chart(
    points: Sequence[Point], *, width: int = 640, height: int = 220, pad_left: int = 50
) -> PowerChart | None:
    """Lay out the budget (a step line), the limits and the draw on one axis; None without points."""
    if not points:
        return None
    # In seconds since the epoch, not `t1 - t0`: the points are in the location's zone, and
    # Python subtracts two datetimes of one zone on the wall clock, so across a change to or
    # from summer time a line jumped back over the repeated hour (or an hour went missing).
    t0, t1 = points[0][0], points[-1][0]
    s0, seconds = t0.timestamp(), t1.timestamp() - t0.timestamp()
    span = max(seconds, 1.0)
    plot_w = width - pad_left - 8
    plot_h = height - 24 - 8
    top = nice_max(max(float(max(p[1], p[2], p[3] or 0)) for p in points))

    def xy(at: datetime, value: Decimal) -> str:
        x = round(pad_left + plot_w * (at.timestamp() - s0) / span, 2)
        y = round(8 + plot_h - plot_h * float(value) / top, 2)
        return f"{x},{y}"

    def path(index: int, *, step: bool = False) -> str:
        parts: list[str] = []
        previous: Decimal | None = None
        for p in points:
            value = (p[1], p[2], p[3])[index - 1]
            if value is None:
                continue
            if step and previous is not None:
                parts.append(xy(p[0], previous))
            parts.append(xy(p[0], value))
            previous = value
        return ("M" + " L".join(parts)) if parts else ""

    lines = [
        Line("Budget", "budget", path(1, step=True)),
        Line("Limits given", "allocated", path(2)),
        Line("Measured draw", "measured", path(3)),
    ]
    y_ticks = [(round(8 + plot_h - plot_h * f, 2), f"{top * f:g}") for f in (0, 0.5, 1)]
    x_ticks = [
        (round(pad_left + plot_w * f, 2), _local(s0 + seconds * f, t0).strftime("%H:%M"))
        for f in (0, 0.5, 1)
    ]
    return PowerChart(
        width, height, [line for line in lines if line.path], top, y_ticks, x_ticks, 8 + plot_h
    )

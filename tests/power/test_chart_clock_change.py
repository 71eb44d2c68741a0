"""The Power page's chart over the night the clocks go back: an hour of samples is drawn as
an hour, in order, and the time labels are the location's clock."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from power.charts import power_chart

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def test_samples_over_the_autumn_change_are_drawn_in_time_order_and_evenly():
    # Every 30 minutes from 00:00 to 05:00 local on 25 October 2026 (02:00-03:00 happens twice):
    # twelve samples over five and a half real hours, as the page passes them (location's zone).
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    points = [
        ((start + timedelta(minutes=30 * n)).astimezone(AMSTERDAM), Decimal(32), Decimal(16), None)
        for n in range(12)
    ]
    chart = power_chart(points, width=640, pad_left=50)
    assert chart is not None
    limits = next(line for line in chart.lines if line.name == "Limits given")
    xs = [float(part.split(",")[0]) for part in limits.path.lstrip("M").split(" L")]
    # Before, the x positions came from wall-clock differences: the second 02:00-03:00 was drawn
    # on top of the first (the line went back an hour) and the last samples an hour short.
    assert xs == sorted(xs) and len(set(xs)) == len(xs)
    steps = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert all(abs(step - 582 / 11) < 0.02 for step in steps), steps
    # The middle of 22:00-03:30 UTC is 00:45 UTC: 02:45 in Amsterdam (summer time still).
    assert [label for _, label in chart.x_ticks] == ["00:00", "02:45", "04:30"]

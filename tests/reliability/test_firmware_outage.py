"""A failed firmware install is an outage of the whole charger until a good install
(reliability.outages, pure; the records come from fleet's campaigns, docs/firmware.md)."""

from datetime import UTC, datetime, timedelta

from reliability import outages
from reliability.outages import Link, Reported

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_failed_install_is_down_until_the_good_one():
    failed, good = T0 + timedelta(hours=1), T0 + timedelta(hours=3)
    uptime = outages.port_uptime(
        start=T0,
        end=T0 + timedelta(hours=10),
        now=T0 + timedelta(hours=10),
        port=[Reported(T0, "Available")],
        firmware=[Link(failed, False), Link(good, True)],
    )
    assert [(o.start, o.end, o.cause) for o in uptime.outages] == [(failed, good, "firmware")]
    assert uptime.outage_seconds == 2 * 3600


def test_a_failed_install_without_a_good_one_lasts_until_now():
    now = T0 + timedelta(hours=5)
    uptime = outages.port_uptime(
        start=T0,
        end=T0 + timedelta(days=1),
        now=now,
        firmware=[Link(T0 + timedelta(hours=4), False)],
    )
    assert [(o.end, o.cause) for o in uptime.outages] == [(now, "firmware")]

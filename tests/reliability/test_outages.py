"""The outage rules of reliability.outages (docs/reliability.md), as a table of cases."""

from datetime import UTC, datetime, timedelta

import pytest

from reliability.outages import (
    Attempt,
    Link,
    Reported,
    Span,
    attempt_failed,
    nevi_percent,
    port_uptime,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rep(s, status, error="NoError", vendor=""):
    return Reported(at(s), status, error, vendor)


def attempt(start, end=None, energy=None, authorized=True, plugged=True, suspended=False):
    return Attempt(
        at(start),
        at(end) if end is not None else None,
        authorized,
        plugged,
        at(energy) if energy is not None else None,
        suspended,
    )


HOUR = 3600

CASES = [
    # (name, facts, expected [(start, end, cause, excluded)])
    ("nothing reported is up", {}, []),
    ("available all along", {"port": [rep(0, "Available")]}, []),
    (
        "faulted 120 s",
        {"port": [rep(100, "Faulted", "GroundFailure"), rep(220, "Available")]},
        [(100, 220, "faulted", False)],
    ),
    (
        "unavailable not by the host is down",
        {"port": [rep(10, "Unavailable"), rep(70, "Available")]},
        [(10, 70, "unavailable", False)],
    ),
    (
        "unavailable by the host's choice is not down",
        {
            "port": [rep(10, "Unavailable"), rep(70, "Available")],
            "host_off": [Span(at(5), at(80))],
        },
        [],
    ),
    (
        "host's choice ends before the charger comes back: the rest is down",
        {
            "port": [rep(10, "Unavailable"), rep(70, "Available")],
            "host_off": [Span(at(5), at(40))],
        },
        [(40, 70, "unavailable", False)],
    ),
    (
        "connector 0 faulted takes every port down",
        {
            "port": [rep(0, "Available")],
            "whole": [rep(50, "Faulted"), rep(110, "Available")],
        },
        [(50, 110, "faulted", False)],
    ),
    (
        "suspended and charging are up",
        {"port": [rep(0, "Charging"), rep(50, "SuspendedEV"), rep(90, "SuspendedEVSE")]},
        [],
    ),
    (
        "offline 90 s",
        {"links": [Link(at(0), True), Link(at(100), False), Link(at(190), True)]},
        [(100, 190, "offline", False)],
    ),
    (
        "still offline at the end of the period",
        {"links": [Link(at(100), False)]},
        [(100, HOUR, "offline", False)],
    ),
    (
        "a fault during an outage is one outage, named after what came first",
        {
            "links": [Link(at(100), False), Link(at(200), True)],
            "port": [rep(150, "Faulted"), rep(300, "Available")],
        },
        [(100, 300, "offline", False)],
    ),
    (
        "failed start: down from the attempt until the next energy",
        {"attempts": [attempt(100, 200), attempt(1000, 2000, energy=1010)]},
        [(100, 1010, "failed_start", False)],
    ),
    (
        "failed start with no later energy lasts to the end",
        {"attempts": [attempt(100)]},
        [(100, HOUR, "failed_start", False)],
    ),
    (
        "energy within the limit is a success",
        {"attempts": [attempt(100, 900, energy=399)]},
        [],
    ),
    (
        "energy after the limit: down until it came",
        {"attempts": [attempt(100, 900, energy=401)]},
        [(100, 401, "failed_start", False)],
    ),
    (
        "SuspendedEV is not a failure",
        {"attempts": [attempt(100, 900, suspended=True)]},
        [],
    ),
    (
        "an unauthorized attempt is not a failure",
        {"attempts": [attempt(100, 900, authorized=False)]},
        [],
    ),
    (
        "no EV plugged is not a failure",
        {"attempts": [attempt(100, 900, plugged=False)]},
        [],
    ),
    (
        "an exclusion covers part of an outage",
        {
            "port": [rep(100, "Faulted"), rep(400, "Available")],
            "exclusions": [Span(at(200), at(300))],
        },
        [(100, 200, "faulted", False), (200, 300, "faulted", True), (300, 400, "faulted", False)],
    ),
    (
        "an outage before the period is cut at its start",
        {"port": [rep(-500, "Faulted"), rep(60, "Available")]},
        [(0, 60, "faulted", False)],
    ),
]


@pytest.mark.parametrize("name,facts,expected", CASES, ids=[c[0] for c in CASES])
def test_outage_rules(name, facts, expected):
    result = port_uptime(start=T0, end=at(HOUR), now=at(10 * HOUR), **facts)
    got = [
        ((o.start - T0).total_seconds(), (o.end - T0).total_seconds(), o.cause, o.excluded)
        for o in result.outages
    ]
    assert got == expected
    counted = sum(e - s for s, e, _, excluded in expected if not excluded)
    assert result.percent == round((HOUR - counted) / HOUR * 100, 3)


def test_vendor_codes_travel_with_the_outage():
    result = port_uptime(
        start=T0,
        end=at(HOUR),
        now=at(HOUR),
        port=[rep(10, "Faulted", "GroundFailure", "E-117"), rep(20, "Available")],
    )
    (outage,) = result.outages
    assert (outage.error_code, outage.vendor_code) == ("GroundFailure", "E-117")


def test_a_running_attempt_fails_only_once_the_limit_passed():
    running = attempt(0)
    assert not attempt_failed(running, now=at(299))
    assert attempt_failed(running, now=at(300))
    assert attempt_failed(running, now=at(100), after_s=50)


def test_nothing_after_now_is_counted():
    result = port_uptime(start=T0, end=at(HOUR), now=at(600), links=[Link(at(300), False)])
    assert result.period_seconds == 600
    assert result.outage_seconds == 300
    assert result.percent == 50.0


def test_excluded_time_is_given_back():
    result = port_uptime(
        start=T0,
        end=at(1000),
        now=at(1000),
        port=[rep(0, "Faulted"), rep(500, "Available")],
        exclusions=[Span(at(0), None)],
    )
    assert (result.outage_seconds, result.excluded_seconds, result.percent) == (500, 500, 100.0)


def test_nevi_formula_over_a_year():
    # 5 hours down of which 1 excluded: (525600 - 240) / 525600.
    assert nevi_percent(300, 60) == round((525_600 - 240) / 525_600 * 100, 3)


def test_fifteen_minute_interval_records():
    from reliability.outages import Outage, intervals

    records = intervals(
        [
            Outage(at(600), at(1200), "faulted"),
            Outage(at(1200), at(1500), "faulted", excluded=True),
            Outage(at(2000), at(2100), "offline"),
        ],
        T0,
        at(3000),
    )
    assert [(r.start, r.end) for r in records][:2] == [(at(0), at(900)), (at(900), at(1800))]
    assert [(r.down_seconds, r.excluded_seconds, r.cause) for r in records] == [
        (300, 0, "faulted"),
        (600, 300, "faulted"),
        (100, 0, "offline"),
        (0, 0, ""),
    ]
    assert records[-1].end == at(3000)

"""Table-driven tests of the pure cost function; every expected amount is computed by hand
in the comment next to it. No database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from billing.pricing import PlanTerms, RateTerms, Sample, SessionFacts, StatusChange, session_cost

T0 = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)
REG = "Energy.Active.Import.Register"
POW = "Power.Active.Import"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rate(**kw) -> RateTerms:
    values = dict(
        currency="EUR",
        connection_fee=D("1.00"),
        energy_price_per_kwh=D("0.35"),
        tax_percent=D("21"),
    )
    values.update(kw)
    return RateTerms(**values)


def facts(wh=10000, stop=60, start_wh=1000, **kw) -> SessionFacts:
    return SessionFacts(
        started_at=T0,
        stopped_at=at(stop) if stop is not None else None,
        meter_start_wh=start_wh,
        meter_stop_wh=None if wh is None else start_wh + wh,
        **kw,
    )


IDLE = dict(idle_fee_per_minute=D("0.10"), idle_grace_minutes=15)

CASES = [
    # id, rate, facts, expected {kind: amount}, subtotal, tax, total
    (
        "basic: 1.00 + 10 kWh x 0.35 = 4.50; 21% = 0.945 -> 0.95",
        rate(),
        facts(),
        {"connection_fee": "1.00", "energy": "3.50"},
        "4.50",
        "0.95",
        "5.45",
    ),
    (
        "idle: SuspendedEV at 60, stop at 120 -> 60 min idle - 15 grace = 45 x 0.10 = 4.50",
        rate(**IDLE),
        facts(
            stop=120,
            statuses=(StatusChange(at(0), "Charging"), StatusChange(at(60), "SuspendedEV")),
        ),
        {"connection_fee": "1.00", "energy": "3.50", "idle_fee": "4.50"},
        "9.00",
        "1.89",
        "10.89",
    ),
    (
        "idle cap: 200 min idle - 15 = 185 x 0.10 = 18.50 capped at 10.00; tax 3.045 -> 3.05",
        rate(**IDLE, idle_fee_cap=D("10.00")),
        facts(stop=260, statuses=(StatusChange(at(60), "SuspendedEV"),)),
        {"connection_fee": "1.00", "energy": "3.50", "idle_fee": "10.00"},
        "14.50",
        "3.05",
        "17.55",
    ),
    (
        "idle within grace: 10 min idle < 15 -> no idle line",
        rate(**IDLE),
        facts(stop=70, statuses=(StatusChange(at(60), "Finishing"),)),
        {"connection_fee": "1.00", "energy": "3.50"},
        "4.50",
        "0.95",
        "5.45",
    ),
    (
        "idle partial minute: 45.5 min - 15 = 30.5 -> 30 whole minutes = 3.00",
        rate(**IDLE),
        facts(stop=105.5, statuses=(StatusChange(at(60), "SuspendedEV"),)),
        {"connection_fee": "1.00", "energy": "3.50", "idle_fee": "3.00"},
        "7.50",
        "1.58",
        "9.08",
    ),
    (
        "idle resets when charging resumes: last SuspendedEV at 90, stop 120 -> 30 - 15 = 15 min = 1.50",
        rate(**IDLE),
        facts(
            stop=120,
            statuses=(
                StatusChange(at(30), "SuspendedEV"),
                StatusChange(at(40), "Charging"),
                StatusChange(at(90), "SuspendedEV"),
            ),
        ),
        {"connection_fee": "1.00", "energy": "3.50", "idle_fee": "1.50"},
        "6.00",
        "1.26",
        "7.26",
    ),
    (
        "SuspendedEVSE (the charger paused) is never idle time",
        rate(**IDLE),
        facts(stop=120, statuses=(StatusChange(at(60), "SuspendedEVSE"),)),
        {"connection_fee": "1.00", "energy": "3.50"},
        "4.50",
        "0.95",
        "5.45",
    ),
    (
        "idle from power: < 100 W from 60 on, stop 120 -> 45 min = 4.50",
        rate(**IDLE),
        facts(
            stop=120,
            samples=(
                Sample(at(10), POW, D("7000")),
                Sample(at(50), POW, D("7000")),
                Sample(at(60), POW, D("50")),
                Sample(at(90), POW, D("0")),
            ),
        ),
        {"connection_fee": "1.00", "energy": "3.50", "idle_fee": "4.50"},
        "9.00",
        "1.89",
        "10.89",
    ),
    (
        "waiting for power 60-90 (0 W, docs/power.md) is not idle: idle from 90, 30 - 15 = 1.50",
        rate(**IDLE),
        facts(
            stop=120,
            samples=(
                Sample(at(10), POW, D("7000")),
                Sample(at(50), POW, D("7000")),
                Sample(at(60), POW, D("0")),
                Sample(at(90), POW, D("0")),
            ),
            waiting=((at(60), at(90)),),
        ),
        {"connection_fee": "1.00", "energy": "3.50", "idle_fee": "1.50"},
        "6.00",
        "1.26",
        "7.26",
    ),
    (
        "still waiting for power when it stopped: no idle fee at all, whatever the status said",
        rate(**IDLE),
        facts(
            stop=120,
            statuses=(StatusChange(at(0), "Charging"), StatusChange(at(60), "SuspendedEV")),
            waiting=((at(30), at(40)), (at(70), None)),
        ),
        {"connection_fee": "1.00", "energy": "3.50"},
        "4.50",
        "0.95",
        "5.45",
    ),
    (
        "0 kWh, fee not configured for 0 kWh: nothing to pay",
        rate(),
        facts(wh=0, stop=2),
        {"energy": "0.00"},
        "0.00",
        "0.00",
        "0.00",
    ),
    (
        "0 kWh, fee configured for 0 kWh: 1.00 + 21% = 1.21",
        rate(connection_fee_for_zero_energy=True),
        facts(wh=0, stop=2),
        {"connection_fee": "1.00", "energy": "0.00"},
        "1.00",
        "0.21",
        "1.21",
    ),
    (
        "0 kWh retry of a failed attempt: connection fee not charged twice",
        rate(connection_fee_for_zero_energy=True),
        facts(wh=0, stop=2, repeated_attempt=True),
        {"energy": "0.00"},
        "0.00",
        "0.00",
        "0.00",
    ),
    (
        "meter reset, no stop reading: 5000->8000 (+3000), reset ->1000 (+1000), ->3000 (+2000) = 6 kWh = 2.10",
        rate(),
        SessionFacts(
            started_at=T0,
            stopped_at=at(60),
            meter_start_wh=5000,
            meter_stop_wh=None,
            samples=(
                Sample(at(20), REG, D("8000")),
                Sample(at(40), REG, D("1000")),
                Sample(at(60), REG, D("3000")),
            ),
        ),
        {"connection_fee": "1.00", "energy": "2.10"},
        "3.10",
        "0.65",
        "3.75",
    ),
    (
        "meter reset, stop lower than start: ... + 3000->3500 = 6.5 kWh x 0.35 = 2.275 -> 2.28; tax 0.6888 -> 0.69",
        rate(),
        SessionFacts(
            started_at=T0,
            stopped_at=at(60),
            meter_start_wh=5000,
            meter_stop_wh=3500,
            samples=(
                Sample(at(20), REG, D("8000")),
                Sample(at(40), REG, D("1000")),
                Sample(at(60), REG, D("3000")),
            ),
        ),
        {"connection_fee": "1.00", "energy": "2.28"},
        "3.28",
        "0.69",
        "3.97",
    ),
    (
        "time price: 1.5 h charging x 2.00 = 3.00; tax 1.575 -> 1.58",
        rate(time_price_per_hour=D("2.00")),
        facts(stop=90),
        {"connection_fee": "1.00", "energy": "3.50", "charging_time": "3.00"},
        "7.50",
        "1.58",
        "9.08",
    ),
    (
        "time price counts charging only: SuspendedEV at 60 of 90 -> 1 h = 2.00",
        rate(time_price_per_hour=D("2.00")),
        facts(stop=90, statuses=(StatusChange(at(60), "SuspendedEV"),)),
        {"connection_fee": "1.00", "energy": "3.50", "charging_time": "2.00"},
        "6.50",
        "1.37",
        "7.87",
    ),
    (
        "rounding half-up per line: 1 kWh x 0.305 = 0.305 -> 0.31; tax 0.0651 -> 0.07",
        rate(connection_fee=D("0"), energy_price_per_kwh=D("0.305")),
        facts(wh=1000),
        {"energy": "0.31"},
        "0.31",
        "0.07",
        "0.38",
    ),
    (
        "rounding: 7.777 kWh x 0.333 = 2.589741 -> 2.59; tax 0.5439 -> 0.54",
        rate(connection_fee=D("0"), energy_price_per_kwh=D("0.333")),
        facts(wh=7777),
        {"energy": "2.59"},
        "2.59",
        "0.54",
        "3.13",
    ),
    (
        "JPY has no minor unit: 10.5 kWh x 35 = 367.5 -> 368; 10% = 36.8 -> 37",
        rate(
            currency="JPY", connection_fee=D("0"), energy_price_per_kwh=D("35"), tax_percent=D("10")
        ),
        facts(wh=10500),
        {"energy": "368"},
        "368",
        "37",
        "405",
    ),
    (
        "KWD has 3 decimals: 10.001 kWh x 0.0125 = 0.1250125 -> 0.125",
        rate(
            currency="KWD",
            connection_fee=D("0"),
            energy_price_per_kwh=D("0.0125"),
            tax_percent=D("0"),
        ),
        facts(wh=10001),
        {"energy": "0.125"},
        "0.125",
        "0.000",
        "0.125",
    ),
    (
        "subscription: 5 kWh included (1.75) + 10% off the other 5 kWh (0.175) = 1.925 -> -1.93; tax 0.5397 -> 0.54",
        rate(),
        facts(
            plan=PlanTerms(
                "Resident", included_kwh_remaining=D("5"), energy_discount_percent=D("10")
            )
        ),
        {"connection_fee": "1.00", "energy": "3.50", "subscription_discount": "-1.93"},
        "2.57",
        "0.54",
        "3.11",
    ),
]


@pytest.mark.parametrize(
    "label,terms,session,lines,subtotal,tax,total", CASES, ids=[c[0][:60] for c in CASES]
)
def test_cost_matches_hand_computation(label, terms, session, lines, subtotal, tax, total):
    cost = session_cost(terms, session)
    assert {line["kind"]: str(line["amount"]) for line in cost.lines} == lines
    assert (str(cost.subtotal), str(cost.tax), str(cost.total)) == (subtotal, tax, total)
    assert cost.subtotal == sum(line["amount"] for line in cost.lines)


def test_line_order_and_fields():
    cost = session_cost(
        rate(**IDLE, time_price_per_hour=D("1")),
        facts(
            stop=120,
            statuses=(StatusChange(at(60), "SuspendedEV"),),
            plan=PlanTerms("P", included_kwh_remaining=D("1")),
        ),
    )
    assert [line["kind"] for line in cost.lines] == [
        "connection_fee",
        "energy",
        "charging_time",
        "idle_fee",
        "subscription_discount",
    ]
    idle = cost.lines[3]
    assert (idle["quantity"], idle["unit"], idle["unit_price"]) == (D(45), "min", D("0.10"))
    energy = cost.lines[1]
    assert (energy["quantity"], energy["unit"]) == (D("10.000"), "kWh")


def test_processing_fee_is_not_a_guest_line_but_is_computed():
    cost = session_cost(
        rate(processing_fee_percent=D("1.4"), processing_fee_fixed=D("0.25")), facts()
    )
    # 5.45 x 1.4% = 0.0763 + 0.25 = 0.3263 -> 0.33
    assert cost.processing_fee == D("0.33")
    assert "processing_fee" not in {line["kind"] for line in cost.lines}


def test_recalculation_is_idempotent():
    terms, session = rate(**IDLE), facts(stop=120, statuses=(StatusChange(at(60), "SuspendedEV"),))
    assert session_cost(terms, session) == session_cost(terms, session)


def test_active_session_is_priced_up_to_the_last_reading():
    session = SessionFacts(
        started_at=T0,
        stopped_at=None,
        meter_start_wh=0,
        meter_stop_wh=None,
        samples=(Sample(at(30), REG, D("4000")),),
    )
    cost = session_cost(rate(), session)
    assert cost.final is False
    assert cost.total == D("2.90")  # 1.00 + 4 x 0.35 = 2.40; 21% = 0.504 -> 0.50

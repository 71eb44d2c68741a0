"""A partner CPO's CDR recomputed from its tariff, and the dispute rule (pure)."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from roaming import cdr_check
from tests.roaming import spec

T = Decimal("0.05")


def cdr_with(periods, *, total, start="2026-03-02T10:00:00Z"):
    return {
        "start_date_time": start,
        "charging_periods": periods,
        "total_cost": {"excl_vat": total, "incl_vat": total},
    }


def period(start, **volumes):
    return {
        "start_date_time": start,
        "dimensions": [{"type": kind, "volume": volume} for kind, volume in volumes.items()],
    }


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_the_specs_cdr_agrees_with_its_own_tariff(version):
    cdr = spec.example("cdr_example.json", version)

    result = cdr_check.check(cdr, cdr["tariffs"][0], threshold=T)

    # 1.973 h at 2.00 an hour, in steps of 300 s: 2 h, 4.00 (the example's total_cost).
    assert result == cdr_check.Check(Decimal("4.00"), Decimal("4"), False, "")


@pytest.mark.parametrize("version", ["2.2.1", "2.3.0"])
def test_a_cdr_claiming_more_than_its_tariff_gives_is_a_dispute_that_says_why(version):
    cdr = copy.deepcopy(spec.example("cdr_example.json", version))
    key = "excl_vat" if version == "2.2.1" else "before_taxes"
    cdr["total_cost"][key] = 6.0

    result = cdr_check.check(cdr, cdr["tariffs"][0], threshold=T)

    assert result.dispute and result.recomputed == Decimal("4.00")
    assert "6.0 before tax; its tariff gives 4.00" in result.reason


@pytest.mark.parametrize(("claimed", "dispute"), [("4.05", False), ("3.95", False), ("4.06", True)])
def test_only_a_difference_above_the_threshold_is_a_dispute(claimed, dispute):
    cdr = copy.deepcopy(spec.example("cdr_example.json"))
    cdr["total_cost"]["excl_vat"] = float(claimed)

    assert cdr_check.check(cdr, cdr["tariffs"][0], threshold=T).dispute is dispute


def test_flat_energy_and_parking_with_steps_are_priced_once_each():
    tariff = {
        "currency": "EUR",
        "elements": [
            {
                "price_components": [
                    {"type": "FLAT", "price": 0.50, "step_size": 1},
                    {"type": "ENERGY", "price": 0.30, "step_size": 1000},
                    {"type": "PARKING_TIME", "price": 6.00, "step_size": 600},
                ]
            }
        ],
    }
    cdr = cdr_with(
        [
            period("2026-03-02T10:00:00Z", ENERGY=6.1, TIME=1.0),
            period("2026-03-02T11:00:00Z", ENERGY=4.1),
            period("2026-03-02T11:30:00Z", PARKING_TIME=0.25),
        ],
        total=0,
    )

    # 0.50 + 10.2 kWh stepped to 11 kWh x 0.30 (3.30) + 15 min stepped to 20 min x 6.00 (2.00);
    # TIME has no component: free.
    assert cdr_check.recompute(cdr, tariff) == Decimal("5.80")


def test_the_element_that_applies_is_chosen_by_local_time_and_energy_so_far():
    tariff = {
        "currency": "EUR",
        "elements": [
            # Night energy (22:00-06:00, over midnight) is cheaper...
            {
                "price_components": [{"type": "ENERGY", "price": 0.20, "step_size": 1}],
                "restrictions": {"start_time": "22:00", "end_time": "06:00"},
            },
            # ... and after 20 kWh any energy costs more.
            {
                "price_components": [{"type": "ENERGY", "price": 0.50, "step_size": 1}],
                "restrictions": {"min_kwh": 20},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.40, "step_size": 1}]},
        ],
    }
    cdr = cdr_with(
        [
            # 21:30 UTC is 22:30 in Amsterdam (winter): night.
            period("2026-03-02T21:30:00Z", ENERGY=10),
            period("2026-03-03T06:30:00Z", ENERGY=10),  # 07:30 local: day price
            period("2026-03-03T07:30:00Z", ENERGY=10),  # 20 kWh before it: the min_kwh element
        ],
        total=0,
        start="2026-03-02T21:30:00Z",
    )

    assert cdr_check.recompute(cdr, tariff, time_zone="Europe/Amsterdam") == Decimal("11.00")
    assert cdr_check.recompute(cdr, tariff, time_zone="UTC") == Decimal("13.00")


def test_a_tariff_with_restrictions_we_do_not_evaluate_goes_to_a_person():
    tariff = {
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": 0.30, "step_size": 1}],
                "restrictions": {"max_power": 11.0},
            }
        ],
    }
    cdr = cdr_with([period("2026-03-02T10:00:00Z", ENERGY=10)], total=3.0)

    result = cdr_check.check(cdr, tariff, threshold=T)

    assert (result.dispute, result.recomputed) == (True, None)
    assert "max_power" in result.reason


def test_a_cdr_whose_tariff_we_do_not_have_or_without_periods_is_a_dispute():
    cdr = cdr_with([], total=3.0)

    assert cdr_check.check(cdr, None, threshold=T).dispute
    no_periods = cdr_check.check(cdr, {"elements": [{"price_components": []}]}, threshold=T)
    assert no_periods.dispute and "no charging periods" in no_periods.reason


def _speed_tariff() -> dict:
    # As the third-party mock hub's tariffs: a daytime AC element capped by current, DC bands
    # by power, and an unrestricted night price.
    return {
        "currency": "EUR",
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": 0.40, "step_size": 1}],
                "restrictions": {"start_time": "08:00", "end_time": "20:00", "max_current": 32},
            },
            {
                "price_components": [{"type": "ENERGY", "price": 0.60, "step_size": 1}],
                "restrictions": {"min_power": 50, "max_power": 150},
            },
            {"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]},
        ],
    }


def test_an_element_the_clock_rules_out_never_needs_its_speed_restriction():
    # 03:00 UTC: the daytime element is skipped without reading max_current; the period states
    # no power, so the DC band cannot be read and the CDR goes to a person (not a guess)...
    night = cdr_with([period("2026-03-02T03:00:00Z", ENERGY=10)], total=2.5)
    result = cdr_check.check(night, _speed_tariff(), threshold=T)
    assert result.dispute and "power restrictions (min_power, max_power)" in result.reason
    assert "max_current" not in result.reason
    # ... and with the period's power stated (a 22 kW AC session), the night price: 2.50.
    ac = cdr_with([period("2026-03-02T03:00:00Z", ENERGY=10, MAX_POWER=22)], total=2.5)
    assert cdr_check.check(ac, _speed_tariff(), threshold=T) == cdr_check.Check(
        Decimal("2.50"), Decimal("2.5"), False, ""
    )


def test_power_and_current_are_read_from_the_periods_own_dimensions():
    # 93 kW DC at noon: the daytime element asks for the current (none stated): a person.
    dc = cdr_with([period("2026-03-02T12:00:00Z", ENERGY=10, MAX_POWER=93)], total=6.0)
    assert (
        "current restrictions (max_current)"
        in cdr_check.check(dc, _speed_tariff(), threshold=T).reason
    )
    # With its current stated above the cap, the DC band (50 <= 93 < 150) prices it: 6.00.
    stated = cdr_with(
        [period("2026-03-02T12:00:00Z", ENERGY=10, MAX_POWER=93, MAX_CURRENT=200)], total=6.0
    )
    assert cdr_check.check(stated, _speed_tariff(), threshold=T).recomputed == Decimal("6.00")
    # 11 kW AC at 16 A at noon: the daytime element (16 < 32): 4.00.
    ac = cdr_with(
        [period("2026-03-02T12:00:00Z", ENERGY=10, MAX_POWER=11, MAX_CURRENT=16)], total=4.0
    )
    assert cdr_check.check(ac, _speed_tariff(), threshold=T).recomputed == Decimal("4.00")


def test_the_price_a_driver_sees_is_the_one_a_session_starting_now_pays():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def price(hour: int, power: str | None):
        return cdr_check.driver_tariff(
            _speed_tariff(),
            margin_percent=Decimal(0),
            fee=Decimal(0),
            vat_percent=Decimal(0),
            at=datetime(2026, 3, 2, hour, 0, tzinfo=ZoneInfo("Europe/Brussels")),  # wall clock
            power_kw=Decimal(power) if power else None,
        ).per_kwh

    assert price(12, "93") == Decimal("0.600")  # the DC band (the daytime element needs a current)
    assert price(3, "11") == Decimal("0.250")  # night: the unrestricted element
    assert price(3, None) == Decimal("0.250")  # a band it cannot tell is passed over


def test_a_tariffs_minimum_and_maximum_price_bound_the_recomputed_cost():
    tariff = {
        "currency": "EUR",
        "min_price": {"excl_vat": 2.00, "incl_vat": 2.42},
        "max_price": {"excl_vat": 80.00, "incl_vat": 96.80},
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.5847, "step_size": 1}]}],
    }
    small = cdr_with([period("2026-03-02T10:00:00Z", ENERGY=3)], total=2.0)
    large = cdr_with([period("2026-03-02T10:00:00Z", ENERGY=140)], total=80.0)
    assert cdr_check.check(small, tariff, threshold=T) == cdr_check.Check(
        Decimal("2.00"), Decimal("2.0"), False, ""
    )
    assert cdr_check.check(large, tariff, threshold=T).recomputed == Decimal("80.00")
    shown = cdr_check.driver_tariff(
        tariff, margin_percent=Decimal(10), fee=Decimal(0), vat_percent=Decimal(21)
    )
    assert shown.minimum == Decimal("2.66")  # 2.00 + 10 % + 21 % VAT


@pytest.mark.parametrize("number", ["NaN", "Infinity", float("inf"), 1e308, "-1e9"])
def test_a_number_no_session_could_carry_is_refused_not_computed(number):
    tariff = {
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.3}]}],
    }
    in_total = cdr_with([period("2026-03-02T10:00:00Z", ENERGY=10)], total=number)
    in_volume = cdr_with([period("2026-03-02T10:00:00Z", ENERGY=number)], total=3.0)
    with pytest.raises(cdr_check.NotRecomputable):
        cdr_check.check(in_total, tariff, threshold=T)
    assert cdr_check.check(in_volume, tariff, threshold=T).dispute  # never a raised error
    priced = {
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": number}]}],
    }
    with pytest.raises(cdr_check.NotRecomputable):
        cdr_check.driver_tariff(priced, margin_percent=T, fee=T, vat_percent=T)

"""Pure allocation rules: equal, priority, give-back, minimum and waiting order, circuits, phases,
and the budget never exceeded (a property-style table)."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from power.allocation import (
    Budget,
    Circuit,
    CircuitError,
    Demand,
    Policy,
    allocate,
    circuit_paths,
    phase_load,
)

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
A = Decimal


def demand(n: int, **kw) -> Demand:
    base = dict(
        station_id=f"CP{n}",
        connector_id=1,
        phases=3,
        min_a=A(6),
        max_a=A(16),
        measured_a=None,
        priority=0,
        arrived_at=T0 + timedelta(minutes=n),
        session_id=n,
    )
    base.update(kw)
    return Demand(**base)  # type: ignore[arg-type]


def limits_of(result):
    return [limit.limit_a for limit in result]


def test_equal_share_splits_the_budget_evenly():
    result = allocate([demand(i) for i in range(5)], Budget(A(63)), Policy.EQUAL, T0)
    assert limits_of(result) == [A("12.6")] * 5
    assert not any(limit.waiting for limit in result)


def test_a_session_never_gets_more_than_its_maximum_and_the_rest_goes_to_others():
    demands = [demand(0, max_a=A(10)), demand(1), demand(2)]
    result = allocate(demands, Budget(A(40)), Policy.EQUAL, T0)
    assert limits_of(result) == [A(10), A(15), A(15)]


def test_when_the_budget_cannot_give_everyone_the_minimum_the_newest_wait_in_arrival_order():
    demands = [demand(i) for i in range(13)]  # 63 A / 6 A = 10 sessions at the minimum
    result = allocate(demands, Budget(A(63)), Policy.EQUAL, T0)
    assert [limit.waiting for limit in result] == [False] * 10 + [True] * 3
    assert all(limit.limit_a >= 6 for limit in result[:10])
    assert [limit.limit_a for limit in result[10:]] == [0, 0, 0]
    assert result[10].reason == "Waiting for power, you are next"
    assert result[12].reason == "Waiting for power: 2 ahead of you"
    assert result[12].queue_position == 2


def test_priority_serves_classes_in_order_and_may_make_a_lower_class_wait():
    demands = [demand(0, priority=3), demand(1, priority=0), demand(2, priority=1)]
    result = allocate(demands, Budget(A(30)), Policy.PRIORITY, T0)
    # Everyone gets 6 A; class 0 is filled first (to 16 A), class 1 gets what is left (8 A).
    assert limits_of(result) == [A(6), A(16), A(8)]
    # Not enough for three minimums: the lowest class waits even though it came first.
    result = allocate(demands, Budget(A(16)), Policy.PRIORITY, T0)
    assert limits_of(result) == [A(0), A(10), A(6)]
    assert result[0].waiting and result[0].reason == "Waiting for power, you are next"


def test_priority_gives_everyone_admitted_their_minimum_before_filling_classes():
    demands = [demand(0, priority=3), demand(1, priority=0)]
    result = allocate(demands, Budget(A(20)), Policy.PRIORITY, T0)
    assert limits_of(result) == [A(6), A(14)]


def test_equal_policy_ignores_priority():
    demands = [demand(0, priority=3), demand(1, priority=0)]
    result = allocate(demands, Budget(A(20)), Policy.EQUAL, T0)
    assert limits_of(result) == [A(10), A(10)]


def test_give_back_after_the_settling_time_and_share_returns_when_it_draws_more():
    budget = Budget(A(40))
    low = [demand(0, measured_a=A("4.3"), max_a=A(32)), demand(1, measured_a=A(20), max_a=A(32))]
    first = allocate(low, budget, Policy.EQUAL, T0)
    assert limits_of(first) == [A(20), A(20)]
    # Drawing less, but not for the settling time yet: keeps its share.
    second = allocate(low, budget, Policy.EQUAL, T0 + timedelta(seconds=30), first)
    assert limits_of(second) == [A(20), A(20)]
    assert second[0].low_since == T0 + timedelta(seconds=30)
    third = allocate(low, budget, Policy.EQUAL, T0 + timedelta(seconds=120), second)
    assert third[0].given_back
    assert limits_of(third) == [A("6.3"), A(32)]
    assert limits_of(third)[1] <= 40
    # Still low: stays capped (no oscillation).
    fourth = allocate(low, budget, Policy.EQUAL, T0 + timedelta(seconds=130), third)
    assert fourth[0].given_back and limits_of(fourth)[0] == A("6.3")
    # It draws up to its cap: its share comes back.
    more = [demand(0, measured_a=A("6.2"), max_a=A(32)), demand(1, measured_a=A(20), max_a=A(32))]
    fifth = allocate(more, budget, Policy.EQUAL, T0 + timedelta(seconds=140), fourth)
    assert not fifth[0].given_back
    assert limits_of(fifth) == [A(20), A(20)]


def test_give_back_never_goes_below_the_minimum():
    budget = Budget(A(40))
    idle = [demand(0, measured_a=A(0)), demand(1, measured_a=A(16))]
    first = allocate(idle, budget, Policy.EQUAL, T0)
    later = allocate(idle, budget, Policy.EQUAL, T0 + timedelta(minutes=5), first)
    later = allocate(idle, budget, Policy.EQUAL, T0 + timedelta(minutes=10), later)
    assert limits_of(later) == [A(6), A(16)]


def test_circuit_limits_hold_at_every_level():
    budget = Budget(A(63), circuits=(Circuit("sub", A(32)),))
    demands = [demand(i, circuit="sub", max_a=A(32)) for i in range(3)] + [demand(3, max_a=A(32))]
    result = allocate(demands, budget, Policy.EQUAL, T0)
    assert sum(limits_of(result)[:3]) <= 32
    assert limits_of(result)[3] == A(31)
    load = phase_load(result, demands, budget)
    assert load[("sub", 0)] <= 32 and load[("", 0)] <= 63


def test_a_full_sub_panel_makes_only_its_own_sessions_wait():
    budget = Budget(A(63), circuits=(Circuit("sub", A(10)),))
    demands = [demand(0, circuit="sub"), demand(1, circuit="sub"), demand(2)]
    result = allocate(demands, budget, Policy.EQUAL, T0)
    assert [r.waiting for r in result] == [False, True, False]
    assert result[1].reason == "Waiting for power, you are next"


def test_nested_circuits_and_bad_trees():
    budget = Budget(A(63), circuits=(Circuit("a", A(40)), Circuit("b", A(20), parent="a")))
    assert circuit_paths(budget)["b"] == ("b", "a", "")
    with pytest.raises(CircuitError):
        circuit_paths(Budget(A(63), circuits=(Circuit("x", A(1), parent="y"),)))
    with pytest.raises(CircuitError):
        circuit_paths(
            Budget(A(63), circuits=(Circuit("x", A(1), parent="y"), Circuit("y", A(1), "x")))
        )


def test_single_phase_connectors_on_a_three_phase_site_fill_their_own_phase():
    budget = Budget(A(32))
    demands = [
        demand(0, phases=1, phase_rotation="RST", max_a=A(32)),
        demand(1, phases=1, phase_rotation="STR", max_a=A(32)),
        demand(2, phases=1, phase_rotation="RTS", max_a=A(32)),
    ]
    result = allocate(demands, budget, Policy.EQUAL, T0)
    # CP1 alone on L2; CP0 and CP2 share L1.
    assert limits_of(result) == [A(16), A(32), A(16)]


def test_a_charger_that_refused_is_assumed_at_its_maximum():
    demands = [demand(0, fixed_a=A(32), max_a=A(32)), demand(1), demand(2)]
    result = allocate(demands, Budget(A(63)), Policy.EQUAL, T0)
    assert limits_of(result) == [A(32), A("15.5"), A("15.5")]


def test_a_budget_of_zero_makes_everyone_wait():
    result = allocate([demand(0), demand(1)], Budget(A(0)), Policy.EQUAL, T0)
    assert [r.waiting for r in result] == [True, True]


@pytest.mark.parametrize("seed", range(60))
def test_the_sum_of_limits_never_exceeds_the_budget_anywhere(seed):
    rnd = random.Random(seed)
    circuits = (Circuit("sub", A(rnd.choice([16, 32, 40]))),)
    budget = Budget(A(rnd.choice([20, 32, 63, 100])), phases=rnd.choice([1, 3]), circuits=circuits)
    demands = [
        demand(
            i,
            phases=rnd.choice([1, 3]),
            phase_rotation="".join(rnd.sample("RST", 3)),
            min_a=A(6),
            max_a=A(rnd.choice([10, 16, 32])),
            measured_a=rnd.choice([None, A(rnd.randint(0, 32))]),
            priority=rnd.randint(0, 4),
            circuit=rnd.choice(["", "sub"]),
        )
        for i in range(rnd.randint(0, 14))
    ]
    previous: list = []
    for step, policy in itertools.product(range(4), [Policy.EQUAL, Policy.PRIORITY]):
        result = allocate(demands, budget, policy, T0 + timedelta(minutes=step), previous)
        previous = result
        for (node, _), used in phase_load(result, demands, budget).items():
            assert used <= (budget.limit_a_per_phase if node == "" else circuits[0].limit_a)
        for d, limit in zip(demands, result, strict=True):
            assert limit.waiting or d.min_a <= limit.limit_a <= d.max_a
            assert not limit.waiting or limit.limit_a == 0


def test_a_later_session_that_would_fit_does_not_overtake_one_waiting():
    demands = [demand(0), demand(1, min_a=A(10)), demand(2)]
    result = allocate(demands, Budget(A(15)), Policy.EQUAL, T0)
    assert [r.waiting for r in result] == [False, True, True]
    assert result[2].reason == "Waiting for power: 1 ahead of you"

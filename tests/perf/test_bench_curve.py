"""The benchmark's curve (bench/curve.py) and the fleet's source addresses (bench/fleet.py):
what `make bench` prints as min/median/max and the knee is computed as documented."""

from bench import curve, fleet


def _run(rate: float, p95: float, errors: int = 0) -> dict:
    return {
        "msg_per_s": rate,
        "p50_ms": p95 / 2,
        "p95_ms": p95,
        "p99_ms": p95 * 1.5,
        "errors": errors,
    }


def test_each_point_is_min_median_max_of_its_runs():
    summary = curve.summarize({"ours": {100: [_run(900, 30), _run(1000, 20), _run(1200, 40)]}})
    point = summary["servers"]["ours"]["points"][100]
    assert point["msg_per_s"] == {"min": 900, "median": 1000, "max": 1200}
    assert point["p95_ms"] == {"min": 20, "median": 30, "max": 40}
    assert point["runs"] == 3


def test_the_knee_is_the_first_count_within_95_percent_of_the_highest_rate():
    runs = {
        "ours": {
            100: [_run(3000, 40)],
            250: [_run(5800, 60)],  # 5,800 >= 0.95 * 6,000: the knee
            500: [_run(6000, 120)],
            1000: [_run(5900, 250)],
        }
    }
    knee = curve.summarize(runs)["servers"]["ours"]["knee"]
    assert knee == {
        "chargers": 250,
        "at_or_below": False,
        "msg_per_s": 5800,
        "p95_ms": 60,
        "highest_msg_per_s": 6000,
    }


def test_a_curve_still_rising_has_its_knee_at_the_last_count():
    runs = {"peer": {100: [_run(1000, 10)], 200: [_run(1500, 12)], 400: [_run(2000, 14)]}}
    assert curve.summarize(runs)["servers"]["peer"]["knee"]["chargers"] == 400


def test_ours_against_the_references_at_each_count_by_medians():
    runs = {
        "ours": {500: [_run(6000, 1), _run(7000, 1), _run(8000, 1)]},
        "peer": {500: [_run(2800, 1)]},
        "echo": {500: [_run(20000, 1)]},
    }
    assert curve.summarize(runs)["ratios"] == {500: {"ours_per_peer": 2.5, "ours_per_echo": 0.35}}


def test_servers_take_turns_and_every_round_reverses_their_order():
    calls = []

    def run(kind: str, n: int) -> dict:
        calls.append((kind, n))
        return _run(100, 1) | {"server_cpu_s": 2.0, "messages_answered": 1000}

    summary = curve.scenario([10, 20], ["ours", "peer"], 2, run, lambda _m: None)
    assert calls == [
        ("ours", 10),
        ("peer", 10),
        ("ours", 20),
        ("peer", 20),
        ("peer", 10),
        ("ours", 10),
        ("peer", 20),
        ("ours", 20),
    ]
    point = summary["servers"]["ours"]["points"][10]
    assert point["server_cpu_us_per_msg"]["median"] == 2000.0


def test_the_table_says_each_knee_and_ratio():
    runs = {"ours": {100: [_run(900, 30)]}, "peer": {100: [_run(300, 50)]}}
    text = "\n".join(curve.table(curve.summarize(runs)))
    assert "| ours | 100 | 900 / **900** / 900 |" in text
    assert "knee of ours: at or below 100 chargers" in text  # the smallest count run
    assert "at 100 chargers: ours per peer 3.0x" in text


def test_a_fleet_too_big_for_one_address_spreads_over_loopback_addresses():
    # 30,000 sockets to one port would exceed the ephemeral range (~28,000): 10,000 per address.
    assert fleet.source_addresses(30_000, 1) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert fleet.source_addresses(30_000, 2) == ["127.0.0.2", "127.0.0.3"]
    assert fleet.source_addresses(10_000, 1) == []


def test_the_fleet_targets_are_the_heartbeats_p99_and_every_command_answered():
    from bench.__main__ import fleet_targets_59

    fleet_run = {
        "connections": 30_000,
        "by_action": {"Heartbeat": {"p99_ms": 39.5}, "MeterValues": {"p99_ms": 158.1}},
        "api_commands": {"sent": 120, "answered": 120},
    }
    assert [ok for _, _, ok in fleet_targets_59(fleet_run)] == [True, True]
    fleet_run["api_commands"] = {"sent": 120, "answered": 119}
    fleet_run["by_action"]["Heartbeat"]["p99_ms"] = 100.0
    assert [ok for _, _, ok in fleet_targets_59(fleet_run)] == [False, False]

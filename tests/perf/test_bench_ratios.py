"""The bench's regression guard (bench/ratios.py, issue 48 item 4): the ratios of one run and
what they lost against the recorded baseline."""

from bench.ratios import losses, ratios, table

REPORT = {
    "throughput": {
        "ours": {
            "200": {"msg_per_s": 100.0, "p99_ms": 50},
            "1000": {"msg_per_s": 2500.0, "p99_ms": 400},
        },
        "peer": {"1000": {"msg_per_s": 1000.0, "p99_ms": 1000}},
        "echo": {"1000": {"msg_per_s": 5000.0, "p99_ms": 20}},
    },
    "storm": {
        "ours": {"connections": 1000, "online": 1000, "all_online_after_kill_s": 10.0},
        "peer": {"connections": 1000, "online": 1000, "all_online_after_kill_s": 20.0},
    },
}


def test_the_ratios_of_one_run():
    r = ratios(REPORT)
    assert r["connections"] == 1000 and r["storm_connections"] == 1000
    assert r["closed_vs_peer"] == 2.5
    assert r["closed_share_of_echo"] == 0.5
    assert r["p99_vs_peer"] == 0.4
    assert r["storm_vs_peer"] == 0.5
    assert r["storm_all_back"] is True
    assert ratios({})["closed_vs_peer"] is None  # a scenario that did not run


def test_a_ratio_lost_by_more_than_ten_percent_is_named():
    baseline = ratios(REPORT)
    now = {**baseline, "closed_vs_peer": 2.2, "p99_vs_peer": 0.5, "storm_vs_peer": 0.54}
    # msg/s ratio 12 % lower, p99 ratio 25 % higher: lost; the storm 8 % slower: within 10 %.
    assert losses(now, baseline) == {"closed_vs_peer": 0.12, "p99_vs_peer": 0.25}
    assert losses({**now, "connections": 200}, baseline) == {}  # another size: not compared
    lines = "\n".join(table(now, {"before": 0.1, "during_mean": 1.5, "during_max": 2.0}, baseline))
    assert "closed loop msg/s ÷ the peer's: 2.20 (baseline 2.50)  LOST 12 %" in lines
    assert "share" not in lines and "raw echo's: 50 %" in lines
    assert "0.1 before, 1.5 mean and 2.0 max during" in lines

"""The staging rules of a firmware campaign, on their own (fleet.campaigns.staging; no database)."""

from datetime import UTC, datetime, time, timedelta

from fleet.campaigns import staging
from fleet.campaigns.staging import FAILED, PENDING, SENT, SUCCEEDED, Rules, Target

RULES = Rules(canary_share=0.1, wave_size=10, success_threshold=0.9, max_failures=2)
T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def targets(statuses: list[str], ready: bool = True) -> list[Target]:
    return [Target(i + 1, i, s, ready) for i, s in enumerate(statuses)]


def test_stages_are_the_canary_share_then_waves():
    assert staging.stage_sizes(30, 0.1, 10) == [3, 10, 10, 7]
    assert staging.stage_sizes(5, 0.01, 10) == [1, 4]  # at least one canary
    assert staging.stage_sizes(4, 0.0, 3) == [3, 1]  # no canary: waves straight away
    assert staging.stage_sizes(0, 0.1, 10) == []


def test_only_the_canary_goes_first():
    decision = staging.decide(RULES, targets([PENDING] * 30))
    assert decision.verdict == staging.DISPATCH and decision.send == (1, 2, 3)


def test_the_next_wave_waits_until_the_canary_finished():
    decision = staging.decide(RULES, targets([SUCCEEDED, SUCCEEDED, SENT] + [PENDING] * 27))
    assert decision.verdict == staging.WAIT and decision.send == ()


def test_the_next_wave_goes_once_the_canary_succeeded():
    decision = staging.decide(RULES, targets([SUCCEEDED] * 3 + [PENDING] * 27))
    assert decision.send == tuple(range(4, 14)) and decision.stage == 1


def test_failures_reaching_the_limit_halt_everything():
    decision = staging.decide(RULES, targets([FAILED, FAILED, SENT] + [PENDING] * 27))
    assert decision.verdict == staging.HALT and decision.send == ()
    assert "2 failed" in decision.reason


def test_a_success_rate_below_the_threshold_halts_before_the_next_wave():
    rules = Rules(canary_share=0.1, wave_size=10, success_threshold=0.9, max_failures=5)
    decision = staging.decide(rules, targets([SUCCEEDED, SUCCEEDED, FAILED] + [PENDING] * 27))
    assert decision.verdict == staging.HALT and "67%" in decision.reason


def test_chargers_not_ready_wait_and_the_others_go():
    statuses = targets([PENDING] * 30)
    statuses[1] = Target(2, 1, PENDING, ready=False)  # in a session, offline or outside its window
    assert staging.decide(RULES, statuses).send == (1, 3)


def test_a_bad_release_is_held():
    decision = staging.decide(RULES, targets([PENDING] * 30), release_bad=True)
    assert decision.verdict == staging.HOLD and decision.send == ()


def test_all_finished_is_complete():
    assert staging.decide(RULES, targets([SUCCEEDED] * 4)).verdict == staging.COMPLETE


def test_maintenance_windows_cross_midnight():
    assert staging.in_window(time(22), time(4), time(23, 30))
    assert staging.in_window(time(22), time(4), time(3, 59))
    assert not staging.in_window(time(22), time(4), time(4))
    assert staging.in_window(time(1), time(5), time(1))
    assert not staging.in_window(time(1), time(5), time(12))


def progress(**kw) -> staging.Progress:
    base = dict(
        target_version="2.0",
        sent_at=T0,
        last_report_at=None,
        operation_status="",
        booted_at=None,
        reported_version="1.0",
    )
    return staging.Progress(**{**base, **kw})


def test_success_is_a_boot_with_the_target_version_after_sending():
    at = T0 + timedelta(minutes=5)
    assert (
        staging.verdict(progress(booted_at=at, reported_version="2.0"), timeout_s=600, now=at)[0]
        == SUCCEEDED
    )
    # A boot before the update was sent proves nothing.
    assert (
        staging.verdict(
            progress(booted_at=T0 - timedelta(1), reported_version="2.0"), timeout_s=600, now=at
        )
        is None
    )


def test_a_failure_status_or_an_old_version_after_installing_fails():
    at = T0 + timedelta(minutes=5)
    assert (
        staging.verdict(progress(operation_status="InstallationFailed"), timeout_s=600, now=at)[0]
        == FAILED
    )
    assert (
        staging.verdict(progress(operation_status="InvalidSignature"), timeout_s=600, now=at)[0]
        == FAILED
    )
    booted_old = progress(operation_status="Installed", booted_at=at, reported_version="1.0")
    assert staging.verdict(booted_old, timeout_s=600, now=at)[0] == FAILED


def test_silence_past_the_timeout_fails_and_each_report_restarts_it():
    assert staging.verdict(progress(), timeout_s=600, now=T0 + timedelta(seconds=599)) is None
    failed = staging.verdict(progress(), timeout_s=600, now=T0 + timedelta(seconds=600))
    assert failed == (FAILED, "No report for 600 s.")
    reported = progress(last_report_at=T0 + timedelta(seconds=500), operation_status="Downloading")
    assert staging.verdict(reported, timeout_s=600, now=T0 + timedelta(seconds=900)) is None

"""The in-process beat (backoffice/beat.py): the Celery beat schedule run by `manage.py serve`
when there is no broker, by one process per database (issue 33 item 13)."""

import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery import shared_task
from django.conf import settings

from backoffice.beat import LEASE_NAME, InProcessBeat, claim_lease, from_settings
from backoffice.models import SchedulerLease

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

calls: list[tuple] = []
gate = threading.Event()


@shared_task(name="tests.beat_probe")
def beat_probe(label: str = "") -> None:
    calls.append((label, threading.current_thread().name))


@shared_task(name="tests.beat_boom")
def beat_boom() -> None:
    raise RuntimeError("the partner is down")


@shared_task(name="tests.beat_slow")
def beat_slow() -> None:
    calls.append(("slow", threading.current_thread().name))
    assert gate.wait(30)


@pytest.fixture(autouse=True)
def _reset():
    calls.clear()
    gate.clear()
    yield
    gate.set()


def _beat(holder: str, schedule: dict | None = None) -> InProcessBeat:
    schedule = schedule or {
        "probe": {"task": "tests.beat_probe", "schedule": 5, "kwargs": {"label": holder}}
    }
    return InProcessBeat(schedule, holder=holder, lease_seconds=30)


def _settle(beat: InProcessBeat) -> None:
    for future in beat.running.values():
        future.result(timeout=30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_every_beat_entry_names_a_registered_task():
    beat = from_settings()
    try:
        assert [e.name for e in beat.entries] == list(settings.CELERY_BEAT_SCHEDULE)
        assert len(beat.entries) >= 17
    finally:
        beat.stop()


def test_a_fresh_process_knows_every_beat_task_before_anything_imports_it():
    """A worker finds each app's tasks.py and settings.CELERY_IMPORTS (chargers keeps its tasks
    in the packages that own them): every task beat names is registered in a new process."""
    script = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from portal.celery import app\n"
        "app.loader.import_default_modules()\n"
        "missing = {e['task'] for e in settings.CELERY_BEAT_SCHEDULE.values()} - set(app.tasks)\n"
        "print(sorted(missing))\n"
    )
    env = {**os.environ, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "portal.settings"}
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_due_task_runs_off_the_calling_thread_one_interval_after_the_start():
    beat = _beat("A")
    try:
        assert beat.tick(at(0)) == []  # as celery beat: the first run one interval later
        assert beat.tick(at(4)) == []
        assert beat.tick(at(5)) == ["probe"]
        _settle(beat)
        assert len(calls) == 1
        label, thread = calls[0]
        assert label == "A" and thread.startswith("beat-task")
        assert beat.tick(at(7)) == []
        assert beat.tick(at(10)) == ["probe"]
    finally:
        beat.stop()


def test_two_schedulers_on_one_database_only_one_runs_tasks():
    first, second = _beat("A"), _beat("B")
    try:
        for t in range(0, 31, 5):
            first.tick(at(t))
            assert second.tick(at(t)) == []
            _settle(first)
        assert {label for label, _ in calls} == {"A"} and len(calls) == 6
        assert SchedulerLease.objects.get(name=LEASE_NAME).holder == "A"
    finally:
        first.stop()
        second.stop()


def test_an_expired_lease_is_taken_over_and_the_old_holder_stops():
    assert claim_lease(LEASE_NAME, "A", 30, at(0))
    assert not claim_lease(LEASE_NAME, "B", 30, at(10))
    assert claim_lease(LEASE_NAME, "A", 30, at(20))  # renewed: now until 50
    assert not claim_lease(LEASE_NAME, "B", 30, at(49))
    assert claim_lease(LEASE_NAME, "B", 30, at(50))
    assert not claim_lease(LEASE_NAME, "A", 30, at(51))

    first, second = _beat("A"), _beat("B")
    try:
        first.tick(at(100))
        assert first.tick(at(105)) == ["probe"]
        _settle(first)
        # A stops renewing (a crashed process); B takes over once A's lease has run out.
        assert second.tick(at(120)) == []
        assert second.tick(at(131)) == []  # took over: a fresh start, first run an interval on
        assert second.holding
        assert second.tick(at(136)) == ["probe"]
        _settle(second)
        assert first.tick(at(137)) == []  # A is back, but B holds the lease
        assert not first.holding
        assert [label for label, _ in calls] == ["A", "B"]
    finally:
        first.stop()
        second.stop()


def test_stopping_gives_the_lease_up_at_once():
    first, second = _beat("A"), _beat("B")
    first.tick(at(0))
    first.stop()
    second.tick(at(1))
    assert second.holding
    second.stop()
    assert not SchedulerLease.objects.exists()


def test_a_failing_task_is_logged_and_the_schedule_goes_on(caplog):
    beat = _beat(
        "A",
        {
            "boom": {"task": "tests.beat_boom", "schedule": 5},
            "probe": {"task": "tests.beat_probe", "schedule": 5},
        },
    )
    try:
        beat.tick(at(0))
        with caplog.at_level(logging.ERROR, logger="backoffice.beat"):
            assert beat.tick(at(5)) == ["boom", "probe"]
            _settle(beat)
        assert "boom (tests.beat_boom) failed" in caplog.text
        assert "the partner is down" in caplog.text
        assert beat.tick(at(10)) == ["boom", "probe"]
        _settle(beat)
        assert len(calls) == 2
    finally:
        beat.stop()


def test_a_task_still_running_when_due_again_is_skipped(caplog):
    beat = _beat("A", {"slow": {"task": "tests.beat_slow", "schedule": 5}})
    try:
        beat.tick(at(0))
        assert beat.tick(at(5)) == ["slow"]
        with caplog.at_level(logging.INFO, logger="backoffice.beat"):
            assert beat.tick(at(10)) == []
            assert beat.tick(at(15)) == []
        assert caplog.text.count("slow is still running; skipped") == 2
        gate.set()
        _settle(beat)
        assert beat.tick(at(20)) == ["slow"]
        _settle(beat)
        assert len(calls) == 2
    finally:
        beat.stop()


def test_an_entry_naming_no_task_is_left_out_and_said(caplog):
    with caplog.at_level(logging.ERROR, logger="backoffice.beat"):
        beat = InProcessBeat(
            {"typo": {"task": "roaming.deliveries_sweeep", "schedule": 5}},
            holder="A",
            known_tasks={"roaming.deliveries_sweep"},
        )
    assert beat.entries == [] and "names no registered task" in caplog.text
    beat.stop()


@shared_task(name="tests.beat_loop_probe")
def beat_loop_probe() -> None:
    """What a task sending a command does: async_to_sync from its thread."""
    import asyncio

    from asgiref.sync import async_to_sync

    async def which_loop():
        return asyncio.get_running_loop()

    calls.append(("loop", async_to_sync(which_loop)()))


@pytest.mark.django_db(transaction=True)
def test_under_run_a_task_reaches_the_servers_event_loop():
    """Started from the server's loop, a task's async_to_sync runs there, where the charger
    connections are (without Redis the in-memory channel layer only works on that loop: a
    first-aid command sent from a task of a bare thread never reached the charger)."""
    import asyncio

    beat = InProcessBeat(
        {"loop": {"task": "tests.beat_loop_probe", "schedule": 0.1}}, holder="L", lease_seconds=30
    )

    async def serve():
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def should_stop():
            if calls:
                done.set()
            return done.is_set()

        await asyncio.wait_for(beat.run(should_stop, poll_seconds=0.1), 30)
        return loop

    server_loop = asyncio.run(serve())
    assert calls and calls[0] == ("loop", server_loop)

"""The run's PostgreSQL connection budget (tests/parallel.py) gives every share back, and the
workers of two runs draw their ports apart."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests import conftest, parallel


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    """A worker of a run of its own, with a budget of 20 connections."""
    monkeypatch.setattr(parallel, "WORKER", "gw0")
    monkeypatch.setattr(parallel, "WORKER_COUNT", 1)
    monkeypatch.setattr(parallel, "run_dir", lambda rid=None: tmp_path)
    monkeypatch.setenv("TEST_DB_CONNECTIONS", "30")
    monkeypatch.setenv("TEST_DB_CONNECTIONS_PER_WORKER", "10")
    return tmp_path / "connections.json"


def test_a_worker_that_holds_what_it_asks_for_fails_at_once_instead_of_waiting_for_itself(ledger):
    first, second = object(), object()
    parallel.acquire_connections(first, 15)
    with pytest.raises(RuntimeError, match="already holds 15"):
        parallel.acquire_connections(second, 10, timeout=600)
    parallel.release_connections(first)
    parallel.acquire_connections(second, 10, timeout=1)
    parallel.release_connections(second)
    assert parallel._read_ledger(ledger) == {}


def test_a_server_whose_start_is_interrupted_gives_its_share_back(ledger, monkeypatch):
    """The per-test timeout (or anything else) ending the wait for a starting server: before,
    its share stayed held for the rest of the run."""
    started = []

    def interrupted(process, port, log_name):
        started.append(process)
        raise KeyboardInterrupt  # what pytest-timeout's signal does to the waiting test

    monkeypatch.setattr(conftest, "_wait_until_serving", interrupted)
    monkeypatch.setattr(parallel, "server_connections", lambda env: 10)
    with pytest.raises(KeyboardInterrupt):
        conftest.start_live_server(DATABASE_URL="postgres://unused/none")
    assert parallel._read_ledger(ledger) == {}
    assert started and started[0].poll() is not None  # the server process is gone too


def test_the_budget_check_reads_the_worker_count(monkeypatch):
    monkeypatch.setattr(parallel, "WORKER_COUNT", 3)
    monkeypatch.setenv("TEST_DB_CONNECTIONS", "80")
    monkeypatch.delenv("TEST_DB_CONNECTIONS_PER_WORKER", raising=False)
    assert parallel.connection_budget() == 50


def test_two_runs_on_one_machine_draw_their_ports_from_different_blocks():
    """Two workers named gw0 (one of this run and one of another, a developer's beside CI's) must
    not pick from the same ports: each holds the lock of its own block while it lives."""
    code = (
        "import sys; from tests import parallel; print(parallel.free_port(), flush=True); "
        "sys.stdin.read()"
    )
    env = {**os.environ, "PYTEST_XDIST_WORKER": "gw0", "PYTHONDONTWRITEBYTECODE": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        ports = [int(worker.stdout.readline()) for worker in workers]
    finally:
        for worker in workers:
            worker.communicate("")
    base = int(os.environ.get("TEST_PORT_BASE") or 20000)
    blocks = {(port - base) // parallel.PORTS_PER_WORKER for port in ports}
    assert len(blocks) == 2, ports

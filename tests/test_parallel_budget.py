"""The run's PostgreSQL connection budget (tests/parallel.py) gives every share back."""

from __future__ import annotations

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

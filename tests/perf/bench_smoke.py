"""The bench smoke runs start the real bench (its own PostgreSQL database, Redis, servers and
load generators for tens of seconds), so they run only when asked: BENCH_SMOKE=1, which CI's
PostgreSQL pass sets. A plain `make test` must not start a bench against whatever database
happens to answer on 5432. Once asked, a missing PostgreSQL or Redis fails the run.

Under pytest-xdist (tests/parallel.py) a smoke run shares the machine like any server test: its
database is a copy of the run's template (no migration of its own), its journal is a
directory of its own, and its servers' PostgreSQL connections are taken from the run's budget
before it starts (they ran `alone` before, and the other workers waited for them): the `bench_env`
fixture (tests/perf/conftest.py)."""

import os

import pytest

ENABLED = os.environ.get("BENCH_SMOKE", "").strip().lower() in ("1", "true", "yes")

_opt_in = pytest.mark.skipif(
    not ENABLED,
    reason="bench smoke runs are opt-in: BENCH_SMOKE=1 runs them (CI's PostgreSQL pass does)",
)


def bench_smoke(test):
    return _opt_in(test)

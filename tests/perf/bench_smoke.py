"""The bench smoke runs start the real bench (its own PostgreSQL database, Redis, servers and
load generators for tens of seconds), so they run only when asked: BENCH_SMOKE=1, which CI's
PostgreSQL pass sets. A plain `make test` must not start a bench against whatever database
happens to answer on 5432. Once asked, a missing PostgreSQL or Redis fails the run."""

import os

import pytest

ENABLED = os.environ.get("BENCH_SMOKE", "").strip().lower() in ("1", "true", "yes")

_opt_in = pytest.mark.skipif(
    not ENABLED,
    reason="bench smoke runs are opt-in: BENCH_SMOKE=1 runs them (CI's PostgreSQL pass does)",
)
# Under pytest-xdist (tests/parallel.py) a bench runs while no other test does: its servers open
# up to ~40 PostgreSQL connections outside the run's budget, its load generators take every core,
# and the bench's journal directory (bench/servers.py) is one for all its runs.
_alone = pytest.mark.alone(
    reason="the real bench: its own servers and PostgreSQL connections, load on every core"
)


def bench_smoke(test):
    return _opt_in(_alone(test))

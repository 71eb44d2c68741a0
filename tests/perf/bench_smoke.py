"""The bench smoke runs start the real bench (its own PostgreSQL database, Redis, servers and
load generators for tens of seconds), so they run only when asked: BENCH_SMOKE=1, which CI's
PostgreSQL pass sets. A plain `make test` must not start a bench against whatever database
happens to answer on 5432. Once asked, a missing PostgreSQL or Redis fails the run."""

import os

import pytest

ENABLED = os.environ.get("BENCH_SMOKE", "").strip().lower() in ("1", "true", "yes")

bench_smoke = pytest.mark.skipif(
    not ENABLED,
    reason="bench smoke runs are opt-in: BENCH_SMOKE=1 runs them (CI's PostgreSQL pass does)",
)

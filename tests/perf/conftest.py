"""The environment of the bench smoke runs (tests/perf/bench_smoke.py)."""

import os
from collections.abc import Iterator

import pytest

from tests import parallel

# The bench's own connections besides its server's pools: the seeding, its psycopg reads.
BENCH_OWN_CONNECTIONS = 4


@pytest.fixture
def bench_env(tmp_path, django_db_setup) -> Iterator[dict[str, str]]:
    """The environment of a smoke run: its database (a template copy where there is one), its
    journal directory, its share of the run's PostgreSQL connections held until it ends.
    `django_db_setup`: a worker that runs no other database test must still make the run's
    template before this copies it (run alone, the copy failed: no such template)."""
    name = f"bench_smoke_{os.getpid()}_{tmp_path.name}"[:60]
    env = {
        **os.environ,
        "BENCH_DB": name,
        "BENCH_JOURNAL_DIR": str(tmp_path / "journal"),
        # Ten chargers for two seconds: small pools, so its share of the run's budget leaves
        # room for the other workers' servers (the production pools are 12 + 8).
        "DB_EXECUTOR_THREADS": "4",
        "DB_ASYNC_POOL_SIZE": "3",
    }
    cloned = parallel.clone_template(name)
    if cloned:
        env["BENCH_DB_PREPARED"] = "1"
    share = object()
    servers = parallel.server_connections({**env, "DATABASE_URL": "postgres://", "DB_POOL": "true"})
    parallel.acquire_connections(share, servers + BENCH_OWN_CONNECTIONS)
    try:
        yield env
    finally:
        parallel.release_connections(share)
        if cloned:  # the bench drops it when it ends well; not when it failed half-way
            parallel.drop_database(name)

"""The suite under pytest-xdist (`make test` runs it so; docs/testing.md says why and how).

Each worker (gw0, gw1, ...) of one run:

- has a database of its own, cloned from one template the first worker makes from the models
  (tests/schema.py; PostgreSQL:
  `CREATE DATABASE test_<name>_gw0 TEMPLATE test_<name>`; SQLite: a copy of the file); the
  controller drops the template when the run ends;
- keeps its Redis keys (channel layer, cache, Celery) under prefixes of its own, which the servers
  and Celery workers it starts inherit (portal/settings.py, TESTING);
- picks the ports of the servers it starts from a range of its own, below the kernel's ephemeral
  ports, so no other worker, and no outgoing connection, takes a port between its pick and the
  server's bind (free_port);
- takes a share of the PostgreSQL connections: a live server may open DB_POOL_SIZE +
  DB_ASYNC_POOL_SIZE connections, and it starts only when the run's budget (TEST_DB_CONNECTIONS)
  still holds them (database_connections);
- runs a test marked `alone` only while no other test runs anywhere in the run (the mark gives
  the reason; docs/testing.md lists them).

Without xdist (plain `pytest`, `-n 0`) nothing here changes how a test runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests import reference_data, schema

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist, else ""
WORKER_INDEX = int(WORKER[2:]) if WORKER[2:].isdigit() else 0
WORKER_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
RUN_ID_ENV = "PYTEST_XDIST_TESTRUNUID"

# Ports: each worker draws from its own block of PORTS_PER_WORKER ports from TEST_PORT_BASE on
# (20000 by default: below Linux's ephemeral range, 32768-60999, that connect() draws from).
# A block belongs to the worker holding its lock file, whatever run it is in: two runs on one
# machine (a developer's beside CI's) never draw the same ports.
PORTS_PER_WORKER = 400
PORT_BLOCKS = 30  # 20000 + 30 x 400 = 32000, still below the ephemeral range


def run_id(config=None) -> str:
    """The id the controller and every worker of one run share (xdist's testrunuid)."""
    if config is not None:
        value = getattr(config, "workerinput", {}).get("testrunuid") or getattr(
            config.option, "testrunuid", None
        )
        if value:
            return value
    return os.environ.get(RUN_ID_ENV) or f"pid{os.getpid()}"


def run_dir(rid: str | None = None) -> Path:
    """Lock and ledger files of one run, in the temporary directory (never in the checkout)."""
    path = Path(tempfile.gettempdir()) / f"evportal-tests-{(rid or run_id())[:16]}"
    path.mkdir(exist_ok=True)
    return path


@contextlib.contextmanager
def _flock(name: str, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    with open(run_dir() / name, "a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- databases ---------------------------------------------------------------------------------


def _base_name() -> str:
    from django.conf import settings

    return str(settings.DATABASES["default"]["NAME"])


def template_name(rid: str | None = None) -> str:
    """The migrated database the workers' databases are cloned from."""
    from django.conf import settings

    if settings.IS_POSTGRES:
        # The run's id in the name: two runs on one server (a developer's beside CI's) would
        # otherwise clobber each other's template and drop each other's worker databases.
        return f"test_{_base_name()}_{(rid or run_id())[:12]}"
    return str(Path(settings.BASE_DIR) / f".test-db-{(rid or run_id())[:12]}.sqlite3")


def _use_database(name: str) -> None:
    from django.conf import settings
    from django.db import connection

    connection.close()
    settings.DATABASES["default"]["NAME"] = name
    connection.settings_dict["NAME"] = name


def setup_worker_database(verbosity: int = 0) -> str:
    """Make the run's template once (the first worker to get here), clone it for this worker.

    Returns the name of the base database (the one settings named before the tests) for
    teardown_worker_database.
    """
    from django.conf import settings
    from django.db import connection

    base = _base_name()
    template = template_name()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = template
    connection.settings_dict.setdefault("TEST", {})["NAME"] = template
    ready = run_dir() / "template-ready"
    with _flock("template.lock"):
        if not ready.exists():
            schema.build_from_models(connection)  # tests/schema.py: the migrations checked once
            connection.creation.create_test_db(
                verbosity=verbosity, autoclobber=True, serialize=False
            )
            schema.record_migrations_applied(connection)
            # The rows the data migrations seed, in the template as in a migrated database:
            # else every non-transactional test seeded them again inside its own rolled-back
            # transaction (~0.14 CPU-s a test).
            reference_data.ensure()
            ready.write_text(template)
        _use_database(template)  # closed: CREATE DATABASE ... TEMPLATE needs it unused
        connection.creation.clone_test_db(suffix=WORKER, verbosity=verbosity, keepdb=False)
    clone = connection.creation.get_test_db_clone_settings(WORKER)["NAME"]
    if settings.IS_POSTGRES:
        _no_parallel_plans(clone)
    _use_database(clone)
    return base


def _no_parallel_plans(name: str) -> None:
    """The test databases are never analyzed, and with the planner's default estimates a
    statement over many tables (the row snapshots, tests/db_snapshot.py) was planned parallel:
    each run forked two workers, 25 ms instead of 2, and half of PostgreSQL's CPU in a test run.
    Their tables hold a handful of rows; no query of theirs gains from a parallel plan. A clone
    does not inherit its template's settings, so every clone gets it."""
    with _postgres_admin() as pg:
        pg.execute(f'ALTER DATABASE "{name}" SET max_parallel_workers_per_gather = 0')


def _postgres_admin():
    """A connection to the server's `postgres` database (autocommit: CREATE/DROP DATABASE)."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres",
        user=db.get("USER") or "postgres",
        host=db.get("HOST") or "127.0.0.1",
        port=db.get("PORT") or 5432,
        password=db.get("PASSWORD") or None,
        autocommit=True,
    )


def clone_template(name: str) -> bool:
    """Make database `name` a copy of the run's migrated template (PostgreSQL, under xdist), under
    the lock the workers clone it with (CREATE DATABASE ... TEMPLATE needs the template unused).
    False when there is no such template to copy (SQLite, one process): make it yourself."""
    from django.conf import settings

    template = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if not (WORKER and settings.IS_POSTGRES and template):
        return False
    with _flock("template.lock"), _postgres_admin() as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        pg.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    _no_parallel_plans(name)
    return True


def drop_database(name: str) -> None:
    """Drop a database a test made with clone_template (whatever it left connected)."""
    with _postgres_admin() as pg:
        pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def end_other_connections() -> None:
    """The log writer's async connection and pool threads of this process still hold the worker's
    database at the end; DROP DATABASE would fail ("being accessed by other users")."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def teardown_worker_database(base: str, verbosity: int = 0) -> None:
    from django.db import connection

    end_other_connections()
    name = str(connection.settings_dict["NAME"])
    connection.creation.destroy_test_db(old_database_name=base, verbosity=verbosity)
    if connection.vendor == "sqlite":  # SQLite's write-ahead log and index beside the file
        for suffix in ("-wal", "-shm"):
            Path(name + suffix).unlink(missing_ok=True)


def drop_template(rid: str, workers: int) -> None:
    """The controller, at the end of the run: the template goes (whoever made it), and so do the
    workers' databases a worker that was stopped (Ctrl-C, a crash) could not drop itself."""
    from django.conf import settings

    template = template_name(rid)
    if not (run_dir(rid) / "template-ready").exists():
        return
    clones = [f"{template}_gw{n}" for n in range(workers)]
    if settings.IS_POSTGRES:
        with _postgres_admin() as pg:
            for name in [template, *clones]:
                pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        for name in [
            template,
            *(f"{template[: -len('.sqlite3')]}_gw{n}.sqlite3" for n in range(workers)),
        ]:
            for suffix in ("", "-wal", "-shm"):
                Path(name + suffix).unlink(missing_ok=True)


def remove_run_dir(rid: str) -> None:
    shutil.rmtree(run_dir(rid), ignore_errors=True)


# -- ports -------------------------------------------------------------------------------------

_next_port = 0


_block_lock: list = []  # the open lock file of this worker's block, held until it exits


def _port_block() -> int:
    """The block this worker owns: the first whose lock file (in the shared temporary directory,
    not the run's) no other process holds. The worker keeps it open, so the lock goes with the
    process; its servers, forked from it, keep it while they live."""
    if _block_lock:
        return _block_lock[0][0]
    for offset in range(PORT_BLOCKS):
        block = (WORKER_INDEX + offset) % PORT_BLOCKS
        handle = open(Path(tempfile.gettempdir()) / f"evportal-test-ports-{block}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _block_lock.append((block, handle))
        return block
    raise RuntimeError(f"all {PORT_BLOCKS} blocks of test ports are held by other workers")


def free_port() -> int:
    """A port no one listens on, from this worker's own block (see PORTS_PER_WORKER).

    The caller hands it to a server that binds it a moment later: a port from the kernel's
    ephemeral range (bind to 0) could be taken in between by another worker's pick or by any
    outgoing connection.
    """
    global _next_port
    if not WORKER:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]
    first = int(os.environ.get("TEST_PORT_BASE") or 20000) + _port_block() * PORTS_PER_WORKER
    for _ in range(PORTS_PER_WORKER):
        port = first + _next_port
        _next_port = (_next_port + 1) % PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # someone else's (a server of another run, or one still closing)
            return port
    raise RuntimeError(f"no free port in {first}-{first + PORTS_PER_WORKER - 1}")


# -- the PostgreSQL connection budget ----------------------------------------------------------


def connection_budget() -> int:
    """Connections the run's servers may hold at once: TEST_DB_CONNECTIONS (the run's share of
    PostgreSQL's max_connections, 100 for everything on the machine) less what the workers' own
    processes hold (TEST_DB_CONNECTIONS_PER_WORKER each: the test thread, the database threads and
    the log writer's pool; at most 9 were seen in one)."""
    total = int(os.environ.get("TEST_DB_CONNECTIONS") or 80)
    per_worker = int(os.environ.get("TEST_DB_CONNECTIONS_PER_WORKER") or 10)
    return total - WORKER_COUNT * per_worker


def check_budget() -> None:
    """At the start: the budget must hold at least one server at its bound."""
    from django.conf import settings

    if not settings.IS_POSTGRES or not WORKER:
        return
    one = settings.DB_POOL_SIZE + settings.DB_ASYNC_POOL_SIZE
    if connection_budget() < one:
        raise RuntimeError(
            f"TEST_DB_CONNECTIONS={os.environ.get('TEST_DB_CONNECTIONS') or 80} leaves "
            f"{connection_budget()} PostgreSQL connections for the servers of {WORKER_COUNT} "
            f"workers, less than one server's {one} (DB_POOL_SIZE + DB_ASYNC_POOL_SIZE): "
            "raise it or run fewer workers (TEST_WORKERS)"
        )


def server_connections(env: dict[str, str]) -> int:
    """The most a server started with this environment opens (its two pools, README
    "Connections")."""
    from django.conf import settings

    if not env.get("DATABASE_URL", "").startswith("postgres"):
        return 0
    executor = int(env.get("DB_EXECUTOR_THREADS") or 8)
    pool = int(env.get("DB_POOL_SIZE") or executor + 4)
    if env.get("DB_POOL", "true").lower() in ("0", "false", "no", "off"):
        pool = max(pool, settings.DB_POOL_SIZE)  # without the pool: one per thread, as many
    return pool + int(env.get("DB_ASYNC_POOL_SIZE") or 8)


_held: dict[int, int] = {}  # id(owner) -> connections held by this process


def acquire_connections(owner: object, count: int, *, timeout: float = 600) -> None:
    """Wait until `count` connections are free in the run's budget and hold them for `owner`
    (release_connections). A request above the budget waits until it is all free."""
    if not WORKER or count <= 0:
        return
    budget = connection_budget()
    count = min(count, budget)
    ledger = run_dir() / "connections.json"
    deadline = time.monotonic() + timeout
    while True:
        with _flock("connections.lock"):
            held = _read_ledger(ledger)
            mine = sum(n for key, n in held.items() if key.startswith(f"{os.getpid()}:"))
            if mine + count > budget:
                # Only this worker could give them back, and it is the one waiting.
                raise RuntimeError(
                    f"this worker already holds {mine} of the run's {budget} PostgreSQL "
                    f"connections (TEST_DB_CONNECTIONS) and asks {count} more: {held}"
                )
            if sum(held.values()) + count <= budget:
                held[f"{os.getpid()}:{id(owner)}"] = count
                ledger.write_text(json.dumps(held))
                _held[id(owner)] = count
                return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"no {count} PostgreSQL connections free in the run's budget ({budget}, "
                f"TEST_DB_CONNECTIONS) for {timeout:.0f} s: {held}"
            )
        time.sleep(0.2)


def release_connections(owner: object) -> None:
    if _held.pop(id(owner), None) is None:
        return
    ledger = run_dir() / "connections.json"
    with _flock("connections.lock"):
        held = _read_ledger(ledger)
        held.pop(f"{os.getpid()}:{id(owner)}", None)
        ledger.write_text(json.dumps(held))


def _read_ledger(ledger: Path) -> dict[str, int]:
    """The holders still alive (a worker that died gave its connections back)."""
    try:
        held = json.loads(ledger.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    alive = {}
    for key, count in held.items():
        pid = int(key.split(":")[0])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive[key] = count
    return alive


# -- tests that run alone ----------------------------------------------------------------------


@contextlib.contextmanager
def run_slot(alone: bool) -> Iterator[None]:
    """Around each test under xdist: a test marked `alone` waits until every running test has
    ended, and no test starts anywhere until it has; the others share the run freely.

    A readers-writer lock over two flock()ed files: every test passes the gate and holds the
    `running` lock shared; an `alone` test holds the gate (so no new test starts while it waits)
    and then `running` exclusively.
    """
    if not WORKER:
        yield
        return
    with open(run_dir() / "gate.lock", "a+") as gate, open(run_dir() / "running.lock", "a+") as run:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            if alone:
                fcntl.flock(run, fcntl.LOCK_EX)
            else:
                fcntl.flock(run, fcntl.LOCK_SH)
        finally:
            if not alone:
                fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(run, fcntl.LOCK_UN)
            if alone:
                fcntl.flock(gate, fcntl.LOCK_UN)

import json
import os
import socket
import time
from typing import Any

import pytest
from django.conf import settings

from backoffice import listen
from tests import parallel, reference_data, schedule, schema, zygote
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _xdist_controller(config) -> bool:
    """This process hands the tests to xdist workers (pytest -n N with N > 0)."""
    return not hasattr(config, "workerinput") and bool(config.getoption("numprocesses", None))


def pytest_configure(config):
    # Passwords in the test process are hashed with Django's own PBKDF2 at 1,000 iterations
    # instead of 1,000,000 (0.44 s of CPU for every user a test makes or signs in). Same algorithm
    # and format; the servers the tests start hash the same way (tests/server_settings.py).
    from django.contrib.auth import hashers

    settings.PASSWORD_HASHERS = ["tests.hashers.FastPBKDF2PasswordHasher"]
    hashers.get_hashers.cache_clear()
    hashers.get_hashers_by_algorithm.cache_clear()
    if _xdist_controller(config) and not config.getoption("testrunuid", None):
        # The controller names the run before it starts the workers (tests/parallel.py): it
        # drops the run's template database at the end.
        import uuid

        config.option.testrunuid = uuid.uuid4().hex
    # Scripted chargers expect the answers they ask for, not a GetConfiguration 0.2 s after
    # their boot: the tests of energy reporting (tests/chargers/test_energy_reporting_16.py)
    # turn it on.
    settings.OCPP_ENERGY_CONFIG_AFTER_BOOT = False
    # CI must exercise PostgreSQL and Redis for real: fail loudly instead of skipping.
    if os.environ.get("REQUIRE_SERVICES") == "true":
        problems = []
        if not settings.IS_POSTGRES:
            problems.append("DATABASE_URL does not point at PostgreSQL")
        elif not _reachable("127.0.0.1", 5432):
            problems.append("PostgreSQL is not reachable on 127.0.0.1:5432")
        if not settings.REDIS_URL:
            problems.append("REDIS_URL is not set")
        elif not _reachable("127.0.0.1", 6379):
            problems.append("Redis is not reachable on 127.0.0.1:6379")
        if problems:
            raise pytest.UsageError("CI needs its services: " + "; ".join(problems))


def pytest_sessionfinish(session):
    zygote.close()  # and the servers it forked
    _write_durations()
    _redis_keys_removed()
    if _databases:  # made before the tests, and no test that ran asked for it (all skipped)
        from django.test.utils import teardown_databases
        from pytest_django.plugin import blocking_manager_key

        with session.config.stash[blocking_manager_key].unblock():
            if "base" in _databases:
                parallel.teardown_worker_database(_databases.pop("base"))
            else:
                parallel.end_other_connections()
                teardown_databases(_databases.pop("config"), verbosity=0)
    if _xdist_controller(session.config):
        rid = parallel.run_id(session.config)
        try:
            parallel.drop_template(rid, int(session.config.getoption("numprocesses") or 0))
        finally:
            parallel.remove_run_dir(rid)


def _redis_keys_removed() -> None:
    """A worker leaves nothing in the run's Redis database: the keys under its own prefixes
    (channel layer, cache, Celery's queues and bindings; backoffice/env.py) and its bench smoke
    runs' (tests/perf/conftest.py). Other runs' keys on the same database are not touched."""
    worker_prefix = os.environ.get("CHANNEL_LAYER_PREFIX", "")
    if not settings.REDIS_URL or not worker_prefix:
        return
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for pattern in (f"{worker_prefix}*", f"bench_smoke_{os.getpid()}_*"):
            keys = list(client.scan_iter(match=pattern, count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
    except redis.RedisError as exc:  # the run's result stands; the keys expire or stay
        print(f"Could not remove this worker's Redis keys: {exc}")
    finally:
        client.close()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Outside everything else (the per-test timeout too): a test marked `alone` runs while no
    other test of the run does (tests/parallel.py)."""
    marker = item.get_closest_marker("alone")
    if marker is not None and not (marker.args or marker.kwargs.get("reason")):
        raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.alone needs the reason")
    with parallel.run_slot(alone=marker is not None):
        yield


def pytest_terminal_summary(terminalreporter):
    """The number of tests executed (passed, failed, xfailed, xpassed; not skipped), last, so
    `make test` can add up its passes (TEST_COUNT_FILE)."""
    stats = terminalreporter.stats
    executed = sum(
        1
        for key in ("passed", "failed", "xfailed", "xpassed")
        for report in stats.get(key, [])
        if getattr(report, "when", "call") == "call"
    )
    errors = len(stats.get("error", []))
    terminalreporter.write_line(
        f"tests executed: {executed}" + (f", errors: {errors}" if errors else "")
    )
    count_file = os.environ.get("TEST_COUNT_FILE")
    if count_file and not hasattr(terminalreporter.config, "workerinput"):
        failed = len(stats.get("failed", [])) + errors
        with open(count_file, "a") as handle:
            handle.write(f"{executed} {failed}\n")


# Rows post_migrate creates; kept by the fast flush instead of deleted and created again.
_FLUSH_KEEPS = frozenset({"django_content_type", "auth_permission", "django_site"})


def _install_fast_flush() -> None:
    """Empty the tables after a transactional test with DELETE instead of Django's TRUNCATE.

    On PostgreSQL a TRUNCATE of the ~100 tables gives every table new files: ~3 s per
    transactional test (about half of the suite's time on this machine), where DELETE of the few
    rows a test leaves takes milliseconds. The end state is the same (every table empty, sequences
    untouched, as with Django's flush), except that content types, permissions and sites are
    kept, so post_migrate has nothing to create, and so are the reference rows the migrations
    seed while no test changed them (tests/reference_data.py). Foreign keys are deferred (both
    backends: Django makes them DEFERRABLE INITIALLY DEFERRED), so one transaction may delete in
    any order. On SQLite Django's flush deleted the content types and permissions too and
    post_migrate made them again, and the reference rows were seeded again after every
    transactional test: a third of the SQLite pass's CPU. Anything unusual falls back to Django's
    flush.
    """
    from django.db import IntegrityError, connections, transaction
    from django.test import TransactionTestCase

    django_teardown = TransactionTestCase._fixture_teardown

    def fixture_teardown(self):
        names = self._databases_names(include_mirrors=False)
        if (
            self.available_apps is not None
            or self.serialized_rollback
            or any(connections[name].vendor not in ("postgresql", "sqlite") for name in names)
        ):
            return django_teardown(self)
        for name in names:
            connection = connections[name]
            keeps = _FLUSH_KEEPS | (reference_data.kept_tables() if name == "default" else set())
            tables = [
                table
                for table in connection.introspection.django_table_names(only_existing=True)
                if table not in keeps
            ]
            deletes = [f"DELETE FROM {connection.ops.quote_name(table)}" for table in tables]
            # One round trip on PostgreSQL; SQLite runs one statement per call.
            statements = ["; ".join(deletes)] if connection.vendor == "postgresql" else deletes
            for attempt in range(3):
                # A row written by work the test left running, between two of the DELETEs,
                # fails the deferred foreign keys at COMMIT: delete again.
                try:
                    with transaction.atomic(using=name), connection.cursor() as cursor:
                        for statement in statements:
                            cursor.execute(statement)
                    break
                except IntegrityError:
                    if attempt == 2:
                        raise

    TransactionTestCase._fixture_teardown = fixture_teardown


_install_fast_flush()


def _install_static_files_once() -> None:
    """WhiteNoise lists every static file of every app (its finders) each time the middleware is
    made, and Django's test Client makes the middleware anew for each client: a tenth of the
    suite's time went there. The files do not change during a run; each kind of middleware lists
    them once (the key holds every setting the listing reads)."""
    from django.conf import settings
    from whitenoise.middleware import WhiteNoiseMiddleware

    listing = WhiteNoiseMiddleware.add_files_from_finders
    listed: dict[str, dict] = {}

    def add_files_from_finders(self):
        key = repr(
            (
                self.static_prefix,
                self.max_age,
                self.allow_all_origins,
                self.charset,
                self.index_file,
                settings.STATICFILES_DIRS,
                settings.STATICFILES_FINDERS,
                settings.INSTALLED_APPS,
                getattr(settings, "WHITENOISE_MIMETYPES", None),
                getattr(settings, "WHITENOISE_ADD_HEADERS_FUNCTION", None),
                getattr(settings, "WHITENOISE_IMMUTABLE_FILE_TEST", None),
            )
        )
        if key not in listed:
            before = dict(self.files)
            listing(self)
            listed[key] = {url: f for url, f in self.files.items() if before.get(url) is not f}
        for url, static_file in listed[key].items():
            self.files.setdefault(url, static_file)

    WhiteNoiseMiddleware.add_files_from_finders = add_files_from_finders


_install_static_files_once()


_databases: dict = {}  # how the test database was set up, for its teardown


def _uses_database(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return item.get_closest_marker("django_db") is not None or bool(
        names & {"db", "transactional_db", "django_db_setup", "live_server"}
    )


def _set_up_databases(config) -> None:
    """The test database: under xdist a clone of the run's template (tests/parallel.py), else
    pytest-django's own, made here; both from the models (tests/schema.py)."""
    from django.test.utils import setup_databases

    verbosity = config.option.verbose
    if parallel.WORKER:
        parallel.check_budget()
        _databases["base"] = parallel.setup_worker_database(verbosity)
    else:
        from django.db import connection

        schema.build_from_models(connection)
        _databases["config"] = setup_databases(
            verbosity=verbosity, interactive=False, aliases={"default"}, serialized_aliases=set()
        )
        schema.record_migrations_applied(connection)
        reference_data.ensure()  # as a migrated database holds them (tests/parallel.py)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session):
    """Make the test database before the first test, not in its setup: a worker may wait for
    another to make the template, which is no test's time (the per-test timeout)."""
    from pytest_django.plugin import blocking_manager_key

    if session.config.option.collectonly or not any(map(_uses_database, session.items)):
        return
    with session.config.stash[blocking_manager_key].unblock():
        _set_up_databases(session.config)


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    """The test database (made by pytest_runtestloop, or here for a test it did not foresee).

    Dropped for sure at the end on PostgreSQL: the log writer's async connection and the database
    pool's threads still hold connections when the session ends, so Django's DROP DATABASE failed
    ("being accessed by other users") and every run left a test database behind on the machine.
    They are ended first.
    """
    from django.test.utils import teardown_databases

    verbosity = request.config.option.verbose
    if not _databases:
        with django_db_blocker.unblock():
            _set_up_databases(request.config)
    yield
    with django_db_blocker.unblock():
        if "base" in _databases:
            parallel.teardown_worker_database(_databases.pop("base"), verbosity)
        else:
            parallel.end_other_connections()
            teardown_databases(_databases.pop("config"), verbosity=verbosity)


def _delete_keys(client, pattern: str) -> None:
    keys = list(client.scan_iter(match=pattern, count=1000))
    for start in range(0, len(keys), 500):
        client.unlink(*keys[start : start + 500])


def _install_cache_clear_of_own_keys() -> None:
    """Django's RedisCache.clear() is FLUSHDB: the whole Redis database, which the other xdist
    workers share (tests/parallel.py). In the test process it deletes the cache's own keys (its
    KEY_PREFIX, one per worker: portal/settings.py), the same for the test that calls it."""
    from django.core.cache.backends.redis import RedisCache

    def clear(self) -> None:
        _delete_keys(self._cache.get_client(write=True), f"{self.key_prefix}:*")

    RedisCache.clear = clear


_install_cache_clear_of_own_keys()


def _clear_cache(cache) -> None:
    """Empty the cache, and the channel layer's keys a test left in Redis (its prefix, then the
    channel or ":group:<name>"), as FLUSHDB did before the workers shared the database."""
    from django.core.cache.backends.redis import RedisCache

    cache.clear()
    layer = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix")
    if isinstance(cache, RedisCache) and layer:
        _delete_keys(cache._cache.get_client(write=True), f"{layer}*")


@pytest.fixture(autouse=True)
def _clean_caches():
    from django.core.cache import cache

    from chargers.connections.handshake_guard import guard

    _clear_cache(cache)
    guard._failures.clear()
    yield


@pytest.fixture(autouse=True)
def _flush_message_log():
    """Detach the OCPP log writer from the test's event loop; tests that read the log flush it."""
    from chargers.messagelog.log import writer

    yield
    writer._messages.clear()
    writer._meters.clear()
    writer._seen.clear()
    writer._task = None
    writer._loop = None


@pytest.fixture
async def _background_work_done():
    """An async test's background work (connection announcements, follow-up CALLs) ends before
    the database is cleaned; added last to every async test (pytest_collection_modifyitems), so
    its teardown runs first, on the test's own loop."""
    from chargers.plumbing import background

    yield
    await background.drain(timeout=10)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Async tests drain their background work; then, after the random order (pytest-randomly)
    and pytest-django's grouping, the tests known to be slow go first, one worker's share each
    (tests/schedule.py)."""
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.fixturenames.append("_background_work_done")
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    known = schedule.load()
    items[:] = schedule.slowest_first(items, workers, lambda item: known.get(item.nodeid, 0.0))


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """With TEST_DURATIONS_OUT, the controller (or a run without workers) adds up each test's
    setup, call and teardown, for the slowest-first order of later runs."""
    if os.environ.get("TEST_DURATIONS_OUT") and not os.environ.get("PYTEST_XDIST_WORKER"):
        _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def _write_durations() -> None:
    out = os.environ.get("TEST_DURATIONS_OUT")
    if not out or os.environ.get("PYTEST_XDIST_WORKER") or not _durations:
        return
    from pathlib import Path

    path = Path(out)
    slow = {k: v for k, v in _durations.items() if v >= schedule.SLOW_S / 2}
    path.write_text(json.dumps(schedule.merged(schedule.load(path), slow), indent=0) + "\n")


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    """Each test builds its own channel layer.

    channels_redis releases the receive lock of a process's channels ("specific.<id>!") only when
    the task that cleans the received message's backup finishes. A test whose event loop closed
    before that left the lock held on a dead loop, and every later command reply in the run failed
    with "bound to a different event loop".
    """
    from channels.layers import channel_layers

    yield
    channel_layers.backends.clear()


@pytest.fixture
def prop(db):
    return PropertyFactory()


@pytest.fixture
def charger(db, prop):
    return ChargerFactory(property=prop, station_id="CP-TEST-1")


@pytest.fixture
def token(db, prop):
    return TokenFactory(uid="04A1B2C3", organization=prop.organization)


@pytest.fixture
def host(db, prop):
    return MembershipFactory(organization=prop.organization, role="owner").user


@pytest.fixture
def postgresql_only() -> None:
    """Skip a test of row locks and constraints across connections (tests/concurrency.py) in
    the SQLite pass, which serializes every write anyway."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks and constraints across connections: PostgreSQL")


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def free_port() -> int:
    """A free port for a server a test starts (this worker's own under xdist, tests/parallel.py)."""
    return parallel.free_port()


_free_port = free_port


class LiveServer:
    def __init__(self, process, port: int):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"


def _test_database_url() -> str:
    db_settings = settings.DATABASES["default"]
    if settings.IS_POSTGRES:
        user = db_settings.get("USER") or "postgres"
        host = db_settings.get("HOST") or "127.0.0.1"
        port = db_settings.get("PORT") or 5432
        return f"postgres://{user}@{host}:{port}/{db_settings['NAME']}"
    return f"sqlite:///{db_settings['NAME']}"


# Servers whose PostgreSQL connections were reserved together (reserve_servers): the next
# start_live_server calls of this process take one each instead of asking the budget.
_reserved_servers: list[int] = [0]


def reserve_servers(count: int) -> object:
    """Hold the connections of `count` servers at once, for a test that runs them side by side
    (release_servers after stopping them). Asked one server at a time, two such tests on two
    workers could each hold one server's share and wait for the other's forever: the run's
    budget holds two servers, not four (tests/parallel.py, connection_budget)."""
    share = object()
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "DB_POOL": "true", **SERVER_POOLS}
    parallel.acquire_connections(share, count * parallel.server_connections(env))
    _reserved_servers[0] += count
    return share


def release_servers(share: object) -> None:
    _reserved_servers[0] = 0
    parallel.release_connections(share)


# Servers fork from one preloaded parent per worker (tests/zygote.py); false: a new interpreter each.
SERVER_ZYGOTE = os.environ.get("TEST_SERVER_ZYGOTE", "true").lower() != "false"

# The pools of a server a test starts (start_live_server; production: 8 threads, 12 + 8).
SERVER_POOLS = {"DB_EXECUTOR_THREADS": "4", "DB_POOL_SIZE": "6", "DB_ASYNC_POOL_SIZE": "4"}


def start_live_server(**env_overrides) -> LiveServer:
    """Start the real server (`manage.py serve`, uvicorn) against the test database.

    `env_overrides` change its environment (e.g. DATABASE_URL through a proxy, OCPP_JOURNAL_DIR).
    Stop it with stop_live_server().

    The server returned is the one started here: a port picked here (free_port) that another
    process took before the server bound it is given up for another (PortTaken, `served_by`).
    """
    import subprocess
    import sys
    from pathlib import Path

    given_port = int(env_overrides.pop("PORT", 0) or 0)
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DEBUG": "true",
        # Production's settings with the test process's password hasher (no rehash at sign-in).
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "SIMULATE": "0",
        "OCPP_ENERGY_CONFIG_AFTER_BOOT": "false",  # as in-process (pytest_configure)
        "CONN_MAX_AGE": "0",
        # The production shape: the bounded pool (the test process itself may run without it).
        "DB_POOL": "true",
        "GUEST_START_TIMEOUT_S": os.environ.get("GUEST_START_TIMEOUT_S", "60"),
        # Pools a test's handful of chargers and requests never fill: 10 PostgreSQL connections
        # instead of production's 20, so five servers fit the run's budget at once instead of
        # two (tests/parallel.py: a server test waited up to two minutes for its share). The
        # test of the connection bound itself passes "" for production's sizes. On SQLite the
        # server keeps its own (one database thread, as `make run`).
        **(SERVER_POOLS if settings.IS_POSTGRES else {}),
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update({key: str(value) for key, value in env_overrides.items()})
    root = Path(__file__).resolve().parent.parent
    # Its two pools' worth of PostgreSQL connections from the run's budget (tests/parallel.py).
    share = object()
    if _reserved_servers[0] > 0:
        _reserved_servers[0] -= 1  # reserved with its siblings' (reserve_servers)
    else:
        parallel.acquire_connections(share, parallel.server_connections(env))
    attempts = 1 if given_port else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        port = given_port or free_port()
        env["PORT"] = str(port)
        # Named by its worker too: two runs in one checkout may pick the same port.
        log = open(root / f".live-server-{port}-{os.getpid()}.log", "w")
        argv = ["manage.py", "serve", "--port", str(port), "--simulate", "0"]
        forks = zygote.zygote(root) if SERVER_ZYGOTE else None
        if forks is not None and forks.suits(env):  # a fork of a preloaded parent (tests/zygote.py)
            process: Any = forks.spawn(argv, env=env, cwd=root, log=log.name)
        else:
            process = subprocess.Popen(
                [sys.executable, *argv], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            _wait_until_serving(process, port, log.name)
        except BaseException as exc:
            # Whatever ends the wait (the server's own failure, the per-test timeout, an
            # interrupt): the process goes and its connections go back to the run's budget. A
            # share kept here was held by no one for the rest of the run, and a worker whose later
            # test needed it waited for itself.
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
            if isinstance(exc, PortTaken) and attempt < attempts:
                Path(log.name).unlink(missing_ok=True)
                continue  # another port, the same share
            parallel.release_connections(share)
            raise
        break
    server = LiveServer(process, port)
    server.log = log
    server.db_share = share
    return server


# Ports start_live_server tries when the one it picked is taken by another process before its
# server binds it (another run's server on the same ports, tests/parallel.py free_port).
PORT_ATTEMPTS = 5


class PortTaken(RuntimeError):
    """Another process answers on the port a test's server was started on."""


def served_by(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds the socket listening on TCP `port` (Linux: /proc/net/tcp's
    listening sockets against the process's descriptors); False when it has exited (a zombie
    holds no descriptor); None where there is no /proc to tell."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                lines = rows.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXADDR:HEXPORT; state 0A is LISTEN; field 9 is the inode.
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    if not os.path.isdir("/proc/self/fd"):
        return None
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:  # gone (a server that could not bind exits at once): it serves nothing
        return False
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _wait_until_serving(process, port: int, log_name: str) -> None:
    """Until the server answers HTTP, not only accepts (it listens before Django loads). A
    generous deadline: a busy machine starts Django slowly, and a hang is the per-test
    timeout's to catch.

    The answer must come from this server: a port picked free can be bound by another process
    (another test run's server: the runs draw from the same port blocks) before this server
    binds it. This one then cannot listen, and a test that took the other's answer for its own
    talked to a server of another database (a charger it created refused with 404)."""
    deadline = time.monotonic() + 120
    while True:
        if listen.serving("127.0.0.1", port):
            if served_by(process.pid, port) is not False:
                return
            raise PortTaken(
                f"port {port} is served by another process, not by the server started ({log_name})"
            )
        if process.poll() is not None:
            raise RuntimeError(f"server exited early, see {log_name}")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start in 120 s")
        time.sleep(0.05)


def stop_live_server(server: LiveServer) -> None:
    import subprocess
    from pathlib import Path

    from django.db import connections

    try:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=15)
    finally:
        parallel.release_connections(getattr(server, "db_share", None))
    server.log.close()
    Path(server.log.name).unlink(missing_ok=True)
    # The server's connections are gone; drop ours so the test database can be flushed.
    connections.close_all()


@pytest.fixture
def live_server_proc(transactional_db, tmp_path):
    """Start the real server (`manage.py serve`, uvicorn) against the test database.

    Use with rows created in the test: transactional_db commits them, so the server
    process sees them. Yields a LiveServer with .url / .ws_url / .port.
    """
    server = start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal")
    yield server
    stop_live_server(server)


@pytest.fixture(autouse=True)
def _reference_data_seeded(request: pytest.FixtureRequest) -> None:
    """A database test finds the rows the data migrations seed, as a migrated database has
    them, whatever an earlier transactional test flushed (tests/reference_data.py)."""
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db"}:
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    reference_data.ensure()

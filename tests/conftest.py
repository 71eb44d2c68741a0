import os
import socket

import pytest
from django.conf import settings

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory, TokenFactory


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def pytest_configure(config):
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


# Rows post_migrate creates; kept by the fast flush instead of deleted and created again.
_FLUSH_KEEPS = frozenset({"django_content_type", "auth_permission", "django_site"})


def _install_fast_flush() -> None:
    """Empty the tables after a transactional test with DELETE instead of Django's TRUNCATE.

    On PostgreSQL a TRUNCATE of the ~100 tables gives every table new files: ~3 s per
    transactional test (about half of the suite's time on this machine), where DELETE of the few
    rows a test leaves takes milliseconds. The end state is the same (every table empty, sequences
    untouched, as with Django's flush), except that content types, permissions and sites are
    kept, so post_migrate has nothing to create. Foreign keys are deferred on PostgreSQL, so one
    transaction may delete in any order. Anything unusual falls back to Django's flush.
    """
    from django.db import connections, transaction
    from django.test import TransactionTestCase

    django_teardown = TransactionTestCase._fixture_teardown

    def fixture_teardown(self):
        names = self._databases_names(include_mirrors=False)
        if (
            self.available_apps is not None
            or self.serialized_rollback
            or any(connections[name].vendor != "postgresql" for name in names)
        ):
            return django_teardown(self)
        for name in names:
            connection = connections[name]
            tables = [
                table
                for table in connection.introspection.django_table_names(only_existing=True)
                if table not in _FLUSH_KEEPS
            ]
            with transaction.atomic(using=name), connection.cursor() as cursor:
                cursor.execute(
                    "; ".join(f"DELETE FROM {connection.ops.quote_name(table)}" for table in tables)
                )

    TransactionTestCase._fixture_teardown = fixture_teardown


_install_fast_flush()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, dropped for sure at the end on PostgreSQL.

    The log writer's async connection and the database pool's threads still hold connections
    when the session ends, so Django's DROP DATABASE failed ("being accessed by other users")
    and every run left a test database behind on the machine. They are ended first.
    """
    yield
    from django.db import connection

    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _clean_caches():
    from django.core.cache import cache

    from chargers.connections.handshake_guard import guard

    cache.clear()
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
    from chargers.connections import background

    yield
    await background.drain(timeout=10)


def pytest_collection_modifyitems(items):
    import inspect

    for item in items:
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            item.fixturenames.append("_background_work_done")


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
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def start_live_server(**env_overrides) -> LiveServer:
    """Start the real server (`manage.py serve`, uvicorn) against the test database.

    `env_overrides` change its environment (e.g. DATABASE_URL through a proxy, OCPP_JOURNAL_DIR).
    Stop it with stop_live_server().
    """
    import subprocess
    import sys
    import time
    from pathlib import Path

    port = int(env_overrides.pop("PORT", 0) or _free_port())
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "DEBUG": "true",
        "PORT": str(port),
        "SIMULATE": "0",
        "OCPP_ENERGY_CONFIG_AFTER_BOOT": "false",  # as in-process (pytest_configure)
        "CONN_MAX_AGE": "0",
        # The production shape: the bounded pool (the test process itself may run without it).
        "DB_POOL": "true",
        "GUEST_START_TIMEOUT_S": os.environ.get("GUEST_START_TIMEOUT_S", "60"),
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update({key: str(value) for key, value in env_overrides.items()})
    root = Path(__file__).resolve().parent.parent
    log = open(root / f".live-server-{port}.log", "w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--simulate", "0"],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early, see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("server did not start in 30 s")
    server = LiveServer(process, port)
    server.log = log
    return server


def stop_live_server(server: LiveServer) -> None:
    import subprocess
    from pathlib import Path

    from django.db import connections

    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=15)
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

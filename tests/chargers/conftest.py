"""Fixtures shared by the charger tests."""

import os
import shutil
import socket
import subprocess
import time

import pytest
from channels.layers import channel_layers
from django.test import override_settings

from chargers.plumbing.journal import journal
from tests.conftest import free_port


@pytest.fixture
def outage(settings, tmp_path, monkeypatch):
    """The outage journal in a temporary directory, its replay left to the test; a test engages
    it (or the code under test does) and it is released afterwards."""
    settings.OCPP_JOURNAL_DIR = tmp_path

    async def no_recovery():
        return None

    monkeypatch.setattr(journal, "_recover", no_recovery)
    yield journal
    journal._engaged = False
    journal.close()
    journal.key, journal._path, journal._seq, journal._replayed_offset = "", None, 0, 0


def _announced(signal, uid):
    seen: list[int] = []

    def receiver(sender, session_id, **kwargs):
        seen.append(session_id)

    signal.connect(receiver, dispatch_uid=uid, weak=False)  # the receiver outlives this call
    return seen


@pytest.fixture
def announced_started():
    """The ids of the sessions announced as started (chargers.signals.session_started)."""
    from chargers.signals import session_started

    yield _announced(session_started, "test-announced-started")
    session_started.disconnect(dispatch_uid="test-announced-started")


@pytest.fixture
def announced_finished():
    """The ids of the sessions announced as finished (chargers.signals.session_finished)."""
    from chargers.signals import session_finished

    yield _announced(session_finished, "test-announced-finished")
    session_finished.disconnect(dispatch_uid="test-announced-finished")


class PrivateRedis:
    """A redis-server of this test's own, stopped and started again on the same port."""

    def __init__(self, binary: str, directory: str) -> None:
        self.binary, self.directory = binary, directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", self.directory],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # generous: a busy machine starts it slowly
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "redis-server did not start"
            assert self.process.poll() is None, "redis-server exited"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("REQUIRE_SERVICES") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis(binary, str(tmp_path))
    redis.start()
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": redis.url, "socket_connect_timeout": 2, "socket_timeout": None}
                ],
                "prefix": "outage-test",
            },
        }
    }
    caches = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis.url,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers, CACHES=caches):
        channel_layers.backends.clear()
        try:
            yield redis
        finally:
            redis.stop()
            channel_layers.backends.clear()

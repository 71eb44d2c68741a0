"""Dependencies that do not answer, for the tests of what a person sees then: a port this test
opened and closed itself (nothing listens: connection refused, as while Redis restarts), and a
server that accepts and never answers (a hung Redis, a network that drops the packets)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_cache_at(url: str, options: dict | None = None) -> dict:
    """A CACHES setting whose default cache is Redis at `url` (with the deployment's options)."""
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": dict(options or {}),
        }
    }


def refused_redis_cache(options: dict | None = None) -> dict:
    return redis_cache_at(f"redis://127.0.0.1:{closed_port()}/0", options)


class SilentServer:
    """A TCP server that accepts connections but never answers (`url`; `accepted` counts)."""

    def __init__(self, port: int) -> None:
        self.url = f"redis://127.0.0.1:{port}/0"
        self.accepted = 0


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.05)  # the accept loop sees `stop`
    server = SilentServer(listener.getsockname()[1])
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)
            server.accepted += 1

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in held:
            conn.close()


@contextmanager
def rows_held_too_long(rows: Any) -> Iterator[None]:
    """Another connection holds the row locks of queryset `rows`; this connection's statements
    give up waiting for them after 200 ms (PostgreSQL's lock_timeout), as under a deadlock or a
    stall."""
    from django.db import connection, transaction

    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                list(rows.select_for_update())
                locked.set()
                release.wait()
        finally:
            locked.set()
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait()
    with connection.cursor() as cursor:
        cursor.execute("SET lock_timeout = '200ms'")
    try:
        yield
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

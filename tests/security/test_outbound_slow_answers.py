"""A configured URL whose server answers a byte at a time, each within the read timeout
(slowloris): httpx's timeout is per read, so such an answer held the caller (a sync, an MSP's
Authorize, an OCPI pull) without end. backoffice/outbound.py's clients give a whole request at
most `total` seconds (TOTAL_PER_TIMEOUT times the timeout by default), then a timeout error in
plain words."""

from __future__ import annotations

import asyncio
import socket
import threading

import httpx
import pytest

from backoffice import outbound


class Trickle(threading.Thread):
    """An allow-listed server that sends a byte every 20 ms and never finishes: in the headers
    (`where="headers"`) or in the body of a 200 (`where="body"`)."""

    def __init__(self, where: str) -> None:
        super().__init__(daemon=True)
        self.where = where
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._trickle(conn)

    def _trickle(self, conn: socket.socket) -> None:
        conn.recv(65536)
        if self.where == "body":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
        try:
            while not self.stop.wait(0.02):
                conn.sendall(b"x" if self.where == "body" else b"X-Slow: y\r\n"[:1])
        except OSError:
            return

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.sock.close()


@pytest.fixture(params=["headers", "body"])
def trickle(request, settings):
    server = Trickle(request.param)
    server.start()
    settings.OUTBOUND_URL_ALLOWLIST = [f"127.0.0.1:{server.port}"]
    yield f"http://127.0.0.1:{server.port}/tokens"
    server.close()


def test_a_trickling_answer_is_cut_at_the_total_time_sync(trickle):
    with outbound.http_client(timeout=0.2, total=0.5, schemes=("http",)) as client:
        with pytest.raises(httpx.TimeoutException) as cut:
            client.get(trickle)
    assert outbound.failure_words(cut.value, "the provider").startswith(
        "No answer from the provider in time"
    )


def test_a_trickling_answer_is_cut_at_the_total_time_when_streamed(trickle):
    with outbound.http_client(timeout=0.2, total=0.5, schemes=("http",)) as client:
        with pytest.raises(httpx.TimeoutException):
            with client.stream("GET", trickle) as response:
                for _ in response.iter_bytes():
                    pass


def test_a_trickling_answer_is_cut_at_the_total_time_async(trickle):
    async def fetch() -> None:
        async with outbound.async_http_client(timeout=0.2, total=0.5, schemes=("http",)) as c:
            await c.get(trickle)

    with pytest.raises(httpx.TimeoutException):
        asyncio.run(fetch())


def test_the_total_defaults_to_a_multiple_of_the_timeout():
    with outbound.http_client(timeout=3) as client:
        assert client.total_s == 3 * outbound.TOTAL_PER_TIMEOUT

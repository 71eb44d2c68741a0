"""The server a test starts (tests/conftest.py start_live_server) is the one the test talks to.

A port picked free can be bound by another process before the server binds it: another test run
on the machine draws from the same port blocks (tests/parallel.py free_port). The server started
then cannot listen, and its test, taking the other process's HTTP answer for its own, talked to a
server of another database: `test_sigterm_flush` was refused its chargers with 404 ("Unknown
charge point identity") in a `make test` beside other runs. Reproduced with two runs of it at
once (`-n 1` each: the same worker block, the same first port); docs/testing.md, "Session 88".
"""

from __future__ import annotations

import asyncio
import http.server
import os
import subprocess
import sys
import threading

import pytest
import websockets

from tests import conftest
from tests.factories import ChargerFactory

pytestmark = pytest.mark.e2e


class _AnyAnswer(http.server.BaseHTTPRequestHandler):
    """Another process's server: answers HTTP, knows no charger."""

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def port_of_another_process():
    other = http.server.ThreadingHTTPServer(("127.0.0.1", conftest.free_port()), _AnyAnswer)
    thread = threading.Thread(target=other.serve_forever, daemon=True)
    thread.start()
    yield other.server_address[1]
    other.shutdown()
    other.server_close()


@pytest.mark.django_db(transaction=True)
def test_a_picked_port_another_process_took_first_is_given_up_and_a_new_charger_connects(
    port_of_another_process, monkeypatch, tmp_path
):
    # The pick the race gives: free when picked, served by another process when ours binds.
    picks = [port_of_another_process]
    pick = conftest.free_port
    monkeypatch.setattr(conftest, "free_port", lambda: picks.pop() if picks else pick())

    server = conftest.start_live_server(OCPP_JOURNAL_DIR=tmp_path / "journal")
    try:
        ChargerFactory(station_id="CP-PORT-TAKEN")  # created after the server started

        async def connect() -> str | None:
            async with websockets.connect(
                f"{server.ws_url}/ocpp/CP-PORT-TAKEN", subprotocols=["ocpp1.6"]
            ) as ws:
                return ws.subprotocol

        assert asyncio.run(connect()) == "ocpp1.6"
        assert server.port != port_of_another_process
    finally:
        conftest.stop_live_server(server)


@pytest.mark.django_db(transaction=True)
def test_a_given_port_another_process_serves_fails_the_start(port_of_another_process, tmp_path):
    with pytest.raises(conftest.PortTaken, match=str(port_of_another_process)):
        conftest.start_live_server(
            PORT=port_of_another_process, OCPP_JOURNAL_DIR=tmp_path / "journal"
        )


def test_served_by_names_the_process_that_listens_and_never_one_that_exited(
    port_of_another_process,
):
    assert conftest.served_by(os.getpid(), port_of_another_process) is True  # its socket is ours
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert conftest.served_by(idle.pid, port_of_another_process) is False
    finally:
        idle.kill()
        idle.wait()
    # Reaped: a server that could not bind and exited serves nothing (it was taken as serving).
    assert conftest.served_by(idle.pid, port_of_another_process) is False

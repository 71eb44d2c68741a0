"""Websocket paths that match no route, and malformed station ids, get a clear HTTP status at the
handshake, never a server error. Sent as raw upgrade requests so each path goes out exactly."""

import base64
import os
import socket

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _handshake_status(
    port: int, path: str, origin: bool = False, subprotocol: str | None = "ocpp1.6"
) -> int:
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"Origin: http://127.0.0.1:{port}\r\n" if origin else ""
    if subprotocol is not None:
        extra += f"Sec-WebSocket-Protocol: {subprotocol}\r\n"
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode("latin-1"))
        status_line = sock.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


CASES = [
    ("/ocpp/", 404),
    ("/ocpp", 404),
    ("/ocpp/../X", 404),
    ("/ocpp/X%2FY", 404),
    ("/ocpp//X", 404),
    ("/nothing/here", 404),
    ("/ocpp/A%00B", 400),
    ("/ocpp/" + "A" * 49, 400),
    ("/ocpp/has%20space", 400),
    ("/ocpp/colon:id", 400),
    ("/ocpp/UNKNOWN-1", 404),
]


def test_unroutable_and_malformed_handshakes_get_a_clear_status(live_server_proc):
    port = live_server_proc.port
    got = {path: _handshake_status(port, path) for path, _ in CASES}
    assert got == dict(CASES)
    # Browser sockets check the Origin first (cross-site websocket hijacking), then the route.
    assert _handshake_status(port, "/ws/not-a-live-view/") == 403
    assert _handshake_status(port, "/ws/not-a-live-view/", origin=True) == 404
    # OCPP-J §3.2: no subprotocol offered at all is a plain HTTP 400 (however the server
    # reports the absent header); one we do not speak completes and closes at once.
    assert _handshake_status(port, "/ocpp/UNKNOWN-1", subprotocol=None) == 400
    assert _handshake_status(port, "/ocpp/UNKNOWN-1", subprotocol="") == 400  # an empty header
    assert _handshake_status(port, "/ocpp/UNKNOWN-1", subprotocol="ocpp1.5") == 101
    log = open(live_server_proc.log.name).read()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]

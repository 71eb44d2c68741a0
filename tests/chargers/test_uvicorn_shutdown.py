"""A server stopping while chargers close their own sockets (chargers/connections/uvicorn_protocol.py).

uvicorn closes every connection in turn at shutdown; one whose peer had just sent its close
made uvicorn's sans-I/O protocol raise InvalidState, which ended that loop: the graceful wait
never ran and every other socket's task was cancelled with a traceback each. The protocol is
driven here byte for byte over a socket pair (a websockets client protocol on the other end)."""

from __future__ import annotations

import asyncio
import socket

import pytest
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State
from websockets.uri import parse_uri

from chargers.connections.uvicorn_protocol import ChargerWebSocketProtocol
from chargers.management.commands.serve import uvicorn_config


async def _charger_app(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def _handshake(app, protocol_class: type[WebSocketsSansIOProtocol], station: str):
    """A charger's opening handshake for `app` reaches the protocol over a socket pair."""
    # log_config=None: uvicorn leaves logging alone, so its "uvicorn.error" reaches caplog.
    config = Config(app, ws=protocol_class, lifespan="off", log_config=None)
    config.load()
    state = ServerState()
    server_end, client_end = socket.socketpair()
    client_end.setblocking(False)
    protocol = protocol_class(config=config, server_state=state, app_state={})
    await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, server_end)
    client = ClientProtocol(parse_uri(f"ws://csms.test/ocpp/{station}"))
    client.send_request(client.connect())
    protocol.data_received(b"".join(client.data_to_send()))
    return protocol, client, client_end, state


async def _open(protocol_class: type[WebSocketsSansIOProtocol]):
    protocol, client, client_end, state = await _handshake(_charger_app, protocol_class, "CP-1")
    for _ in range(500):
        if protocol.handshake_complete:
            break
        await asyncio.sleep(0.01)
    assert protocol.handshake_complete
    await asyncio.sleep(0.01)  # the transport writes the 101 on the loop
    client.receive_data(client_end.recv(65536))
    assert client.state is State.OPEN
    return protocol, client, client_end, state


async def _app_ended(state: ServerState) -> None:
    """The socket's ASGI task took its disconnect and ended (no task left to cancel)."""
    for _ in range(500):
        if not state.tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the connection's task did not end")


def _charger_sends_close(protocol: WebSocketsSansIOProtocol, client: ClientProtocol) -> None:
    """The charger's close frame reaches the server; its socket is not gone yet."""
    client.send_close(1000)
    protocol.data_received(b"".join(client.data_to_send()))


async def test_uvicorns_own_protocol_fails_the_shutdown_on_a_closing_peer():
    """Why the subclass exists: if this starts passing, uvicorn fixed it and the subclass can go."""
    protocol, client, client_end, state = await _open(WebSocketsSansIOProtocol)
    _charger_sends_close(protocol, client)
    assert protocol in state.connections
    with pytest.raises(InvalidState):
        protocol.shutdown()
    await _app_ended(state)
    client_end.close()


async def test_a_closing_peer_no_longer_fails_the_shutdown():
    protocol, client, client_end, state = await _open(ChargerWebSocketProtocol)
    _charger_sends_close(protocol, client)
    assert protocol in state.connections

    protocol.shutdown()

    assert protocol.transport.is_closing()
    await _app_ended(state)
    client_end.close()


async def test_an_open_socket_is_still_closed_with_service_restart():
    protocol, client, client_end, state = await _open(ChargerWebSocketProtocol)

    protocol.shutdown()
    await _app_ended(state)

    client.receive_data(client_end.recv(65536))
    assert client.close_rcvd is not None and client.close_rcvd.code == 1012
    client_end.close()


def test_serve_runs_the_tolerant_protocol_by_default(monkeypatch):
    monkeypatch.delenv("UVICORN_WS", raising=False)
    assert uvicorn_config("127.0.0.1", 8000).ws is ChargerWebSocketProtocol
    monkeypatch.setenv("UVICORN_WS", "websockets")
    assert uvicorn_config("127.0.0.1", 8000).ws == "websockets"


async def _refusing_app(scope, receive, send):
    assert (await receive())["type"] == "websocket.connect"
    assert "websocket.http.response" in scope["extensions"]
    await send(
        {
            "type": "websocket.http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": b"Unknown station."})


async def _refused(protocol_class: type[WebSocketsSansIOProtocol]):
    _, client, client_end, state = await _handshake(_refusing_app, protocol_class, "NO-SUCH")
    await _app_ended(state)
    client.receive_data(client_end.recv(65536))
    client_end.close()
    return client.events_received()


async def test_a_refused_charger_gets_its_status_and_no_error_is_logged(caplog):
    events = await _refused(ChargerWebSocketProtocol)

    assert events[0].status_code == 404 and events[0].body == b"Unknown station."
    assert "without completing handshake" not in caplog.text


async def test_uvicorns_own_protocol_logs_an_error_for_every_refusal(caplog):
    """Why `send` is overridden: if this starts passing, uvicorn fixed it."""
    events = await _refused(WebSocketsSansIOProtocol)

    assert events[0].status_code == 404
    assert "ASGI callable returned without completing handshake." in caplog.text

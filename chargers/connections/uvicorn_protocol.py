"""The websocket protocol uvicorn runs for our sockets: its sans-I/O one (`websockets-sansio`,
chosen by measurement, docs/performance.md) with a shutdown that survives a closing peer, and
without an ERROR line for every charger refused at its handshake.

uvicorn's shutdown asks every open connection to close with 1012, one after the other. A
connection whose peer had just sent its own close is still in that list until its socket is
gone, and uvicorn 0.54's `shutdown()` then calls `send_close` on a websocket that is already
closing: `InvalidState` escapes, the loop over the connections stops there, the graceful wait
never runs and every socket's task is cancelled, each logging its own traceback (43,576 of
them when 30,000 chargers closed as their server stopped, 2026-11-27). Such a connection has
already answered the close and queued its disconnect (`handle_close`): its socket only has to go.

A refused handshake (404 unknown station, 401, 400, 503 overloaded: the ASGI denial response)
is answered, but uvicorn 0.54 never marks it as the handshake's answer and logs "ASGI callable
returned without completing handshake." at ERROR for each: 13,262 lines in one 30,000-charger
storm, where the refusals are already counted once by chargers.security.

A charger that answers our websocket pings is alive even when it sends no OCPP frame: OCPP-J 1.6
§5.3 lets pings stand in for most Heartbeats. uvicorn answers pongs itself, so the application
never saw one, and such a charger read as offline (its commands refused unsent) two heartbeat
intervals after its last frame. Each answered pong now reaches the consumer through a
`PongWatch` in the scope's extensions (`PONG_EXTENSION`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.protocol import State

PONG_EXTENSION = "ocpp.pong"


class PongWatch:
    """Where a socket's answered pongs go: the consumer sets `on_pong` once it holds the socket.
    `interval` is the ping interval in seconds."""

    __slots__ = ("interval", "on_pong")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.on_pong: Callable[[], None] | None = None


class ChargerWebSocketProtocol(WebSocketsSansIOProtocol):
    pong_watch: PongWatch | None = None

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if self.ping_interval and not self.handshake_complete:  # not refused by websockets
            self.pong_watch = PongWatch(self.ping_interval)
            # Routers copy the scope but not its extensions' dict: the consumer sees this one.
            self.scope["extensions"][PONG_EXTENSION] = self.pong_watch  # type: ignore[index]

    def handle_pong(self, event: Frame) -> None:
        answered = self.pending_ping_payload is not None and bytes(event.data) == (
            self.pending_ping_payload
        )
        super().handle_pong(event)
        watch = self.pong_watch
        if answered and watch is not None and watch.on_pong is not None:
            watch.on_pong()

    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
            self.stop_keepalive()
            self.transport.close()
            return
        super().shutdown()

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True  # the refusal was the handshake's answer

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
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State


class ChargerWebSocketProtocol(WebSocketsSansIOProtocol):
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

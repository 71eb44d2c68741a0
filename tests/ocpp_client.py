"""A charger written from the OCPP-J text for tests: raw JSON arrays over Channels' communicator."""

import base64
import itertools
import json

from channels.testing import WebsocketCommunicator

from portal.asgi import application
from tests.bounds import GENEROUS_S

_ids = itertools.count(1)


def basic_auth(username: str, password: str) -> tuple[bytes, bytes]:
    return (b"authorization", b"Basic " + base64.b64encode(f"{username}:{password}".encode()))


class OcppTestClient:
    def __init__(
        self, station_id: str, *, password: str | None = None, subprotocols=("ocpp1.6",), headers=()
    ):
        headers = list(headers)
        if password is not None:
            headers.append(basic_auth(station_id, password))
        self.communicator = WebsocketCommunicator(
            application, f"/ocpp/{station_id}", subprotocols=list(subprotocols), headers=headers
        )
        self._calls: list[list] = []  # CSMS CALLs that came while a reply was awaited
        # Tests that read the communicator directly see those CALLs first, and "nothing was
        # received" stays false while one is kept: keeping them hides nothing.
        receive_from, receive_nothing = (
            self.communicator.receive_from,
            self.communicator.receive_nothing,
        )

        async def kept_first(timeout: float = 1) -> str:
            if self._calls:
                return json.dumps(self._calls.pop(0))
            return await receive_from(timeout=timeout)

        async def none_kept(timeout: float = 0.1, interval: float = 0.01) -> bool:
            return not self._calls and await receive_nothing(timeout=timeout, interval=interval)

        self._receive_from = receive_from
        self.communicator.receive_from = kept_first  # type: ignore[method-assign]
        self.communicator.receive_nothing = none_kept  # type: ignore[method-assign]

    async def connect(self):
        return await self.communicator.connect(timeout=GENEROUS_S)

    async def send_raw(self, text: str) -> list:
        await self.communicator.send_to(text_data=text)
        return json.loads(await self.communicator.receive_from(timeout=GENEROUS_S))

    async def call(self, action: str, payload: dict) -> list:
        """Send a CALL and return its reply. A CALL of the CSMS that arrives first (OCPP-J lets
        each side have one of its own outstanding; a post-boot or follow-up request on a busy
        machine can come between) is kept for `receive()`, in order, as a charger would queue it."""
        unique_id = f"t{next(_ids)}"
        await self.communicator.send_to(text_data=json.dumps([2, unique_id, action, payload]))
        reply = await self._next_reply()
        while reply[0] == 2 and reply[1] != unique_id:
            self._calls.append(reply)
            reply = await self._next_reply()
        assert reply[1] == unique_id, reply
        return reply

    async def result(self, action: str, payload: dict) -> dict:
        reply = await self.call(action, payload)
        assert reply[0] == 3, reply
        return reply[2]

    async def _next_reply(self) -> list:
        # Past what is kept: the reply comes after the CALLs already set aside.
        return json.loads(await self._receive_from(timeout=GENEROUS_S))

    async def receive(self, timeout: float = GENEROUS_S) -> list:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def send(self, message: list) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def close(self):
        """Disconnect, then wait for the work the conversation left in the background (session
        announcements and the tasks they run). A sync test's loop (async_to_sync) ends right
        after this, while a task's thread would go on writing rows the test's cleaning is
        deleting (a PortEvent for a charger being removed failed the flush in CI)."""
        from chargers.plumbing import background

        await self.communicator.disconnect()
        await background.drain(timeout=GENEROUS_S)

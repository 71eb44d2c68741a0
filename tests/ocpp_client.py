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


class _KeepingCommunicator(WebsocketCommunicator):
    """The communicator with the CSMS CALLs a `call()` set aside: tests that read it directly
    see them first, and "nothing was received" is false while one is kept (hiding nothing)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kept: list[list] = []

    async def receive_from(self, timeout=1):
        if self.kept:
            return json.dumps(self.kept.pop(0))
        return await super().receive_from(timeout=timeout)

    async def receive_nothing(self, timeout=0.1, interval=0.01):
        return not self.kept and await super().receive_nothing(timeout=timeout, interval=interval)

    async def next_message(self, timeout: float) -> list:
        """The next frame off the wire, past what is kept."""
        return json.loads(await super().receive_from(timeout=timeout))


class OcppTestClient:
    def __init__(
        self, station_id: str, *, password: str | None = None, subprotocols=("ocpp1.6",), headers=()
    ):
        headers = list(headers)
        if password is not None:
            headers.append(basic_auth(station_id, password))
        self.communicator = _KeepingCommunicator(
            application, f"/ocpp/{station_id}", subprotocols=list(subprotocols), headers=headers
        )

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
            self.communicator.kept.append(reply)
            reply = await self._next_reply()
        assert reply[1] == unique_id, reply
        return reply

    async def result(self, action: str, payload: dict) -> dict:
        reply = await self.call(action, payload)
        assert reply[0] == 3, reply
        return reply[2]

    async def _next_reply(self) -> list:
        # Past what is kept: the reply comes after the CALLs already set aside.
        return await self.communicator.next_message(timeout=GENEROUS_S)

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

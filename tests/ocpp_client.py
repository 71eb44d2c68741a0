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

    async def connect(self):
        return await self.communicator.connect(timeout=GENEROUS_S)

    async def send_raw(self, text: str) -> list:
        await self.communicator.send_to(text_data=text)
        return json.loads(await self.communicator.receive_from(timeout=GENEROUS_S))

    async def call(self, action: str, payload: dict) -> list:
        unique_id = f"t{next(_ids)}"
        reply = await self.send_raw(json.dumps([2, unique_id, action, payload]))
        assert reply[1] == unique_id
        return reply

    async def result(self, action: str, payload: dict) -> dict:
        reply = await self.call(action, payload)
        assert reply[0] == 3, reply
        return reply[2]

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

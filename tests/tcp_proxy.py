"""A TCP proxy in a background thread whose link can be cut: a database outage on demand.

The server under test reaches PostgreSQL through it; `cut()` drops every open connection and
refuses new ones (accept then close at once, like a database that went away), `restore()` lets
them through again. PostgreSQL itself keeps running for everything else.

`freeze()` makes the open connections half-open, as a silent network drop does: nothing is
passed on in either direction any more and nobody is told (no FIN, no RST); what arrives is read
and dropped. New connections go through. `closed_by_target` counts frozen connections the
target closed since (e.g. a server that reaped the dead socket).
"""

from __future__ import annotations

import asyncio
import socket
import threading


class CuttableProxy:
    def __init__(self, target_host: str = "127.0.0.1", target_port: int = 5432):
        self.target = (target_host, target_port)
        self.cut_now = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._links: list[dict[str, bool]] = []  # one per open connection: {"frozen": ...}
        self.closed_by_target = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_now:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        link = {"frozen": False}
        self._links.append(link)

        async def pipe(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, from_target: bool
        ) -> None:
            try:
                while data := await src.read(65536):
                    if not link["frozen"]:
                        dst.write(data)
                        await dst.drain()
                if link["frozen"]:
                    if from_target:
                        self.closed_by_target += 1
                    return  # the other side is never told
            except (ConnectionError, OSError):
                if link["frozen"] and from_target:
                    self.closed_by_target += 1
                    return
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        self._writers -= {writer, up_writer}
        self._links.remove(link)

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            transport = writer.transport
            if transport is not None:
                transport.abort()
        self._writers.clear()

    def freeze(self) -> None:
        async def freeze_all() -> None:
            for link in self._links:
                link["frozen"] = True

        asyncio.run_coroutine_threadsafe(freeze_all(), self._loop).result(5)

    def cut(self) -> None:
        self.cut_now = True
        self._loop.call_soon_threadsafe(self._drop_all)

    def restore(self) -> None:
        self.cut_now = False

    def close(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

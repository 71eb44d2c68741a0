"""The proxy at run time: for one connected charger, one websocket of ours to each upstream
backoffice, as that charger, on the consumer's event loop (no thread per connection).

`Proxy` is owned by the charger's consumer. For every CALL from the charger the consumer calls
`relay()` before handling it itself: each link sends the frame to its upstream (transaction
messages to an unreachable upstream are queued durably instead) and the Leader's answer comes
back through `Relay.leader_answer()`. CALLs from an upstream reach the charger through
`ChargerSide.call_charger` when the upstream's role allows them. docs/proxy.md has the flows.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from django.utils import timezone
from websockets.exceptions import InvalidStatus, WebSocketException

from backoffice import db, outbound
from chargers.messagelog.log import writer
from chargers.ocpp import protocol
from chargers.proxy import rules, services
from chargers.proxy.services import Queued, UpstreamConfig

logger = logging.getLogger("chargers.proxy")

CALL_TIMEOUT_S = 30.0  # an upstream that does not answer a CALL at all (chargers wait about 30 s)
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 60.0
LIVE_QUEUE_MAX = 1_000  # non-transaction frames beyond this are dropped for a slow upstream
STATE_WRITE_EVERY_S = 5.0  # last_message_at is written at most this often per link
# Our pings find a connection that went half-open (a silent network drop): without them a link
# whose upstream is gone shows Connected and takes frames into the void until a transaction
# message times out, and a Leader's every Authorize waits for the Leader timeout.
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 20.0


class ChargerSide(Protocol):
    """What the proxy needs from the charger's consumer."""

    charger_id: int
    station_id: str
    subprotocol: str

    async def call_charger(
        self, action: str, payload: dict, timeout: float
    ) -> protocol.Frame | None: ...


@dataclass
class Outgoing:
    action: str
    unique_id: str
    payload: Any  # as the charger sent it; rewritten for the upstream when sent
    durable: bool
    answer: asyncio.Future[protocol.Frame | None] | None = None
    # StartTransaction: the transactionId the charger was given (decided after the Leader answers).
    charger_tx: asyncio.Future[int | None] | None = None
    queued_id: int | None = None  # its row in the durable queue, if it came from there


def _log(
    charger_id: int,
    backoffice_id: int,
    direction: str,
    message_type: int,
    unique_id: str,
    action: str,
    payload: Any,
    text: str,
) -> Awaitable[None]:
    return writer.add_message(
        charger_id=charger_id,
        direction=direction,
        message_type=message_type,
        unique_id=unique_id,
        action=action,
        payload=payload,
        text=text,
        backoffice_id=backoffice_id,
    )


class UpstreamLink:
    """Our socket to one upstream backoffice for one charger, reconnecting with back-off."""

    def __init__(self, side: ChargerSide, config: UpstreamConfig, version: str) -> None:
        self.side = side
        self.config = config
        self.version = version
        self.status = "disconnected"
        self.ws: Any = None
        self.queue: asyncio.Queue[Outgoing] = asyncio.Queue()
        self.pending: dict[str, asyncio.Future[protocol.Frame]] = {}
        self.pending_actions: dict[str, str] = {}  # for the log of their answers
        self.in_flight: Outgoing | None = None
        self.gate = asyncio.Lock()  # queue-or-send decisions vs. the switch to connected
        self.tx_to_party: dict[int, int] = {}
        self.tx_to_charger: dict[int, int] = {}
        self.task: asyncio.Task[None] | None = None
        self.stopping = False
        self.last_state_write = 0.0
        self.tasks: set[asyncio.Task[Any]] = set()
        # Live frames dropped for a slow upstream and not yet written (_drops_write).
        self.drops = 0
        self.drops_first: datetime | None = None
        self.drops_last: datetime | None = None
        self.drops_writer: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def connected(self) -> bool:
        return self.status == "connected"

    def start(self) -> None:
        self.task = asyncio.create_task(
            self._run(), name=f"proxy {self.side.station_id} -> {self.name}"
        )

    async def stop(self, *, record: bool = True) -> None:
        """Close the socket; unanswered transaction messages go to the durable queue."""
        self.stopping = True
        if self.ws is not None:
            try:
                await self.ws.close()
            except Exception:
                pass
        if self.task is not None:
            try:  # closing ends the link's loops, which persist what they hold
                await asyncio.wait_for(asyncio.shield(self.task), 5)
            except (TimeoutError, asyncio.CancelledError, Exception):
                self.task.cancel()
        await self._go_down()
        await self._drops_write()  # what the last seconds dropped, before the process may end
        if record:
            await self._state("disconnected", disconnected_at=timezone.now())

    # -- sending (called by Proxy.relay) -----------------------------------------------------

    async def forward(self, item: Outgoing) -> None:
        """Send (connected) or queue durably (a transaction message) or drop; never waits for
        the upstream itself, so a slow upstream cannot slow the charger or the others."""
        async with self.gate:
            # While a connection attempt is under way frames wait in memory (a charger's first
            # BootNotification usually arrives before its links are up); they are sent if it
            # succeeds and queued durably (transaction messages) or dropped if it fails.
            if self.status in ("connected", "connecting"):
                if not item.durable and self.queue.qsize() >= LIVE_QUEUE_MAX:
                    self._dropped()
                    self._resolve(item, None)
                    return
                self.queue.put_nowait(item)
                return
            if item.durable:  # under the gate: the switch to connected waits for this row
                try:
                    await self._queue_durably([item])
                except Exception:  # the charger's own message is stored by us whatever happens here
                    logger.exception("Could not queue %s for %s", item.action, self.name)
        self._resolve(item, None)

    async def _queue_durably(self, items: list[Outgoing]) -> None:
        """Append to the durable queue in order; a StartTransaction's charger transactionId is
        filled in once the charger has been answered."""
        rows = [Queued(i.action, i.unique_id, i.payload, _done_value(i.charger_tx)) for i in items]
        ids = await db.run(services.queue_append, self.config.id, rows)
        for item, row_id in zip(items, ids, strict=True):
            if item.charger_tx is not None and not item.charger_tx.done():
                item.charger_tx.add_done_callback(functools.partial(self._fill_charger_tx, row_id))

    def _dropped(self) -> None:
        """Count a live frame dropped for a slow upstream; written in batches (a flood of
        dropped frames is one write and one log line per STATE_WRITE_EVERY_S, not one each)."""
        now = timezone.now()
        self.drops += 1
        self.drops_first = self.drops_first or now
        self.drops_last = now
        if self.drops_writer is None or self.drops_writer.done():
            self.drops_writer = asyncio.ensure_future(self._drops_write(STATE_WRITE_EVERY_S))
            self.tasks.add(self.drops_writer)
            self.drops_writer.add_done_callback(self.tasks.discard)

    async def _drops_write(self, after: float = 0.0) -> None:
        if after:
            await asyncio.sleep(after)
        count, first, last = self.drops, self.drops_first, self.drops_last
        if not count or first is None or last is None:
            return
        self.drops, self.drops_first, self.drops_last = 0, None, None
        logger.warning(
            "%d live messages of %s not passed on to %s: %d were already waiting for it",
            count,
            self.side.station_id,
            self.name,
            LIVE_QUEUE_MAX,
        )
        try:
            await db.run(
                services.link_drops_record,
                backoffice_id=self.config.id,
                count=count,
                first_at=first,
                last_at=last,
            )
        except Exception as exc:  # shown to hosts; never worth the link
            logger.warning("Could not record dropped messages of %s: %s", self.name, exc)

    def _fill_charger_tx(self, row_id: int, future: asyncio.Future[int | None]) -> None:
        if not future.cancelled():
            self._spawn(db.run(services.queue_set_charger_tx, row_id, future.result()))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @staticmethod
    def _resolve(item: Outgoing, frame: protocol.Frame | None) -> None:
        if item.answer is not None and not item.answer.done():
            item.answer.set_result(frame)

    # -- the connection ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF_FIRST_S
        while not self.stopping:
            async with self.gate:
                self.status = "connecting"
            await self._state("connecting")
            try:
                # The outbound guard refuses a private address before any connection is made
                # (no port scan through the error) and connects to the address it checked.
                self.ws = await outbound.ws_connect(
                    f"{self.config.url}/{self.side.station_id}",
                    subprotocols=[self.side.subprotocol],
                    additional_headers=self._auth_headers(),
                    open_timeout=10,
                    ping_interval=PING_INTERVAL_S,
                    ping_timeout=PING_TIMEOUT_S,
                    close_timeout=PING_TIMEOUT_S,  # a dead socket's close waits no longer
                    max_size=4 * 1024 * 1024,
                )
            except InvalidStatus as exc:
                code = exc.response.status_code
                why = {
                    401: "refused our credentials (HTTP 401): check the password",
                    403: "refused the connection (HTTP 403)",
                    404: "does not know this station id (HTTP 404)",
                }.get(code, f"refused the handshake (HTTP {code})")
                await self._down(f"{self.name} {why}", delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            except (OSError, TimeoutError, WebSocketException, outbound.OutboundBlocked) as exc:
                # Plain words for the host, never the exception's text (it is logged).
                logger.info("Link %s -> %s: %r", self.side.station_id, self.name, exc)
                await self._down(outbound.failure_words(exc, "the backoffice")[:300], delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            delay = BACKOFF_FIRST_S
            if self.ws.subprotocol != self.side.subprotocol:
                await self.ws.close()
                await self._down(
                    f"{self.name} did not accept the {self.side.subprotocol} subprotocol", delay
                )
                continue
            reader = asyncio.create_task(self._read())
            async with self.gate:
                self.status = "connected"
            sender = asyncio.create_task(self._send_loop())
            await self._state("connected", error="", connected_at=timezone.now())
            try:
                await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, sender):
                    task.cancel()
                await asyncio.gather(reader, sender, return_exceptions=True)
                if sender.done() and not sender.cancelled() and sender.exception() is not None:
                    logger.info(
                        "Link %s -> %s: %s", self.side.station_id, self.name, sender.exception()
                    )
                try:
                    await self.ws.close()
                except Exception:
                    pass
                for future in self.pending.values():
                    if not future.done():
                        future.cancel()
                self.pending.clear()
                await self._go_down()
            if not self.stopping:
                await self._down(self._why_closed(), delay)

    def _why_closed(self) -> str:
        """Words for the Proxy tab on a connection that ended: our pings unanswered (we closed
        it with 1011) is a silent drop, not the upstream closing."""
        sent = getattr(getattr(self.ws, "protocol", None), "close_sent", None)
        if sent is not None and sent.code == 1011:
            return (
                f"{self.name} stopped answering (no answer to our pings within "
                f"{PING_TIMEOUT_S:g} s): reconnecting"
            )
        return "The connection closed"

    def _auth_headers(self) -> dict[str, str]:
        if not self.config.password:
            return {}
        token = base64.b64encode(f"{self.side.station_id}:{self.config.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def _down(self, error: str, delay: float) -> None:
        await self._go_down()
        await self._state("disconnected", error=error, disconnected_at=timezone.now())
        if not self.stopping:
            await asyncio.sleep(
                delay * (0.5 + random.random())
            )  # jitter: links of a restarted fleet spread out

    async def _state(self, status: str, **fields: Any) -> None:
        try:
            await db.run(
                services.link_state_record, backoffice_id=self.config.id, status=status, **fields
            )
        except Exception as exc:  # state is shown to hosts; never worth the link
            logger.warning("Could not record link state of %s: %s", self.name, exc)

    async def _touch(self) -> None:
        now = asyncio.get_running_loop().time()
        if now - self.last_state_write >= STATE_WRITE_EVERY_S:
            self.last_state_write = now
            await self._state("connected", last_message_at=timezone.now())

    # -- frames to the upstream ----------------------------------------------------------------

    async def _send_loop(self) -> None:
        # The durable queue first (older), then live frames; one outstanding CALL at a time
        # (OCPP-J §4.1.1), as a charger would.
        while True:
            head = await db.run(services.queue_head, self.config.id)
            if not head:
                break
            for queued in head:
                item = Outgoing(
                    queued.action, queued.unique_id, queued.payload, True, queued_id=queued.id
                )
                await self._deliver(item, queued.charger_transaction_id)
        while True:
            item = await self.queue.get()
            self.in_flight = item
            await self._deliver(item, None)
            self.in_flight = None

    async def _deliver(self, item: Outgoing, charger_tx: int | None) -> None:
        payload = await self._for_upstream(item.action, item.payload)
        text = protocol.call(item.unique_id, item.action, payload)
        future: asyncio.Future[protocol.Frame] = asyncio.get_running_loop().create_future()
        self.pending[item.unique_id] = future
        self.pending_actions[item.unique_id] = item.action
        await self.ws.send(text)
        await _log(
            self.side.charger_id,
            self.config.id,
            "out",
            protocol.CALL,
            item.unique_id,
            item.action,
            payload,
            text,
        )
        try:
            frame: protocol.Frame | None = await asyncio.wait_for(future, CALL_TIMEOUT_S)
        except TimeoutError:
            frame = None
        finally:
            self.pending.pop(item.unique_id, None)
        self._resolve(item, frame)
        if frame is None:
            if item.durable:
                # Unanswered transaction message: reconnect and deliver it again (it is kept),
                # rather than skip it and break the upstream's order.
                raise ConnectionError(
                    f"{self.name} did not answer {item.action} within {CALL_TIMEOUT_S:g} s"
                )
            return
        tx = (
            rules.started_transaction_id(item.action, frame.payload)
            if frame.message_type == protocol.CALLRESULT
            else None
        )
        if tx is not None:
            if charger_tx is None and item.charger_tx is not None:
                # Live: the charger's id is known once the Leader (maybe this upstream) answered.
                try:
                    charger_tx = await asyncio.wait_for(
                        asyncio.shield(item.charger_tx), CALL_TIMEOUT_S
                    )
                except TimeoutError:
                    charger_tx = None
            if charger_tx is not None:
                await self._remember(charger_tx, tx)
        if item.queued_id is not None:
            await db.run(services.queue_remove, item.queued_id)

    async def _remember(self, charger_tx: int, tx: int) -> None:
        self.tx_to_party[charger_tx] = tx
        self.tx_to_charger[tx] = charger_tx
        await db.run(
            services.transaction_map_record,
            charger_id=self.side.charger_id,
            backoffice_id=self.config.id,
            charger_transaction_id=charger_tx,
            transaction_id=tx,
        )

    async def _for_upstream(self, action: str, payload: Any) -> Any:
        ids = rules.charger_ids_in(action, payload)
        for charger_tx in ids:
            if charger_tx not in self.tx_to_party:
                found = await db.run(
                    services.party_transaction_id,
                    charger_id=self.side.charger_id,
                    backoffice_id=self.config.id,
                    charger_transaction_id=charger_tx,
                )
                if found is not None:
                    self.tx_to_party[charger_tx] = found
        return rules.rewrite_for_party(action, payload, self.tx_to_party.get)

    async def _go_down(self) -> None:
        """Disconnected: what waited in memory goes to the durable queue before anything newer
        can (forward() takes the same gate), so the upstream still gets it in order."""
        async with self.gate:
            self.status = "disconnected"
            await self._persist_unsent()

    async def _persist_unsent(self) -> None:
        items: list[Outgoing] = []
        if self.in_flight is not None and self.in_flight.queued_id is None:
            items.append(self.in_flight)
        self.in_flight = None
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        durable = [i for i in items if i.durable]
        for item in items:
            self._resolve(item, None)
        if not durable:
            return
        try:
            await self._queue_durably(durable)
        except Exception:
            logger.exception(
                "Could not queue %d transaction messages for %s", len(durable), self.name
            )

    # -- frames from the upstream ----------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                if not isinstance(text, str):
                    continue
                await self._touch()
                try:
                    frame = protocol.parse_frame(text)
                except protocol.FrameError as exc:
                    logger.info(
                        "%s sent a malformed frame for %s: %s",
                        self.name,
                        self.side.station_id,
                        exc.description,
                    )
                    continue
                if frame.message_type == protocol.CALL:
                    task = asyncio.create_task(self._upstream_call(frame, text))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                    continue
                future = self.pending.get(frame.unique_id)
                action = self.pending_actions.pop(frame.unique_id, "")
                if future is not None and not future.done():
                    future.set_result(frame)
                await _log(
                    self.side.charger_id,
                    self.config.id,
                    "in",
                    frame.message_type,
                    frame.unique_id,
                    action,
                    frame.payload
                    if frame.message_type == protocol.CALLRESULT
                    else {
                        "errorCode": frame.error_code,
                        "errorDescription": frame.error_description,
                    },
                    text,
                )
        except (WebSocketException, OSError):
            pass

    async def _upstream_call(self, frame: protocol.Frame, text: str) -> None:
        """A CALL from this upstream to the charger: forwarded if its role allows it."""
        await _log(
            self.side.charger_id,
            self.config.id,
            "in",
            protocol.CALL,
            frame.unique_id,
            frame.action,
            frame.payload,
            text,
        )
        allowed, why = rules.upstream_may_send(
            self.config.role, list(self.config.allowed_actions), frame.action, frame.payload
        )
        if not allowed:
            logger.warning(
                "%s: refused %s from %s: %s", self.side.station_id, frame.action, self.name, why
            )
            await self._reply_error(frame, protocol.SECURITY_ERROR, why)
            return
        payload = await self._for_charger(frame.action, frame.payload)
        answer = await self.side.call_charger(frame.action, payload, CALL_TIMEOUT_S)
        if answer is None:
            return  # the charger did not answer: neither do we (the upstream times out, as with a charger)
        if answer.message_type == protocol.CALLRESULT:
            reply = protocol.call_result(frame.unique_id, answer.payload)
            await self._send_reply(reply, frame, protocol.CALLRESULT, answer.payload)
        else:
            await self._reply_error(frame, answer.error_code, answer.error_description)

    async def _for_charger(self, action: str, payload: Any) -> Any:
        for tx in rules.party_ids_in(action, payload):
            if tx not in self.tx_to_charger:
                found = await db.run(
                    services.charger_transaction_id,
                    charger_id=self.side.charger_id,
                    backoffice_id=self.config.id,
                    transaction_id=tx,
                )
                if found is not None:
                    self.tx_to_charger[tx] = found
        return rules.rewrite_for_charger(action, payload, self.tx_to_charger.get)

    async def _reply_error(self, frame: protocol.Frame, code: str, description: str) -> None:
        text = protocol.call_error(frame.unique_id, code, description)
        await self._send_reply(
            text, frame, protocol.CALLERROR, {"errorCode": code, "errorDescription": description}
        )

    async def _send_reply(
        self, text: str, frame: protocol.Frame, message_type: int, payload: Any
    ) -> None:
        try:
            await self.ws.send(text)
        except (WebSocketException, OSError):
            return
        await _log(
            self.side.charger_id,
            self.config.id,
            "out",
            message_type,
            frame.unique_id,
            frame.action,
            payload,
            text,
        )


@dataclass
class Relay:
    """One charger CALL on its way to the upstreams."""

    action: str
    leader: UpstreamLink | None
    leader_answer_future: asyncio.Future[protocol.Frame | None] | None
    charger_tx: asyncio.Future[int | None] | None
    timeout_s: float
    futures: list[asyncio.Future[Any]] = field(default_factory=list)

    async def leader_answer(self) -> protocol.Frame | None:
        """The Leader's answer, or None when it is unreachable or slower than the timeout."""
        future = self.leader_answer_future
        if future is None:
            return None
        if future.done():  # an unreachable Leader's is resolved (None) at once
            return future.result()
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            return None

    def charger_got(self, transaction_id: int | None) -> None:
        """StartTransaction: the transactionId the charger was given (followers map theirs to it)."""
        if self.charger_tx is not None and not self.charger_tx.done():
            self.charger_tx.set_result(transaction_id)


class Proxy:
    """The upstream links of one connected charger."""

    def __init__(self, side: ChargerSide, version: str) -> None:
        self.side = side
        self.version = version
        self.links: dict[int, UpstreamLink] = {}
        self.leader_timeout_s = 10.0
        self.to_ours: dict[int, int] = {}  # charger's transactionId -> ours, when a Leader gave it
        self.to_charger: dict[int, int] = {}

    @property
    def active(self) -> bool:
        return bool(self.links)

    @property
    def leader(self) -> UpstreamLink | None:
        return next((link for link in self.links.values() if link.config.is_leader), None)

    async def reload(self) -> None:
        """Open, change or close links to match the charger's configuration."""
        configs, timeout = await db.run(services.proxy_config, self.side.charger_id)
        self.leader_timeout_s = float(timeout)
        wanted = {c.id: c for c in configs}
        for backoffice_id in list(self.links):
            link = self.links[backoffice_id]
            config = wanted.get(backoffice_id)
            if config is None or (config.url, config.password) != (
                link.config.url,
                link.config.password,
            ):
                del self.links[backoffice_id]
                await link.stop(record=config is not None)
            elif config != link.config:
                link.config = config  # role or allowed actions: no reconnect needed
        for backoffice_id, config in wanted.items():
            if backoffice_id not in self.links:
                link = UpstreamLink(self.side, config, self.version)
                self.links[backoffice_id] = link
                link.start()

    async def close(self, *, record: bool = True) -> None:
        links, self.links = list(self.links.values()), {}
        await asyncio.gather(*(link.stop(record=record) for link in links), return_exceptions=True)

    async def relay(self, action: str, payload: Any, unique_id: str) -> Relay:
        """Send a charger CALL to every upstream; return what tracks the Leader's answer."""
        loop = asyncio.get_running_loop()
        charger_tx: asyncio.Future[int | None] | None = (
            loop.create_future() if action == "StartTransaction" else None
        )
        leader = self.leader
        leader_future: asyncio.Future[protocol.Frame | None] | None = None
        for link in list(self.links.values()):
            answer: asyncio.Future[protocol.Frame | None] = loop.create_future()
            if link is leader:
                leader_future = answer
            await link.forward(
                Outgoing(
                    action,
                    unique_id,
                    payload,
                    action in rules.TRANSACTION_ACTIONS,
                    answer=answer,
                    charger_tx=charger_tx,
                )
            )
        return Relay(action, leader, leader_future, charger_tx, self.leader_timeout_s)

    # -- this system's own transactionIds when a Leader numbered the transaction -----------------

    async def for_us(self, action: str, payload: Any) -> Any:
        """A charger message with the charger's transactionId replaced by ours (MeterValues,
        StopTransaction), when the Leader gave the charger its own."""
        for charger_tx in rules.charger_ids_in(action, payload):
            if charger_tx not in self.to_ours:
                found = await db.run(
                    services.party_transaction_id,
                    charger_id=self.side.charger_id,
                    backoffice_id=None,
                    charger_transaction_id=charger_tx,
                )
                # None: we gave the charger this id ourselves (we led); remembered, so a
                # MeterValues every 10 s costs no query.
                self.to_ours[charger_tx] = found if found is not None else charger_tx
        return rules.rewrite_for_party(action, payload, self.to_ours.get)

    async def for_charger(self, action: str, payload: Any) -> Any:
        """One of our own commands with our transactionId replaced by the charger's."""
        for tx in rules.party_ids_in(action, payload):
            if tx not in self.to_charger:
                found = await db.run(
                    services.charger_transaction_id,
                    charger_id=self.side.charger_id,
                    backoffice_id=None,
                    transaction_id=tx,
                )
                if found is not None:
                    self.to_charger[tx] = found
        return rules.rewrite_for_charger(action, payload, self.to_charger.get)

    async def remember_ours(self, charger_tx: int, ours: int) -> None:
        if charger_tx == ours:
            return
        self.to_ours[charger_tx] = ours
        self.to_charger[ours] = charger_tx
        try:
            await db.run(
                services.transaction_map_record,
                charger_id=self.side.charger_id,
                backoffice_id=None,
                charger_transaction_id=charger_tx,
                transaction_id=ours,
            )
        except Exception:  # kept in memory for this connection; the charger's answer must not wait
            logger.exception("Could not record transaction %s = our %s", charger_tx, ours)


def _done_value(future: asyncio.Future[int | None] | None) -> int | None:
    return future.result() if future is not None and future.done() else None

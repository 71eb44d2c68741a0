"""Websocket consumers: OCPP-J 1.6 and 2.0.1 for chargers, and the 404 of any other websocket path
(the live message log for browsers is chargers.web.sockets).

The OCPP consumer is transport only: handshake (chargers.connections.handshake), framing, logging every
frame, and routing each CALL to chargers.handlers.v16 or chargers.handlers.v201, by the negotiated
subprotocol. Domain work happens in services.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.utils import timezone

from backoffice import db
from chargers.connections import handshake, process
from chargers.connections.uvicorn_protocol import PONG_EXTENSION, PongWatch
from chargers.devices.commands import DISCONNECTED, NOT_SENT, command_complete, command_group
from chargers.handlers import common, v16, v21, v201
from chargers.messagelog.log import writer
from chargers.models import Charger, Command
from chargers.ocpp import clock, protocol, protocol21, protocol201, readings
from chargers.ocpp.quirks import NONE as NO_QUIRKS
from chargers.ocpp.quirks import Quirks
from chargers.ocpp.storable import ours_may_need_cleaning
from chargers.plumbing import layer_groups, ocpp_metrics
from chargers.plumbing.background import spawn
from chargers.plumbing.failures import FailureLog
from chargers.plumbing.live import publish_connector_events
from chargers.proxy import rules as proxy_rules
from chargers.proxy import services as proxy_services
from chargers.proxy.links import Proxy, Relay
from chargers.security import credentials
from chargers.security import services as security_services
from chargers.state import charger as connection_state
from chargers.state import quirks as quirks_state

logger = logging.getLogger("chargers.ocpp")

SUBPROTOCOL = handshake.SUBPROTOCOL
CLOSE_SERVICE_RESTART = 1012  # RFC 6455: the server is restarting; reconnect
CLOSE_SUPERSEDED = 4000
# Answered only once their data is committed or journaled (docs/ocpp.md, "Durability"): their
# Logs row is made as durable before the answer goes out.
DURABLE_ACTIONS = frozenset(
    {
        "BootNotification",
        "StatusNotification",
        "StartTransaction",
        "StopTransaction",
        "MeterValues",
        "TransactionEvent",
    }
)
# The messages that carry readings (1.6 and 2.0.1), bounded at the door.
READING_ACTIONS = frozenset({"MeterValues", "StopTransaction", "TransactionEvent"})

# Open charger sockets of this process, for draining at shutdown.
_open: set[OcppConsumer] = set()
# The newest socket of each charger in this process (a newer one closes the older one directly).
_by_charger: dict[int, OcppConsumer] = {}
# Reading the channel layer again after it failed: first pause and longest (seconds).
LAYER_RETRY_FIRST_S = 0.5
LAYER_RETRY_MAX_S = 10.0
layer_failures = FailureLog(logger)


def open_by_version() -> dict[str, int]:
    """Charger sockets open in this process, by OCPP version (the metrics' gauge)."""
    counts = dict.fromkeys(ocpp_metrics.VERSIONS, 0)
    for consumer in list(_open):
        counts[consumer.version] = counts.get(consumer.version, 0) + 1
    return counts


@dataclass
class PendingCall:
    action: str
    future: asyncio.Future
    sent_at: float = 0.0  # the event loop's clock


# OCPP-J §4.1.1 allows one outstanding CALL per connection, so a CALL may wait for the one
# before it to be answered. Its timeout covers that wait too, and it is sent only with at least
# this long (half its timeout when that is shorter) left for its own answer: one sent with a
# moment left would be carried out by the charger after whoever sent it was told it went
# unanswered (and may have sent it again).
ANSWER_MIN_S = 5.0


def queue_wait_s(timeout: float) -> float:
    """How long a CALL with this timeout may wait for the one before it to be answered."""
    return timeout - min(ANSWER_MIN_S, timeout / 2)


class NotSent(Exception):
    """The CALL was never sent: its time ran out while the charger still owed the answer to an
    earlier one (its action and how long before it was sent are in the message)."""


def _redacted(action: str, payload: Any) -> Any:
    """The AuthorizationKey is a password: it never reaches the message log."""
    return credentials.redact_payload(action, payload) if isinstance(payload, dict) else payload


async def _quirks_of(charger: Charger) -> Quirks:
    """The charger's deviations as its last boot described it; none while the profiles cannot
    be read (an outage must not refuse the connection: the next boot resolves them again)."""
    try:
        found = await quirks_state.quirks_for(
            charger.vendor, charger.model, charger.firmware_version
        )
        return found if found is not None else NO_QUIRKS
    except Exception:  # noqa: BLE001
        logger.warning("Quirk profiles not resolved for %s", charger.station_id)
        return NO_QUIRKS


class OcppConsumer(AsyncWebsocketConsumer):
    conn: common.Connection | None = None
    # Framing/validation and handlers of the negotiated OCPP version (1.6 or 2.0.1).
    proto: Any = protocol
    handler: Any = v16
    version = "1.6"
    busy = False
    draining = False
    closing = False
    closed = False  # our close (1012) is done
    superseded = False  # a newer connection of this station id took over
    layer_task: asyncio.Task | None = None
    proxy: Proxy | None = None  # upstream backoffices (chargers.proxy), only when configured
    pong_watch: PongWatch | None = None  # its pongs, when the server pings (uvicorn_protocol)

    async def __call__(
        self,
        scope: dict,
        receive: Callable[[], Awaitable[dict]],
        send: Callable[[dict], Awaitable[None]],
    ) -> None:
        # Channels' await_many_dispatch wraps every frame in a new task plus an asyncio.wait()
        # over the websocket and the channel layer (py-spy: ~20 % of the server's time at 1,000
        # chargers). Read the socket in this coroutine and the channel layer in a side task,
        # started only once the handshake is accepted (a refused one costs no channel).
        self.scope = scope
        self.base_send = send
        try:
            while True:
                message = await receive()
                if self.closing and message["type"] == "websocket.receive":
                    # Arrived after our close: it cannot be answered, so it is not handled either;
                    # the charger sends it again once it has reconnected (nothing stored twice).
                    continue
                self.busy = True
                try:
                    if message["type"] == "websocket.receive":
                        # Straight to the frame: every await below is resumed through each
                        # coroutine above it, so two levels fewer on each of a frame's waits.
                        await self.receive(message.get("text"), message.get("bytes"))
                    else:
                        await self.dispatch(message)
                finally:
                    self.busy = False
                if self.draining:
                    self.closing = True  # answered; drain() closes it with the others
        except StopConsumer:
            pass
        finally:
            _open.discard(self)
            if self.layer_task is not None:
                self.layer_task.cancel()
                try:
                    await self.layer_task
                except (asyncio.CancelledError, StopConsumer):
                    pass

    async def _layer_loop(self) -> None:
        pause = LAYER_RETRY_FIRST_S
        while True:
            try:
                message = await self.channel_receive()
            except Exception as exc:  # noqa: BLE001 - the layer (Redis) is away: wait, read again
                # Commands wait until it is back (their senders time out and say so); the
                # charger's own frames never depend on it. The group is joined again by
                # rejoin_command_groups within a minute, in case the restart lost it.
                layer_failures.failed(
                    "channel layer unavailable",
                    "Reading the channel layer failed (%s); commands to chargers wait until it is back",
                    exc,
                    exc=exc,
                )
                await asyncio.sleep(pause * random.uniform(0.5, 1.5))
                pause = min(2 * pause, LAYER_RETRY_MAX_S)
                continue
            pause = LAYER_RETRY_FIRST_S
            try:
                await self.dispatch(message)
            except StopConsumer:
                raise
            except Exception:
                logger.exception("Handling %s failed", message.get("type"))

    async def dispatch(self, message: dict) -> None:
        # Channels' dispatch hops to the single thread-sensitive thread for
        # close_old_connections() before every frame: that serialises all chargers of the
        # process on one thread and deadlocks behind any blocked sync caller. Our ORM work runs
        # in backoffice.db's pool, which manages its own connections, so skip the hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict) -> None:
        # Channels' version ends with close_old_connections() on its one thread-sensitive thread:
        # a hop per socket, all in a row, and 10,000 of them when a deploy stops the process
        # (py-spy of a SIGTERM). The same reason as `dispatch`: nothing to close there. This
        # consumer keeps no groups in `self.groups` (`disconnect` leaves its command group).
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def websocket_connect(self, message: dict) -> None:
        station_id = self.scope["url_route"]["kwargs"]["station_id"]
        try:
            charger = await handshake.admit(self.scope, station_id)
        except handshake.Refused as refusal:
            if refusal.complete_then_close:
                await self.accept()  # no Sec-WebSocket-Protocol in the answer
                await self.close(code=1002)
                raise StopConsumer() from None
            await self._refuse(refusal.status, refusal.reason, refusal.headers)
        connection_id = uuid.uuid4().hex
        subprotocol = handshake.negotiate(self.scope.get("subprotocols", []))
        assert subprotocol is not None  # admit() refused a charger offering none of ours
        version = handshake.SUBPROTOCOLS[subprotocol]
        if version == "2.0.1":
            self.proto, self.handler = protocol201, v201
        elif version == "2.1":  # served by the 2.0.1 handlers through a mapping layer
            self.proto, self.handler = protocol21, v21
        self.conn = self.handler.Connection(
            charger_id=charger.pk,
            station_id=station_id,
            connection_id=connection_id,
            registration_status=charger.registration_status,
        )
        # Its known deviations, once for the socket (docs/quirks.md): no query while fresh.
        self.conn.quirks = await _quirks_of(charger)
        self.charger_id, self.station_id, self.subprotocol, self.version = (
            charger.pk,
            station_id,
            subprotocol,
            version,
        )
        self.pending: dict[str, PendingCall] = {}
        self.call_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.layer_task = asyncio.create_task(self._layer_loop())
        # A newer connection for the same charger replaces an older one, wherever it is: in this
        # process directly; in another one through the channel layer, and only when the database
        # says a socket holds this id (after a restart none does: no Redis round trip per charger).
        local = _by_charger.get(charger.pk)
        _by_charger[charger.pk] = self
        if local is not None:
            # Evicted at once; its close runs on its own (a half-open socket's close waits ~20 s
            # for an echo that never comes, and this handshake must not wait for it).
            await local.cp_superseded({"connection_id": connection_id})
        if charger.connection_id or local is not None:
            # Another socket holds this id (a reconnect, or two clients fighting over it).
            await db.run(
                security_services.charger_note_replacement,
                charger_id=charger.pk,
                station_id=station_id,
            )
        await self._join_layer(
            charger.pk, connection_id, tell_older=bool(charger.connection_id) and local is None
        )
        # The version in use is stored with the connection (one statement for the batch).
        await connection_state.connected(
            charger_id=charger.pk,
            connection_id=connection_id,
            process_key=process.KEY,
            ocpp_version=version if charger.ocpp_version != version else "",
        )
        try:
            await self.accept(subprotocol)
        except RuntimeError:
            # The handshake already failed under us (the client gave up, or the server is
            # stopping): nothing to accept; the disconnect clears the state recorded above.
            logger.info("Charger %s left before its handshake completed", station_id)
            await self.disconnect(1006)
            raise StopConsumer() from None
        _open.add(self)
        watch = self.scope.get("extensions", {}).get(PONG_EXTENSION)
        if watch is not None:
            self.pong_watch = watch
            watch.on_pong = self._pong
        logger.info("Charger %s connected", station_id)
        if charger.proxied:
            await self.cp_proxy_reload({})

    async def _join_layer(self, charger_id: int, connection_id: str, *, tell_older: bool) -> None:
        """Tell an older socket of this charger in another process to go, and join the command
        group. Without the channel layer (Redis restarting) the charger is still admitted: its
        frames never need the layer, commands reach it once rejoin_command_groups has joined it
        again, and an older socket elsewhere is closed by the charger or the ping timeout."""
        try:
            if tell_older:
                await self.channel_layer.group_send(
                    command_group(charger_id),
                    {"type": "cp.superseded", "connection_id": connection_id},
                )
            await layer_groups.group_add(command_group(charger_id), self.channel_name)
        except Exception as exc:  # noqa: BLE001 - any layer failure: admitted all the same
            layer_failures.failed(
                "channel layer unavailable",
                "A charger was admitted without the channel layer (%s); commands reach it once "
                "the layer is back",
                exc,
                exc=exc,
            )

    async def _refuse(self, status: int, reason: str, headers: list | None = None) -> NoReturn:
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self.base_send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
                }
            )
            await self.base_send({"type": "websocket.http.response.body", "body": reason.encode()})
        else:
            await self.close()  # servers without the denial extension answer 403
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        _open.discard(self)
        if self.conn is None:
            return
        if _by_charger.get(self.conn.charger_id) is self:
            del _by_charger[self.conn.charger_id]
        # Command tasks are not cancelled: one whose answer already arrived records it; the
        # others fail their wait at once ("disconnected") and record that.
        for pending in self.pending.values():
            if not pending.future.done():
                pending.future.set_exception(ConnectionError("charger disconnected"))
        # A stopping process skips both: its channels die with it (thousands of group discards at
        # once only exhausted Redis connections), and it marks all its connections closed in one
        # statement (10,000 single updates made a SIGTERM take ~50 s).
        if not self.draining:
            try:
                await layer_groups.group_discard(
                    command_group(self.conn.charger_id), self.channel_name
                )
            except Exception as exc:
                logger.warning(
                    "Could not leave the command group of %s: %s", self.conn.station_id, exc
                )
            try:
                await connection_state.disconnected(
                    charger_id=self.conn.charger_id, connection_id=self.conn.connection_id
                )
            except Exception as exc:  # the process heartbeat clears it later
                logger.warning(
                    "Could not record that %s disconnected: %s", self.conn.station_id, exc
                )
        if self.proxy is not None:
            proxy, self.proxy = self.proxy, None
            await (
                proxy.close()
            )  # each upstream sees the charger leave; unsent transaction messages stay queued
        if self.pong_watch is not None:
            self.pong_watch.on_pong = None
        if not self.superseded:  # the newer socket's state is the charger's now
            writer.forget(self.conn.charger_id)
        logger.info("Charger %s disconnected (%s)", self.conn.station_id, code)

    def _pong(self) -> None:
        """The charger answered a websocket ping. One that sent no frame for a ping interval is
        heard from by its pong (OCPP-J 1.6 §5.3: pings stand in for most Heartbeats); a frame in
        between already said so, and the pong writes nothing."""
        conn, watch = self.conn, self.pong_watch
        if conn is None or watch is None or self.closing:
            return
        now = timezone.now()
        if conn.received_at is None or (now - conn.received_at).total_seconds() >= watch.interval:
            writer.heard(conn.charger_id)

    # -- frames from the charger -------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        conn = self.conn
        assert conn is not None  # set at the handshake, before the first frame
        if self.closing:
            # Read after we started closing: neither stored nor answered, so the charger sends
            # it again after reconnecting (it was never acknowledged).
            return
        if text_data is None:
            await self.close(code=1003)  # OCPP-J uses text frames only
            return
        conn.received_at = now = timezone.now()
        writer.touch(conn.charger_id, now=now)
        try:
            frame = self.proto.parse_frame(text_data)
        except protocol.FrameError as exc:
            ocpp_metrics.message("in", self.version, None, "")
            conn.received_clean = not exc.suspect
            kept = exc.payload if isinstance(exc.payload, list) else None
            await writer.add_message(
                charger_id=conn.charger_id,
                direction="in",
                message_type=None,
                unique_id=exc.unique_id,
                action="",
                payload=kept,
                raw="" if kept is not None else text_data,
                text=text_data,
                timestamp=conn.received_at,
                text_suspect=exc.suspect,
            )
            await self._send_error(exc.unique_id, exc.code, exc.description, "")
            return

        conn.received_clean = not frame.suspect
        if frame.message_type == protocol.CALL:
            await self._handle_call(frame, text_data)
            return
        if frame.message_type in (protocol.SEND, protocol.CALLRESULTERROR):
            await self._unanswered(frame, text_data)
            return

        pending = self.pending.pop(frame.unique_id, None)
        ocpp_metrics.message(
            "in", self.version, frame.message_type, pending.action if pending else ""
        )
        payload, text, suspect = frame.payload, text_data, frame.suspect
        if pending is not None and pending.action == "GetConfiguration":
            redacted = credentials.redact_response(payload)  # a charger that reports its key back
            if redacted is not payload:
                payload, text, suspect = (
                    redacted,
                    json.dumps(redacted),
                    None,
                )  # judged on the new text
        await writer.add_message(
            charger_id=conn.charger_id,
            direction="in",
            message_type=frame.message_type,
            unique_id=frame.unique_id,
            action=pending.action if pending else "",
            payload=payload,
            text=text,
            timestamp=conn.received_at,
            text_suspect=suspect,
        )
        if pending is None:
            logger.info("%s answered unknown or late call %s", conn.station_id, frame.unique_id)
            return
        if frame.message_type == protocol.CALLRESULT and self.proto is protocol21:
            await self._check_result(pending.action, frame)
        if not pending.future.done():
            pending.future.set_result(frame)

    async def _unanswered(self, frame: protocol.Frame, text: str) -> None:
        """OCPP-J 2.1: a SEND (never answered, not even with an error) or a CALLRESULTERROR (the
        charger could not process one of our answers): logged, with what was wrong, and nothing
        else; we open no periodic event stream, so a SEND has nothing to go to."""
        conn = self.conn
        assert conn is not None
        ocpp_metrics.message("in", self.version, frame.message_type, frame.action)
        violation = ""
        if frame.message_type == protocol.SEND:
            try:
                protocol21.check_send(frame.action, frame.payload)
            except protocol.OcppError as exc:
                violation = f"{exc.code}: {exc.description}"
        else:
            logger.warning(
                "%s could not process our answer %s: %s %s",
                conn.station_id,
                frame.unique_id,
                frame.error_code,
                frame.error_description[:200],
            )
        await writer.add_message(
            charger_id=conn.charger_id,
            direction="in",
            message_type=frame.message_type,
            unique_id=frame.unique_id,
            action=frame.action,
            payload=frame.payload,
            text=text,
            violation=violation,
            timestamp=conn.received_at,
            text_suspect=frame.suspect,
        )

    async def _check_result(self, action: str, frame: protocol.Frame) -> None:
        """A 2.1 charger's CALLRESULT that breaks its schema is answered with a CALLRESULTERROR
        (OCPP-J 2.1); it is still the command's answer, kept as received (as for 2.0.1)."""
        assert self.conn is not None
        try:
            protocol21.check_result(action, frame.payload)
        except protocol.OcppError as exc:
            text = protocol21.call_result_error(
                frame.unique_id, exc.code, exc.description, exc.details
            )
            await self.send(text_data=text)
            ocpp_metrics.message("out", self.version, protocol.CALLRESULTERROR, action)
            await writer.add_message(
                charger_id=self.conn.charger_id,
                direction="out",
                message_type=protocol.CALLRESULTERROR,
                unique_id=frame.unique_id,
                action=action,
                text=text,
                text_suspect=ours_may_need_cleaning(text),
                payload={
                    "errorCode": exc.code,
                    "errorDescription": exc.description[:255],
                    "errorDetails": exc.details,
                },
            )

    async def _handle_call(self, frame: protocol.Frame, text: str) -> None:
        conn = self.conn
        assert conn is not None
        received_at, text_suspect = conn.received_at, not conn.received_clean
        error: protocol.OcppError | None = None
        response: dict | None = None
        relay: Relay | None = None
        payload = frame.payload
        ocpp_metrics.message("in", self.version, protocol.CALL, frame.action)
        started = time.perf_counter()
        early = self._log_beside_data(frame, text, received_at, text_suspect)
        try:
            self.proto.check_action(frame.action)
            if self.proxy is not None and self.proxy.active:
                relay, payload = await self._relay(frame)
            response = await self.handler.handle_call(conn, frame.action, payload, frame.unique_id)
        except protocol.OcppError as exc:
            error = exc
        except Exception:
            logger.exception("%s %s from %s failed", frame.action, frame.unique_id, conn.station_id)
            error = protocol.OcppError("InternalError", "The central system failed to process it")
        ocpp_metrics.handled(self.version, frame.action, time.perf_counter() - started)
        if conn.violation and clock.split_notes(conn.violation)[0]:  # a wrong clock is no violation
            try:
                await db.run(security_services.charger_count_violation, charger_id=conn.charger_id)
            except Exception as exc:  # counting must never cost the message
                logger.warning("Could not count a schema violation of %s: %s", conn.station_id, exc)
        if frame.action in READING_ACTIONS and (bad := readings.implausible_in(frame.payload)):
            # Stored without a number (chargers.ocpp.readings), answered as usual.
            try:
                await db.run(
                    security_services.charger_note_implausible,
                    charger_id=conn.charger_id,
                    readings=bad,
                )
            except Exception as exc:  # noting must never cost the message
                logger.warning("Could not note readings of %s: %s", conn.station_id, exc)
        await self._log_call(frame, text, received_at, text_suspect, early, durable=error is None)
        if relay is not None and relay.leader is not None:
            await self._answer_as_leader(frame, relay, response, error)
        elif error is not None:
            if relay is not None:
                relay.charger_got(None)
            await self._send_error(
                frame.unique_id, error.code, error.description, frame.action, error.details
            )
        else:
            if relay is not None:
                relay.charger_got(proxy_rules.started_transaction_id(frame.action, response))
            await self._send_result(frame, response)

    def _log_beside_data(
        self, frame: protocol.Frame, text: str, received_at: Any, text_suspect: bool
    ) -> list[asyncio.Future[None] | None]:
        """For a frame whose answer waits for its data: let the handler queue the frame's Logs
        row beside that data (conn.log_alongside); the list gets the row's commit future."""
        early: list[asyncio.Future[None] | None] = []
        assert self.conn is not None
        self.conn.log_alongside = None  # never one left by a call that was cancelled
        if frame.action in DURABLE_ACTIONS:

            def log_alongside() -> None:
                if not early:  # once, whatever retries the handler makes
                    row = self._call_row(frame, text, received_at, text_suspect)
                    early.append(writer.add_message_now(**row))

            self.conn.log_alongside = log_alongside
        return early

    async def _log_call(
        self,
        frame: protocol.Frame,
        text: str,
        received_at: Any,
        text_suspect: bool,
        early: list[asyncio.Future[None] | None],
        *,
        durable: bool,
    ) -> None:
        conn = self.conn
        assert conn is not None
        # The CALL is logged once handled, with any schema violation that was accepted (and the
        # payload's JSON when the handler wrote it already, for this very payload), unless the
        # handler queued it beside its data (conn.log_alongside): then its commit is awaited.
        dumped, conn.dumped = conn.dumped, None
        conn.log_alongside = None
        try:
            if early and early[0] is not None:
                await early[0]
            else:
                row = self._call_row(frame, text, received_at, text_suspect)
                if dumped is not None and dumped[0] is frame.payload:
                    row["payload_json"] = dumped[1]
                await writer.add_message(
                    **row,
                    # The Logs row of an acknowledged transaction message survives a kill -9 as
                    # its data does: committed (or journaled) before the answer goes out.
                    durable=durable and frame.action in DURABLE_ACTIONS,
                )
        except Exception:  # its data is stored: the answer still goes out (a resend duplicates)
            logger.exception("The log row of %s %s was not stored", frame.action, frame.unique_id)

    def _call_row(
        self, frame: protocol.Frame, text: str, received_at: Any, text_suspect: bool
    ) -> dict[str, Any]:
        """The Logs row of a CALL received, with any schema violation that was accepted."""
        assert self.conn is not None
        return {
            "charger_id": self.conn.charger_id,
            "direction": "in",
            "message_type": protocol.CALL,
            "unique_id": frame.unique_id,
            "action": frame.action,
            "payload": frame.payload,
            "text": text,
            "violation": self.conn.violation,
            "timestamp": received_at,
            "text_suspect": text_suspect,
            # The payload's JSON from the frame's own text: not dumped a second time.
            "payload_json": protocol.call_payload_json(frame, text),
        }

    async def _relay(self, frame: protocol.Frame) -> tuple[Relay | None, Any]:
        """Every upstream gets the frame as sent; we handle it in our own transaction numbering.
        The proxy failing (e.g. the database is down) never costs our own handling of the frame."""
        assert self.proxy is not None and self.conn is not None
        try:
            relay = await self.proxy.relay(frame.action, frame.payload, frame.unique_id)
        except Exception:
            logger.exception(
                "%s: could not relay %s to its upstream backoffices",
                self.conn.station_id,
                frame.action,
            )
            return None, frame.payload
        try:
            return relay, await self.proxy.for_us(frame.action, frame.payload)
        except Exception:
            logger.exception(
                "%s: could not map the transactionId of %s", self.conn.station_id, frame.action
            )
            return relay, frame.payload

    async def _answer_as_leader(
        self,
        frame: protocol.Frame,
        relay: Relay,
        response: dict | None,
        error: protocol.OcppError | None,
    ) -> None:
        """An upstream leads: the charger gets its answer; ours only when it is unreachable or too
        slow (docs/proxy.md). Authorization decisions record both verdicts."""
        conn, leader = self.conn, relay.leader
        assert conn is not None and leader is not None and self.proxy is not None
        answer = await relay.leader_answer()
        ours_tx = proxy_rules.started_transaction_id(frame.action, response)
        if answer is None:
            logger.warning(
                "%s: Leader %s did not answer %s; this system answered",
                conn.station_id,
                leader.name,
                frame.action,
            )
            relay.charger_got(ours_tx)
            if error is not None:
                await self._send_error(
                    frame.unique_id, error.code, error.description, frame.action, error.details
                )
            else:
                await self._send_result(frame, response)
            await self._note_leader(frame, leader.name, "", False, ours_tx)
            return
        if answer.message_type != protocol.CALLRESULT:
            relay.charger_got(None)
            await self._send_error(
                frame.unique_id, answer.error_code, answer.error_description, frame.action
            )
            return
        charger_tx = proxy_rules.started_transaction_id(frame.action, answer.payload)
        if frame.action == "StartTransaction":
            charger_tx = charger_tx if charger_tx is not None else ours_tx
            relay.charger_got(charger_tx)
            if charger_tx is not None and ours_tx is not None:
                await self.proxy.remember_ours(charger_tx, ours_tx)
        await self._send_result(frame, answer.payload)
        await self._note_leader(
            frame,
            leader.name,
            proxy_rules.id_token_status(frame.action, answer.payload),
            True,
            charger_tx,
        )

    async def _note_leader(
        self, frame: protocol.Frame, name: str, status: str, answered: bool, charger_tx: int | None
    ) -> None:
        if frame.action not in ("Authorize", "StartTransaction"):
            return
        assert self.conn is not None
        try:
            await db.run(
                proxy_services.decision_note_leader,
                station_id=self.conn.station_id,
                unique_id=frame.unique_id,
                leader_name=name,
                leader_status=status,
                leader_answered=answered,
                charger_id=self.conn.charger_id,
                charger_transaction_id=charger_tx,
            )
        except Exception:  # the charger's answer must not wait on this note
            logger.exception("Could not record the Leader's verdict for %s", frame.unique_id)

    async def _send_text(self, text: str) -> None:
        # Channels' send(text_data=) wraps this in two more coroutines, once per answer.
        await self.base_send({"type": "websocket.send", "text": text})

    async def _send_result(self, frame: protocol.Frame, response: dict | None) -> None:
        conn = self.conn
        assert conn is not None
        reply, payload_json = self.proto.call_result_json(frame.unique_id, response)
        await self._send_text(reply)
        ocpp_metrics.message("out", self.version, protocol.CALLRESULT, frame.action)
        await writer.add_message(
            charger_id=conn.charger_id,
            direction="out",
            message_type=protocol.CALLRESULT,
            unique_id=frame.unique_id,
            action=frame.action,
            payload=response,
            text=reply,
            text_suspect=ours_may_need_cleaning(reply),
            payload_json=payload_json,
        )
        if conn.events:
            events, conn.events = conn.events, []
            # The writer knows (batched, every 2 s) which chargers a browser follows, so the
            # common case, nobody watching, costs no cache round trip per frame.
            if writer.connector_watched(conn.charger_id) is not False:
                await publish_connector_events(conn.charger_id, events)

    async def _send_error(
        self, unique_id: str, code: str, description: str, action: str, details: dict | None = None
    ) -> None:
        assert self.conn is not None
        text = self.proto.call_error(unique_id, code, description, details)
        await self._send_text(text)
        ocpp_metrics.message("out", self.version, protocol.CALLERROR, action)
        await writer.add_message(
            charger_id=self.conn.charger_id,
            direction="out",
            message_type=protocol.CALLERROR,
            unique_id=unique_id,
            action=action,
            text=text,
            text_suspect=ours_may_need_cleaning(text),
            payload={
                "errorCode": code,
                "errorDescription": description[:255],
                "errorDetails": details or {},
            },
        )

    # -- shutdown ------------------------------------------------------------------------------

    async def _close_for_restart(self) -> None:
        self.closing = True
        try:
            await self.close(code=CLOSE_SERVICE_RESTART)
        except Exception:  # the socket may already be gone
            pass
        finally:
            self.closed = True

    # -- commands from the central system (channel layer) ---------------------------------------

    async def cp_call(self, event: dict) -> None:
        if self.superseded:  # sent before we left the group: the newer socket has it too
            return
        # Never await the charger's answer here: this handler must return so the consumer
        # can receive that answer. Run the call as a task.
        task = asyncio.create_task(self._run_command(event))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _call(
        self, unique_id: str, action: str, payload: dict, timeout: float
    ) -> protocol.Frame | None:
        """Send one CALL to the charger and return its answer (None: no answer within `timeout`,
        counted from now: the wait for an earlier CALL's answer included). Raises NotSent when
        the earlier CALL held the connection too long, ConnectionError when the charger leaves
        first."""
        assert self.conn is not None  # commands reach a socket once it is accepted
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._call_turn(queue_wait_s(timeout))
        try:
            future = loop.create_future()
            self.pending[unique_id] = PendingCall(action, future, loop.time())
            try:
                await self.send(text_data=self.proto.call(unique_id, action, payload))
                ocpp_metrics.message("out", self.version, protocol.CALL, action)
                await writer.add_message(
                    charger_id=self.conn.charger_id,
                    direction="out",
                    message_type=protocol.CALL,
                    unique_id=unique_id,
                    action=action,
                    payload=_redacted(action, payload),
                )
                return await asyncio.wait_for(future, deadline - loop.time())
            except TimeoutError:
                return None
            finally:
                self.pending.pop(unique_id, None)
        finally:
            self.call_lock.release()

    async def _call_turn(self, wait: float) -> None:
        """Take the connection's one CALL (ours and upstreams' through the proxy), waiting at
        most `wait` seconds for the one before it to be answered; NotSent if it was not."""
        try:
            async with asyncio.timeout(wait):  # a free lock is taken without yielding
                await self.call_lock.acquire()
        except TimeoutError:
            earlier = next(iter(self.pending.values()), None)
            if earlier is None:  # answered at the last moment; the next in line has it now
                raise NotSent(f"{NOT_SENT}.") from None
            age = asyncio.get_running_loop().time() - earlier.sent_at
            raise NotSent(f"{NOT_SENT} ({earlier.action}, sent {age:.0f} s before).") from None

    async def call_charger(
        self, action: str, payload: dict, timeout: float
    ) -> protocol.Frame | None:
        """A CALL from an upstream backoffice (chargers.proxy); None if it got no answer."""
        try:
            return await self._call(uuid.uuid4().hex, action, payload, timeout)
        except (NotSent, ConnectionError, RuntimeError, OSError):
            return None

    async def cp_proxy_reload(self, event: dict) -> None:
        """The charger's upstream backoffices changed (or it just connected with some)."""
        if self.conn is None or self.closing:
            return
        if self.proxy is None:
            self.proxy = Proxy(self, self.version)
        try:
            await self.proxy.reload()
        except Exception:
            logger.exception("Could not load the upstream backoffices of %s", self.conn.station_id)

    async def _run_command(self, event: dict) -> None:
        action, payload, timeout = (
            event["action"],
            event["payload"],
            float(event.get("timeout") or 30),
        )
        status, response, error = Command.Status.TIMEOUT, None, ""
        unique_id = uuid.uuid4().hex
        try:
            if self.proxy is not None and self.proxy.active:
                payload = await self.proxy.for_charger(
                    action, payload
                )  # our transactionId -> the charger's
            frame = await self._call(unique_id, action, payload, timeout)
            if frame is None:
                error = f"The charger did not answer within {timeout:g} s."
            elif frame.message_type == protocol.CALLRESULT:
                status, response = Command.Status.ANSWERED, frame.payload
            else:
                status = Command.Status.ERROR
                response = {
                    "errorCode": frame.error_code,
                    "errorDescription": frame.error_description,
                }
                error = f"{frame.error_code}: {frame.error_description}"
        except NotSent as exc:
            error, unique_id = str(exc), ""  # TIMEOUT: nothing reached the charger
        except (ConnectionError, asyncio.CancelledError, RuntimeError, OSError):
            # (Sending on a socket that just closed raises RuntimeError/OSError in the server.)
            error = DISCONNECTED
        finally:
            await db.run(
                command_complete,
                command_id=event["command_id"],
                status=status,
                response=response,
                error=error,
                unique_id=unique_id,
            )
            if event.get("reply_channel"):
                try:
                    await self.channel_layer.send(
                        event["reply_channel"],
                        {"type": "cp.reply", "status": status, "response": response},
                    )
                except Exception as exc:  # noqa: BLE001 - the sender reads the stored outcome
                    layer_failures.failed(
                        "channel layer unavailable",
                        "A command's answer could not be passed on (%s); it is stored",
                        exc,
                        exc=exc,
                    )

    async def cp_superseded(self, event: dict) -> None:
        """A newer connection of this station id was accepted: this one is evicted now.

        It stops reading frames, leaves the command group (commands go to the new socket only)
        and fails its pending CALLs at once; the close itself runs in the background. After a
        silent network drop the old socket is half-open: its close waits for a close frame
        that never comes (websockets' close timeout, ~20 s), and nothing may wait for that."""
        if not self.conn or event["connection_id"] == self.conn.connection_id or self.closing:
            return
        logger.info(
            "Charger %s reconnected elsewhere; closing the older socket", self.conn.station_id
        )
        self.closing = self.superseded = True
        for pending in self.pending.values():
            if not pending.future.done():
                pending.future.set_exception(ConnectionError("charger reconnected"))
        proxy, self.proxy = self.proxy, None
        spawn(self._close_superseded(proxy), f"Closing the older socket of {self.conn.station_id}")
        try:
            await layer_groups.group_discard(command_group(self.conn.charger_id), self.channel_name)
        except Exception as exc:  # its disconnect tries again
            logger.warning("Could not leave the command group of %s: %s", self.conn.station_id, exc)

    async def _close_superseded(self, proxy: Proxy | None) -> None:
        try:
            await self.close(code=CLOSE_SUPERSEDED)
        except Exception:  # already gone: nothing to close
            pass
        if proxy is not None:
            await proxy.close()  # the upstreams see this socket leave; the new one has its own


async def rejoin_command_groups() -> int:
    """Join every open socket of this process to its command group again; how many.

    Channels' layers drop a group member `group_expiry` (a day) after it joined, and a Redis
    restart drops them all: a charger connected for longer, or through the restart, got no
    command (a host's Reset, a guest's start) until it reconnected. The process calls this every
    REJOIN_EVERY_S (chargers.connections.process)."""
    members = [
        (command_group(consumer.conn.charger_id), consumer.channel_name)
        for consumer in list(_open)
        if consumer.conn is not None and not consumer.closing
    ]
    await layer_groups.group_add_all(members)
    return len(members)


async def drain(timeout_s: float = 10.0) -> int:
    """Shutdown, before the server closes sockets: let every charger's frame in progress be
    answered, then close each socket with 1012 (service restart) so chargers reconnect.
    Handshakes still being decided are refused with 503 at once (a storm's thousands would
    otherwise outlast the grace period and end in 500s)."""
    refused = handshake.stop()
    if refused:
        logger.info("Refused %d handshake(s) in progress: stopping", refused)
    handshake.failures.flush()
    consumers = list(_open)
    # No socket takes a new frame from now on (it could not be answered before the close; the
    # charger sends it again after reconnecting). Before, waiting for a moment when no socket was
    # busy took 4.6 s of a 10,000-charger shutdown: the others kept sending meter values.
    for consumer in consumers:
        consumer.draining = True
        if not consumer.busy:
            consumer.closing = True
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while any(c.busy for c in consumers) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    # Every frame in progress is answered: close them all with 1012. Not waiting for each
    # charger's close echo (5 s at 10,000 chargers): uvicorn's shutdown, which follows, ends
    # the connections, with 1012 for any whose close frame had not gone out yet.
    for consumer in consumers:
        if not consumer.closed:
            _spawn_close(consumer)
    await asyncio.sleep(0)  # the closes start writing their frames
    return len(consumers)


_closes: set[asyncio.Task] = set()


def _spawn_close(consumer: OcppConsumer) -> None:
    task = asyncio.create_task(consumer._close_for_restart())
    _closes.add(task)
    task.add_done_callback(_closes.discard)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any websocket path no route matches: 404 at the handshake, never a server error."""

    async def websocket_connect(self, message: dict) -> None:
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self.base_send(
                {
                    "type": "websocket.http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await self.base_send(
                {"type": "websocket.http.response.body", "body": b"No websocket endpoint here."}
            )
        else:
            await self.close()
        raise StopConsumer()

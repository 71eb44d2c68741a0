"""Websocket consumers: OCPP-J 1.6 for chargers, and the live message log for browsers.

The OCPP consumer is transport only: handshake checks, framing, logging every frame, and
routing each CALL to chargers.ocpp.v16. Domain work happens in services.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import uuid
from dataclasses import dataclass

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.core.cache import cache

from backoffice import db
from chargers import services
from chargers.commands import command_complete, command_group
from chargers.handshake_guard import guard
from chargers.live import publish_connector_events
from chargers.message_log import LOG_WATCH_TTL_S, log_group, log_watch_key, writer
from chargers.models import Command
from chargers.ocpp import protocol, v16

logger = logging.getLogger("chargers.ocpp")
security_log = logging.getLogger("chargers.security")

SUBPROTOCOL = "ocpp1.6"


@dataclass
class PendingCall:
    action: str
    future: asyncio.Future


def _basic_auth(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes] | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, encoded = value.partition(b" ")
            if scheme.lower() != b"basic":
                return None
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                return None
            username, sep, password = decoded.partition(b":")
            return (username, password) if sep else None
    return None


class OcppConsumer(AsyncWebsocketConsumer):
    conn: v16.Connection | None = None

    async def __call__(self, scope, receive, send) -> None:
        # Channels' await_many_dispatch wraps every frame in a new task plus an asyncio.wait()
        # over the websocket and the channel layer (py-spy: ~20 % of the server's time at 1,000
        # chargers). Read the socket in this coroutine and the channel layer in a side task.
        self.scope = scope
        self.base_send = send
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        layer_task = None
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
            layer_task = asyncio.create_task(self._layer_loop())
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            if layer_task is not None:
                layer_task.cancel()
                try:
                    await layer_task
                except (asyncio.CancelledError, StopConsumer):
                    pass

    async def _layer_loop(self) -> None:
        while True:
            message = await self.channel_receive()
            try:
                await self.dispatch(message)
            except StopConsumer:
                raise
            except Exception:
                logger.exception("Handling %s failed", message.get("type"))

    async def dispatch(self, message) -> None:
        # Channels' dispatch hops to the single thread-sensitive thread for
        # close_old_connections() before every frame: that serialises all chargers of the
        # process on one thread and deadlocks behind any blocked sync caller. Our ORM work runs
        # in backoffice.db's pool, which manages its own connections, so skip the hop.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message) -> None:
        station_id = self.scope["url_route"]["kwargs"]["station_id"]
        client = self.scope.get("client") or ("?", 0)
        if SUBPROTOCOL not in self.scope.get("subprotocols", []):
            security_log.warning("Refused %s from %s: no supported subprotocol", station_id, client[0])
            await self._refuse(400, "Offer the ocpp1.6 websocket subprotocol.")
        if guard.blocked(address=client[0], station_id=station_id):
            security_log.warning("Throttled handshake for %r from %s", station_id, client[0])
            await self._refuse(429, "Too many failed attempts; retry later.", [(b"retry-after", b"60")])
        charger = await db.run(services.charger_get_for_connection, station_id)
        if charger is None:
            guard.failed(address=client[0], station_id=station_id)
            security_log.warning("Refused unknown station %r from %s", station_id, client[0])
            await self._refuse(404, "Unknown charge point identity.")
        if charger.ocpp_password_hash:
            credentials = _basic_auth(self.scope.get("headers", []))
            ok = False
            if credentials is not None and credentials[0] == station_id.encode():
                try:
                    ok = await asyncio.to_thread(charger.check_ocpp_password, credentials[1].decode("utf-8"))
                except UnicodeDecodeError:
                    ok = False
            if not ok:
                guard.failed(address=client[0], station_id=station_id)
                security_log.warning("Refused %s from %s: wrong or missing password", station_id, client[0])
                await self._refuse(401, "Authentication required.", [(b"www-authenticate", b'Basic realm="ocpp"')])

        guard.succeeded(station_id=station_id)
        connection_id = uuid.uuid4().hex
        self.conn = v16.Connection(
            charger_id=charger.pk, station_id=station_id, connection_id=connection_id,
            registration_status=charger.registration_status,
        )
        self.pending: dict[str, PendingCall] = {}
        self.call_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        # A newer connection for the same charger replaces an older one, wherever it is.
        await self.channel_layer.group_send(
            command_group(charger.pk), {"type": "cp.superseded", "connection_id": connection_id}
        )
        await self.channel_layer.group_add(command_group(charger.pk), self.channel_name)
        await db.run(services.charger_mark_connected, charger_id=charger.pk, connection_id=connection_id)
        await self.accept(SUBPROTOCOL)
        logger.info("Charger %s connected", station_id)

    async def _refuse(self, status: int, reason: str, headers: list | None = None) -> None:
        if "websocket.http.response" in self.scope.get("extensions", {}):
            await self.base_send(
                {
                    "type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), *(headers or [])],
                }
            )
            await self.base_send({"type": "websocket.http.response.body", "body": reason.encode()})
        else:
            await self.close()  # servers without the denial extension answer 403
        raise StopConsumer()

    async def disconnect(self, code) -> None:
        if self.conn is None:
            return
        for task in list(self.tasks):
            task.cancel()
        for pending in self.pending.values():
            if not pending.future.done():
                pending.future.set_exception(ConnectionError("charger disconnected"))
        await self.channel_layer.group_discard(command_group(self.conn.charger_id), self.channel_name)
        await db.run(
            services.charger_mark_disconnected, charger_id=self.conn.charger_id,
            connection_id=self.conn.connection_id,
        )
        writer.forget(self.conn.charger_id)
        await writer.flush()
        logger.info("Charger %s disconnected (%s)", self.conn.station_id, code)

    # -- frames from the charger -------------------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None) -> None:
        conn = self.conn
        if text_data is None:
            await self.close(code=1003)  # OCPP-J uses text frames only
            return
        writer.touch(conn.charger_id)
        try:
            frame = protocol.parse_frame(text_data)
        except protocol.FrameError as exc:
            payload = exc.payload if isinstance(exc.payload, list) else None
            await writer.add_message(
                charger_id=conn.charger_id, direction="in", message_type=None, unique_id=exc.unique_id,
                action="", payload=payload, raw="" if payload is not None else text_data[:10000],
            )
            await self._send_error(exc.unique_id, exc.code, exc.description, "")
            return

        if frame.message_type == protocol.CALL:
            await writer.add_message(
                charger_id=conn.charger_id, direction="in", message_type=protocol.CALL,
                unique_id=frame.unique_id, action=frame.action, payload=frame.payload,
            )
            await self._handle_call(frame)
            return

        pending = self.pending.pop(frame.unique_id, None)
        await writer.add_message(
            charger_id=conn.charger_id, direction="in", message_type=frame.message_type,
            unique_id=frame.unique_id, action=pending.action if pending else "", payload=frame.payload,
        )
        if pending is None:
            logger.info("%s answered unknown or late call %s", conn.station_id, frame.unique_id)
        elif not pending.future.done():
            pending.future.set_result(frame)

    async def _handle_call(self, frame: protocol.Frame) -> None:
        conn = self.conn
        try:
            protocol.check_call(frame.action, frame.payload)
            response = await v16.handle_call(conn, frame.action, frame.payload, frame.unique_id)
        except protocol.OcppError as exc:
            await self._send_error(frame.unique_id, exc.code, exc.description, frame.action, exc.details)
            return
        except Exception:
            logger.exception("%s %s from %s failed", frame.action, frame.unique_id, conn.station_id)
            await self._send_error(frame.unique_id, "InternalError", "The central system failed to process it", frame.action)
            return
        await self.send(text_data=protocol.call_result(frame.unique_id, response))
        await writer.add_message(
            charger_id=conn.charger_id, direction="out", message_type=protocol.CALLRESULT,
            unique_id=frame.unique_id, action=frame.action, payload=response,
        )
        if conn.events:
            events, conn.events = conn.events, []
            # The writer knows (batched, every 2 s) which chargers a browser follows, so the
            # common case, nobody watching, costs no cache round trip per frame.
            if writer.connector_watched(conn.charger_id) is not False:
                await publish_connector_events(conn.charger_id, events)

    async def _send_error(self, unique_id: str, code: str, description: str, action: str, details=None) -> None:
        await self.send(text_data=protocol.call_error(unique_id, code, description, details))
        await writer.add_message(
            charger_id=self.conn.charger_id, direction="out", message_type=protocol.CALLERROR,
            unique_id=unique_id, action=action,
            payload={"errorCode": code, "errorDescription": description[:255], "errorDetails": details or {}},
        )

    # -- commands from the central system (channel layer) ---------------------------------------

    async def cp_call(self, event: dict) -> None:
        # Never await the charger's answer here: this handler must return so the consumer
        # can receive that answer. Run the call as a task.
        task = asyncio.create_task(self._run_command(event))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run_command(self, event: dict) -> None:
        conn = self.conn
        action, payload, timeout = event["action"], event["payload"], float(event.get("timeout") or 30)
        status, response, error = Command.Status.TIMEOUT, None, ""
        unique_id = uuid.uuid4().hex
        try:
            # OCPP-J §4.1.1: one outstanding CALL per connection.
            async with self.call_lock:
                future = asyncio.get_running_loop().create_future()
                self.pending[unique_id] = PendingCall(action, future)
                await self.send(text_data=protocol.call(unique_id, action, payload))
                await writer.add_message(
                    charger_id=conn.charger_id, direction="out", message_type=protocol.CALL,
                    unique_id=unique_id, action=action, payload=payload,
                )
                try:
                    frame = await asyncio.wait_for(future, timeout)
                except TimeoutError:
                    error = f"The charger did not answer within {timeout:g} s."
                finally:
                    self.pending.pop(unique_id, None)
                if error == "":
                    if frame.message_type == protocol.CALLRESULT:
                        status, response = Command.Status.ANSWERED, frame.payload
                    else:
                        status = Command.Status.ERROR
                        response = {"errorCode": frame.error_code, "errorDescription": frame.error_description}
                        error = f"{frame.error_code}: {frame.error_description}"
        except (ConnectionError, asyncio.CancelledError):
            error = "The charger disconnected before answering."
        finally:
            await db.run(
                command_complete, command_id=event["command_id"], status=status, response=response,
                error=error, unique_id=unique_id,
            )
            if event.get("reply_channel"):
                await self.channel_layer.send(
                    event["reply_channel"], {"type": "cp.reply", "status": status, "response": response}
                )

    async def cp_superseded(self, event: dict) -> None:
        if self.conn and event["connection_id"] != self.conn.connection_id:
            logger.warning("Charger %s reconnected elsewhere; closing the older socket", self.conn.station_id)
            await self.close(code=4000)


class ChargerLogConsumer(AsyncWebsocketConsumer):
    """Pushes new OCPP log rows of one charger to a host's open Logs tab."""

    async def connect(self) -> None:
        from chargers.selectors import charger_for_user

        user = self.scope.get("user")
        station_id = self.scope["url_route"]["kwargs"]["station_id"]
        charger = None
        if user is not None and user.is_authenticated:
            charger = await db.run(charger_for_user, user, station_id)
        if charger is None:
            await self.close()
            return
        self.charger_id = charger.pk
        await self.channel_layer.group_add(log_group(charger.pk), self.channel_name)
        await self.accept()
        self.keepalive = asyncio.create_task(self._keep_watching())

    async def _keep_watching(self) -> None:
        while True:
            await db.run(cache.set, log_watch_key(self.charger_id), 1, LOG_WATCH_TTL_S)
            await asyncio.sleep(LOG_WATCH_TTL_S / 3)

    async def disconnect(self, code) -> None:
        if hasattr(self, "charger_id"):
            self.keepalive.cancel()
            await self.channel_layer.group_discard(log_group(self.charger_id), self.channel_name)

    async def log_rows(self, event: dict) -> None:
        await self.send(text_data=json.dumps({"rows": event["rows"]}))

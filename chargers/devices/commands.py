"""Send a CALL to a charger connected to any process, through the channel layer, and await it.

Each connected charger's consumer joins the group `cp.<charger pk>`. The caller records a
Command row (so a lost message still shows up as a timeout to the operator), sends the CALL
to the group with a private reply channel, and waits for the answer with a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from backoffice import db
from chargers.devices import device_model, variables
from chargers.models import Charger, Command
from chargers.ocpp import protocol21, protocol201, v201_commands
from chargers.ocpp.protocol import OcppError, check_outgoing
from chargers.security.credentials import redact_payload, redact_response
from chargers.security.services import command_security_complete, command_security_prepare

logger = logging.getLogger(__name__)


class ChargerOffline(Exception):
    pass


# The error of a CALL whose charger's socket closed before the answer (not the charger's refusal).
DISCONNECTED = "The charger disconnected before answering."
# The start of the error of a command that never reached the charger: its time ran out while the
# charger still owed the answer to an earlier request (one outstanding CALL per connection).
NOT_SENT = "Not sent: the charger had not yet answered an earlier request"


# The error of a command that could not be handed to the process holding the charger's socket:
# the channel layer (Redis) was unreachable, so nothing reached the charger.
UNREACHABLE = (
    "Not sent: the charger's connection could not be reached (the message service is unavailable)."
)
REPLY_POLL_S = 0.5  # how often the stored outcome is read when the reply cannot come
# The error of a command nobody reported on: no process held the charger's connection (its
# socket was gone, or the process holding it never got the CALL).
NO_OWNER = "No process holding this charger's connection answered."
# After the charger's time is up on our clock, how long the process holding its connection may
# take to report (its clock started a hop later; then one database write and a hop back) while
# it still holds the connection. A charger whose connection is gone is not waited for at all.
OWNER_REPORT_MAX_S = 10.0


class CommandTimeout(Exception):
    def __init__(self, command: Command):
        super().__init__(f"{command.action} to {command.charger_id} got no answer in time")
        self.command = command

    @property
    def disconnected(self) -> bool:
        return self.command.error == DISCONNECTED

    @property
    def not_sent(self) -> bool:
        """Never sent: the charger was still to answer an earlier request (try again later)."""
        return self.command.error.startswith(NOT_SENT)

    @property
    def unreachable(self) -> bool:
        """Never sent: the message service between the processes was unavailable."""
        return self.command.error == UNREACHABLE

    def told(self, label: str) -> str:
        """What a person who asked for `label` is told."""
        if self.unreachable:
            return (
                f"{label} was not sent: the charger's connection could not be reached just now "
                "(a service of ours is restarting). Try again in a minute."
            )
        if self.not_sent:
            return (
                f"{label} was not sent: the charger had not yet answered an earlier request. "
                "Try again in a minute."
            )
        if self.disconnected:
            # It may have reached the charger and been done: sending it again could do it twice.
            return (
                f"{label} was sent, but the charger's connection closed before it answered, so "
                "whether it was done is not known. Check the charger's status and its Logs "
                "before sending it again."
            )
        return f"{label} was sent, but the charger did not answer in time."


class AlreadyPending(Exception):
    """The same request (`ONCE_ACTIONS`, same connector or transaction) to this charger is still
    waiting for the charger's answer: a person pressed it twice (two tabs, a double submit, two
    agents). The second is not sent; `command` is the first."""

    def __init__(self, command: Command):
        super().__init__(
            f"{command.action} to {command.charger_id} is still waiting for its answer"
        )
        self.command = command

    def told(self, label: str) -> str:
        """What a person who asked for `label` again is told."""
        return (
            f"{label} was not sent again: the same request is already waiting for the "
            "charger's answer."
        )


# What a person asks a charger once at a time (per connector or transaction): a second press
# while the first waits for its answer would start, stop, reset or unlock twice.
ONCE_ACTIONS = frozenset(
    {
        "RemoteStartTransaction",
        "RequestStartTransaction",
        "RemoteStopTransaction",
        "RequestStopTransaction",
        "Reset",
        "UnlockConnector",
        "ChangeAvailability",
    }
)


def _target(payload: object) -> tuple:
    """What a request of ONCE_ACTIONS is about: its connector, EVSE or transaction."""
    if not isinstance(payload, dict):
        return ()
    evse = payload.get("evse")
    return (
        payload.get("connectorId"),
        payload.get("evseId"),
        evse.get("id") if isinstance(evse, dict) else None,
        payload.get("transactionId"),
    )


def _pending_twin(charger_id: int, action: str, payload: dict, within_s: float) -> Command | None:
    """The same request to this charger still waiting for its answer (created within
    `within_s`: a waiter that died leaves its row pending). In the caller's transaction, with
    the charger's row locked so that two presses at once are checked one after the other."""
    Charger.objects.select_for_update().filter(pk=charger_id).values_list("pk").first()
    since = timezone.now() - timedelta(seconds=within_s)
    pending = Command.objects.filter(
        charger_id=charger_id, action=action, status=Command.Status.PENDING, created_at__gte=since
    ).order_by("pk")
    return next((c for c in pending if _target(c.payload) == _target(payload)), None)


class InvalidCommand(Exception):
    def __init__(self, error: OcppError):
        super().__init__(error.description)
        self.error = error


def command_group(charger_id: int) -> str:
    return f"cp.{charger_id}"


def check_outgoing_or_raise(action: str, payload: dict, version: str = "1.6") -> None:
    try:
        if version == "2.1":  # 2.1's schemas: not a superset of 2.0.1's
            protocol21.check_outgoing(action, payload)
        elif version == "2.0.1":
            protocol201.check_outgoing(action, payload)
        else:
            check_outgoing(action, payload)
    except OcppError as exc:
        raise InvalidCommand(exc) from None


def _ocpp_transaction_id(charger_id: int, payload: dict) -> str | None:
    from chargers.sessions.transactions import session_ocpp_transaction_id

    transaction_id = payload.get("transactionId")
    if isinstance(transaction_id, bool) or not isinstance(transaction_id, int):
        return None
    return session_ocpp_transaction_id(charger_id=charger_id, transaction_id=transaction_id)


async def for_charger(charger: Charger, action: str, payload: dict) -> tuple[str, dict]:
    """Return the action and payload to send this charger: a 1.6 command (remote start/stop,
    reset, unlock, ...) becomes its OCPP 2.0.1 equivalent for a 2.0.1 charger, so callers need
    not know the protocol (chargers.ocpp.v201_commands). Raises InvalidCommand."""
    if not charger.speaks_v2():
        return action, payload
    ocpp_transaction_id = None
    if action == "RemoteStopTransaction":
        ocpp_transaction_id = await db.run(_ocpp_transaction_id, charger.pk, payload)
    try:
        translated = v201_commands.translate(
            action,
            payload,
            ocpp_transaction_id=ocpp_transaction_id,
            native=protocol21.CSMS_ACTIONS
            if charger.ocpp_version == Charger.OcppVersion.V21
            else protocol201.CSMS_ACTIONS,
        )
    except OcppError as exc:
        raise InvalidCommand(exc) from None
    return translated.action, translated.payload


@transaction.atomic
def _command_create(
    charger_id: int,
    action: str,
    payload: dict,
    source: str,
    user_id: int | None,
    status: str,
    note: str = "",
    once_within: float | None = None,
) -> Command:
    if once_within is not None and action in ONCE_ACTIONS:
        twin = _pending_twin(charger_id, action, payload, once_within)
        if twin is not None:
            raise AlreadyPending(twin)
    command = Command.objects.create(
        charger_id=charger_id,
        action=action,
        payload=redact_payload(action, payload),
        source=source,
        note=note[:200],
        requested_by_id=user_id,
        status=status,
        completed_at=timezone.now() if status != Command.Status.PENDING else None,
    )
    # Security (docs/security.md): the hash of a new AuthorizationKey, log/firmware operations.
    command_security_prepare(command=command, payload=payload)
    return command


def command_complete(
    *,
    command_id: int,
    status: str,
    response: object = None,
    error: str = "",
    unique_id: str = "",
) -> None:
    # redact_response: an AuthorizationKey a charger wrongly reports back is not stored.
    fields = {
        "status": status,
        "response": redact_response(response),
        "error": error[:2000],
        "completed_at": timezone.now(),
    }
    if unique_id:
        fields["unique_id"] = unique_id
    # Pending, or given up on by its sender as nobody's (NO_OWNER): the report of the process
    # that held the connection after all is the truth, and is kept.
    open_ = Q(status=Command.Status.PENDING)
    if error != NO_OWNER:
        open_ |= Q(status=Command.Status.TIMEOUT, error=NO_OWNER)
    updated = Command.objects.filter(open_, pk=command_id).update(**fields)
    if updated:
        # Security (docs/security.md): adopt an accepted AuthorizationKey, follow operations.
        command_security_complete(command_id=command_id, status=status, response=response)


async def send_command(
    charger: Charger,
    action: str,
    payload: dict,
    *,
    source: str = "api",
    user_id: int | None = None,
    timeout: float | None = None,
    note: str = "",
    once: bool = False,
) -> Command:
    """Send `action` to the charger and return the completed Command (`note`: what it means,
    shown on the charger's page instead of the payload). `once`: a person asked; the same
    request of ONCE_ACTIONS still waiting for its answer is not sent again (AlreadyPending).

    Raises InvalidCommand, ChargerOffline, CommandTimeout or AlreadyPending.
    """
    action, payload = await for_charger(charger, action, payload)
    check_outgoing_or_raise(action, payload, charger.ocpp_version)
    parts = await _variable_parts(charger, action, payload)
    if parts is not None:
        return await _send_parts(
            charger,
            action,
            payload,
            parts,
            source=source,
            user_id=user_id,
            timeout=timeout,
            note=note,
        )
    if charger.speaks_v2() and action in (
        "SetChargingProfile",
        "RequestStartTransaction",
    ):
        from chargers.devices.smart_charging import check_outgoing as check_smart_charging

        try:  # K01/K05 rules between fields and against the profiles the charger holds
            await db.run(
                check_smart_charging, charger_id=charger.pk, action=action, payload=payload
            )
        except OcppError as exc:
            raise InvalidCommand(exc) from None
    timeout = timeout or settings.OCPP_CALL_TIMEOUT
    if not charger.is_online():
        await db.run(
            _command_create,
            charger.pk,
            action,
            payload,
            source,
            user_id,
            Command.Status.OFFLINE,
            note,
        )
        raise ChargerOffline(charger.station_id)
    command = await db.run(
        _command_create,
        charger.pk,
        action,
        payload,
        source,
        user_id,
        Command.Status.PENDING,
        note,
        # The first's wait: its timeout, the hops, and its turn behind an earlier CALL.
        2 * timeout + 5 if once else None,
    )
    layer = get_channel_layer()
    # The default prefix, not a private one: channels_redis reads all process-local channels of
    # a process through one receive lock whose holder pops only the Redis key of its own prefix
    # ("specific.<process>!"). A "cmdreply." channel lived in a key nobody popped while a charger
    # consumer held the lock: with two chargers connected every answer waited for the timeout.
    reply_channel = await layer.new_channel()
    try:
        await layer.group_send(
            command_group(charger.pk),
            {
                "type": "cp.call",
                "command_id": command.pk,
                "action": action,
                "payload": payload,
                "reply_channel": reply_channel,
                "timeout": timeout,
            },
        )
    except Exception as exc:  # noqa: BLE001 - the layer (Redis) is away: nothing was sent
        logger.warning("%s to %s not sent: the channel layer failed: %s", action, charger.pk, exc)
        await db.run(
            command_complete,
            command_id=command.pk,
            status=Command.Status.TIMEOUT,
            error=UNREACHABLE,
        )
    else:
        await _await_reply(layer, reply_channel, command.pk, timeout, charger.pk)
    await db.run(command.refresh_from_db)
    await _record_answer(charger, action, payload, command, source, user_id)
    parts = await _refused_as_too_many(charger, action, payload, command, timeout)
    if parts is not None:
        return await _send_parts(
            charger,
            action,
            payload,
            parts,
            source=source,
            user_id=user_id,
            timeout=timeout,
            note=note,
        )
    if command.status == Command.Status.TIMEOUT:
        raise CommandTimeout(command)
    if command.status == Command.Status.ANSWERED and charger.speaks_v2():
        await _device_model_update(charger.pk, action, payload, command.response)
    elif command.status == Command.Status.ANSWERED and action == "GetConfiguration":
        await _rate_units_16(charger.pk, command.response)
    return command


async def _await_reply(
    layer: object, reply_channel: str, command_id: int, timeout: float, charger_id: int
) -> None:
    """Wait for the consumer's reply; the Command row holds the outcome either way.

    The process holding the charger's connection reports every CALL it got (an answer, an
    error, no answer within `timeout`, the socket closed: `cp_call`), a hop after our clock
    started. So once `timeout` is up here, we wait on while that process still holds the
    connection and has not reported, and stop as soon as it reports (or stored its report
    where the reply could not reach us) or the charger's connection is gone: never a fixed
    grace, which gave up on a report still on its way when the database was slow."""
    receiving = asyncio.ensure_future(layer.receive(reply_channel))  # type: ignore[attr-defined]
    try:
        await asyncio.wait([receiving], timeout=timeout)
        if _replied(receiving, command_id):
            return
        until = asyncio.get_running_loop().time() + OWNER_REPORT_MAX_S
        if await _owner_reported(receiving, command_id, charger_id, until):
            return
    finally:
        receiving.cancel()
    await db.run(
        command_complete, command_id=command_id, status=Command.Status.TIMEOUT, error=NO_OWNER
    )


def _replied(receiving: asyncio.Future, command_id: int) -> bool:
    if not receiving.done() or receiving.cancelled():
        return False
    exc = receiving.exception()
    if exc is not None:  # the layer went away: the row says what happened
        logger.warning("Waiting for the answer of command %s failed: %s", command_id, exc)
        return False
    return True


async def _owner_reported(
    receiving: asyncio.Future, command_id: int, charger_id: int, until: float
) -> bool:
    """Whether the process holding the connection reported before `until`; False as soon as
    the charger's connection is gone (seen twice: a closing socket's own report, written as it
    closes, is given one more look)."""
    loop = asyncio.get_running_loop()
    gone = 0
    while loop.time() < until:
        if receiving.done():
            await asyncio.sleep(REPLY_POLL_S)
        else:
            await asyncio.wait([receiving], timeout=REPLY_POLL_S)
            if _replied(receiving, command_id):
                return True
        state = await db.run(_owner_state, command_id, charger_id)
        if state == "reported":
            return True
        gone = gone + 1 if state == "gone" else 0
        if gone >= 2:
            return False
    return False


def _owner_state(command_id: int, charger_id: int) -> str:
    """ "reported" (the row is no longer pending), "gone" (the charger has no connection: it
    left, or the process that held it died and was cleared) or "held"."""
    if not Command.objects.filter(pk=command_id, status=Command.Status.PENDING).exists():
        return "reported"
    held = Charger.objects.filter(pk=charger_id).exclude(connection_id="").exists()
    return "held" if held else "gone"


async def _variable_parts(charger: Charger, action: str, payload: dict) -> list[list] | None:
    """The getVariableData / setVariableData of a 2.0.1 request in the parts the charger takes
    (its DeviceDataCtrlr ItemsPerMessage / BytesPerMessage as its device model holds them,
    B05.FR.11, B06.FR.05); None when it goes as one request. A limit the charger has not
    reported bounds nothing: the request goes as asked (TC_B_07 expects exactly that), and only
    a charger that refuses it as too large is asked (`_refused_as_too_many`)."""
    key = device_model.VARIABLE_LISTS.get(action)
    items = payload.get(key) if key and charger.speaks_v2() else None
    if not isinstance(items, list) or len(items) < 2:
        return None
    items_max, bytes_max = await db.run(
        variables.message_limits, charger_id=charger.pk, action=action
    )
    parts = device_model.split_variable_data(action, items, items_max, bytes_max)
    return parts if len(parts) > 1 else None


async def _refused_as_too_many(
    charger: Charger, action: str, payload: dict, command: Command, timeout: float | None
) -> list[list] | None:
    """A GetVariables / SetVariables of several elements that a charger whose limits we do not
    know refused with CALLERROR OccurrenceConstraintViolation (what B06.FR.16 lets it answer to
    more elements than it takes): its limits are asked (GetVariables of each one variable; the
    answers land in the device model, so they are not asked again) and the parts to send
    instead returned; None when nothing is to be resent."""
    key = device_model.VARIABLE_LISTS.get(action)
    items = payload.get(key) if key and charger.speaks_v2() else None
    response = command.response if isinstance(command.response, dict) else {}
    if (
        not isinstance(items, list)
        or len(items) < 2
        or command.status != Command.Status.ERROR
        or response.get("errorCode") != "OccurrenceConstraintViolation"
    ):
        return None
    limits = await db.run(variables.message_limits, charger_id=charger.pk, action=action)
    if limits != (None, None):
        return None  # sent within what it reported: splitting is not what it wants
    for name in ("ItemsPerMessage", "BytesPerMessage"):
        await _ask_limit(charger, name, action, timeout)
    return await _variable_parts(charger, action, payload)


async def _ask_limit(charger: Charger, name: str, action: str, timeout: float | None) -> None:
    try:
        await send_command(
            charger,
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": device_model.DEVICE_DATA_COMPONENTS[0]},
                        "variable": {"name": name, "instance": action},
                    }
                ]
            },
            source="csms",
            timeout=timeout,
        )
    except (CommandTimeout, InvalidCommand):
        pass  # not reported: the request goes as one


async def _send_parts(
    charger: Charger,
    action: str,
    payload: dict,
    parts: list[list],
    *,
    source: str,
    user_id: int | None,
    timeout: float | None,
    note: str,
) -> Command:
    """Send a GetVariables / SetVariables in `parts`, one Command each, in order. Returns the last
    part's Command with, as its `response` (in memory; each row keeps its own answer), the results
    of every part in request order; a part the charger did not answer ends it with that part's."""
    key, result_key = device_model.VARIABLE_LISTS[action], device_model.VARIABLE_RESULTS[action]
    results: list = []
    command: Command | None = None
    for part in parts:
        command = await send_command(
            charger,
            action,
            {**payload, key: part},
            source=source,
            user_id=user_id,
            timeout=timeout,
            note=note,
        )
        answer = command.response if isinstance(command.response, dict) else None
        if command.status != Command.Status.ANSWERED or answer is None:
            return command
        part_results = answer.get(result_key)
        results.extend(part_results if isinstance(part_results, list) else [])
    assert command is not None and isinstance(command.response, dict)
    command.response = {**command.response, result_key: results}
    return command


async def _rate_units_16(charger_id: int, response: object) -> None:
    """Keep the units a 1.6 charger says it takes in a profile whenever it reports the key
    (ChargingScheduleAllowedChargingRateUnit; docs/power.md, "Units")."""
    from chargers.devices import rate_units, smart_charging

    keys = response.get("configurationKey") if isinstance(response, dict) else None
    units = rate_units.from_configuration_16(keys) if isinstance(keys, list) else None
    if units:
        await db.run(smart_charging.rate_units_record, charger_id=charger_id, units=units)


async def _record_answer(
    charger: Charger, action: str, payload: dict, command: Command, source: str, user_id: int | None
) -> None:
    """Keep what the charger now holds, from its answer: reservations, charging profiles, monitors."""
    from chargers.devices import monitoring, smart_charging
    from chargers.sessions import reservations

    if action in ("ReserveNow", "CancelReservation"):
        await db.run(
            reservations.reservation_record_answer,
            charger_id=charger.pk,
            payload=payload,
            status=command.status,
            response=command.response,
            source=source,
            user_id=user_id,
        )
    elif action in ("SetChargingProfile", "ClearChargingProfile"):
        if not charger.speaks_v2():
            # 1.6 profiles are kept in the same words (chargers.devices.smart_charging.as_201).
            payload = smart_charging.as_201(action, payload)
        await db.run(
            smart_charging.record_answer,
            charger_id=charger.pk,
            action=action,
            payload=payload,
            status=command.status,
            response=command.response,
        )
    elif action in ("SetVariableMonitoring", "ClearVariableMonitoring", "SetMonitoringBase"):
        await db.run(
            monitoring.record_answer,
            charger_id=charger.pk,
            action=action,
            payload=payload,
            status=command.status,
            response=command.response,
        )


async def _device_model_update(
    charger_id: int, action: str, payload: dict, response: object
) -> None:
    """Keep what GetVariables / SetVariables answers say in the charger's device model."""
    from chargers.devices import variables

    results = (
        response.get("getVariableResult" if action == "GetVariables" else "setVariableResult")
        if isinstance(response, dict)
        else None
    )
    if not isinstance(results, list):
        return
    try:
        if action == "GetVariables":
            await db.run(
                variables.device_variables_from_get, charger_id=charger_id, results=results
            )
        elif action == "SetVariables":
            await db.run(
                variables.device_variables_from_set,
                charger_id=charger_id,
                requested=payload.get("setVariableData") or [],
                results=results,
            )
    except Exception:  # the command's answer is recorded whatever happens here
        logger.exception("Could not store the device model answer of charger %s", charger_id)


def send_command_sync(
    charger: Charger,
    action: str,
    payload: dict,
    *,
    source: str = "api",
    user_id: int | None = None,
    timeout: float | None = None,
    once: bool = False,
) -> Command:
    # The charger may take up to the call timeout to answer: the request's thread gives its pooled
    # database connection back meanwhile (13 such requests held a 12-connection pool: 500s).
    if not connection.in_atomic_block:
        connection.close()
    return async_to_sync(send_command)(
        charger, action, payload, source=source, user_id=user_id, timeout=timeout, once=once
    )

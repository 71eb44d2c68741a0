"""Commands from partners (mod_commands receiver): check, decide, send to the charger, report.

The synchronous CommandResponse says whether we understood the command and will forward it;
the charger's answer (or its absence) goes to the partner's response_url as a CommandResult,
through the outbox (roaming.services.deliveries_send), so it survives a partner outage.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from authorization.decisions import Context, Decision
from authorization.services import authorize
from chargers.devices import commands as charger_commands
from chargers.models import Charger, ChargingSession, Command
from chargers.sessions import services as charger_services

from . import ocpi, payments, schedule, services
from .models import Partner, RemoteCommand, TerminalPayment

logger = logging.getLogger(__name__)

# OCPP 1.6 answer status -> OCPI CommandResult (mod_commands "CommandResultType").
_RESULTS: dict[str, dict[str, str]] = {
    RemoteCommand.Type.START_SESSION: {"Accepted": "ACCEPTED", "Rejected": "REJECTED"},
    RemoteCommand.Type.STOP_SESSION: {"Accepted": "ACCEPTED", "Rejected": "REJECTED"},
    RemoteCommand.Type.UNLOCK_CONNECTOR: {
        "Unlocked": "ACCEPTED",
        "UnlockFailed": "FAILED",
        "NotSupported": "NOT_SUPPORTED",
    },
    RemoteCommand.Type.RESERVE_NOW: {
        "Accepted": "ACCEPTED",
        "Faulted": "EVSE_INOPERATIVE",
        "Occupied": "EVSE_OCCUPIED",
        "Rejected": "REJECTED",
        "Unavailable": "EVSE_INOPERATIVE",
    },
    RemoteCommand.Type.CANCEL_RESERVATION: {"Accepted": "ACCEPTED", "Rejected": "REJECTED"},
}


def response_timeout_s() -> int:
    """How long the partner is told to wait for the CommandResult (CommandResponse.timeout)."""
    return int(settings.OCPP_CALL_TIMEOUT) + 30


@dataclass(frozen=True)
class Response:
    """Our synchronous answer: a CommandResponse, or an OCPI error status with `code`."""

    result: str
    message: str = ""
    code: int = ocpi.Code.SUCCESS
    remote_command_id: int | None = None

    def data(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.result, "timeout": response_timeout_s()}
        if self.message:
            body["message"] = [{"language": "en", "text": self.message[:512]}]
        return body


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.message)
        self.response = response


def _invalid(message: str) -> _Refused:
    return _Refused(Response("REJECTED", message, code=ocpi.Code.INVALID_PARAMETERS))


def _charger_at(partner: Partner, location_id: Any, evse_uid: Any) -> tuple[Charger, int | None]:
    """Return (charger, connector id or None) at one of the operator's locations.

    Any charger of the operator, published or not: a start at a location with roaming off must
    reach the authorization engine, which refuses it with a recorded reason.
    """
    # ASCII digits: isdigit() alone takes "²", which int() refuses.
    if not isinstance(location_id, str) or not (location_id.isascii() and location_id.isdigit()):
        raise _Refused(Response("REJECTED", "Unknown location.", code=ocpi.Code.UNKNOWN_LOCATION))
    chargers = (
        Charger.objects.select_related("property")
        .filter(property_id=int(location_id), property__organization_id=partner.organization_id)
        .order_by("station_id")
    )
    if evse_uid:
        parts = ocpi.split_evse_uid(str(evse_uid))
        charger = chargers.filter(station_id=parts[0]).first() if parts else None
        if charger is None or parts is None:
            raise _Refused(Response("REJECTED", "Unknown EVSE.", code=ocpi.Code.UNKNOWN_LOCATION))
        return charger, parts[1]
    charger = chargers.first()
    if charger is None:
        raise _Refused(Response("REJECTED", "Unknown location.", code=ocpi.Code.UNKNOWN_LOCATION))
    return charger, None


def _response_url(body: dict) -> str:
    url = body.get("response_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url) > 500:
        raise _invalid("response_url is required.")
    return url


def _store_token(partner: Partner, token: Any) -> str:
    """Store the command's Token object like a pushed one (the eMSP vouches for it); return its uid."""
    if not isinstance(token, dict):
        raise _invalid("token (a Token object) is required.")
    try:
        services.token_store(
            partner=partner,
            country_code=str(token.get("country_code", "")),
            party_id=str(token.get("party_id", "")),
            uid=str(token.get("uid", "")),
            type_=str(token.get("type", "")),
            body=token,
        )
    except services.TokenRefused as exc:
        raise _Refused(Response("REJECTED", exc.message, code=exc.code)) from None
    return str(token["uid"])


def _decide(charger: Charger, uid: str, connector_id: int | None) -> Decision:
    facts, location_id = charger_services.charger_facts_by_id(charger.pk, connector_id)
    return async_to_sync(authorize)(
        uid=uid,
        charger=facts,
        context=Context.REMOTE_MSP,
        location_id=location_id,
        connector_id=connector_id,
        active_sessions_of=charger_services.token_active_sessions,
    )


def _start_id_tag(remote: RemoteCommand) -> str:
    """The idTag a START_SESSION starts the charger with: the partner's token uid, or for a
    payment terminal's start the one-off card of its payment (roaming.payments)."""
    if remote.pk:
        card = (
            TerminalPayment.objects.filter(command_id=remote.pk)
            .values_list("token__uid", flat=True)
            .first()
        )
        if card:
            return str(card)
    return str(remote.request["token"]["uid"])


def _payload(remote: RemoteCommand, *, id_tag: str = "") -> tuple[str, dict[str, Any]]:
    body = remote.request
    if remote.type == RemoteCommand.Type.START_SESSION:
        payload: dict[str, Any] = {"idTag": id_tag or _start_id_tag(remote)}
        if remote.connector_id:
            payload["connectorId"] = remote.connector_id
        return "RemoteStartTransaction", payload
    if remote.type == RemoteCommand.Type.STOP_SESSION:
        session = ChargingSession.objects.get(pk=int(body["session_id"]))
        return "RemoteStopTransaction", {"transactionId": session.transaction_id}
    if remote.type == RemoteCommand.Type.UNLOCK_CONNECTOR:
        return "UnlockConnector", {"connectorId": remote.connector_id}
    if remote.type == RemoteCommand.Type.RESERVE_NOW:
        expiry = ocpi.format_datetime(ocpi.parse_datetime(str(body["expiry_date"])))
        return "ReserveNow", {
            "connectorId": remote.connector_id or 0,
            "expiryDate": expiry,
            "idTag": body["token"]["uid"],
            "reservationId": remote.ocpp_reservation_id,
        }
    return "CancelReservation", {"reservationId": remote.ocpp_reservation_id}


def _checked(action: str, payload: dict[str, Any]) -> None:
    try:
        charger_commands.check_outgoing_or_raise(action, payload)
    except charger_commands.InvalidCommand as exc:
        raise _Refused(
            Response("REJECTED", f"The charger cannot take this command: {exc}")
        ) from None


def command_receive(*, partner: Partner, command: str, body: Any) -> Response:
    """Check a partner's command, record it, and queue it for the charger; return our answer."""
    if command not in RemoteCommand.Type.values:
        return Response("NOT_SUPPORTED", f"{command} is not a command we support.")
    if not isinstance(body, dict):
        return Response(
            "REJECTED", "A command object is required.", code=ocpi.Code.INVALID_PARAMETERS
        )
    if partner.blocked:
        # Mobility Providers > block: the partner's commands stop with its tokens.
        return Response("REJECTED", "This mobility provider is blocked by the operator.")
    try:
        return _receive(partner, command, body)
    except _Refused as exc:
        return exc.response


def _reservation(partner: Partner, remote: RemoteCommand, body: dict) -> None:
    """Check a RESERVE_NOW and give it its OCPP reservation id."""
    if not isinstance(body.get("reservation_id"), str) or not body["reservation_id"]:
        raise _invalid("reservation_id is required.")
    try:
        ocpi.parse_datetime(str(body.get("expiry_date", "")))
    except ValueError:
        raise _invalid("expiry_date is not a DateTime.") from None
    remote.reservation_id = body["reservation_id"][:36]
    earlier = (
        RemoteCommand.objects.filter(
            partner=partner, type=remote.type, reservation_id=remote.reservation_id
        )
        .exclude(ocpp_reservation_id=None)
        .first()
    )
    # A RESERVE_NOW with a known reservation_id replaces that reservation (mod_commands).
    remote.ocpp_reservation_id = (
        earlier.ocpp_reservation_id if earlier else secrets.randbelow(2**31 - 1) + 1
    )


def _receive(partner: Partner, command: str, body: dict) -> Response:
    url = _response_url(body)
    remote = RemoteCommand(partner=partner, type=command, request=body, response_url=url)
    if command in (RemoteCommand.Type.START_SESSION, RemoteCommand.Type.RESERVE_NOW):
        remote.charger, remote.connector_id = _charger_at(
            partner, body.get("location_id"), body.get("evse_uid")
        )
        if body.get("connector_id") and remote.connector_id is None:
            raise _invalid("connector_id needs evse_uid.")
        if command == RemoteCommand.Type.RESERVE_NOW:
            _reservation(partner, remote, body)
        if partner.role == Partner.Role.PTP:
            return _terminal_start(partner, remote, body)
        uid = _store_token(partner, body.get("token"))
        _checked(*_payload(remote))
        decision = _decide(remote.charger, uid, remote.connector_id)
        if not decision.accepted:
            remote.response, remote.message = "REJECTED", decision.message
            remote.save()
            return Response("REJECTED", decision.message, remote_command_id=remote.pk)
    elif command == RemoteCommand.Type.STOP_SESSION:
        session_id = str(body.get("session_id", ""))
        session = (
            ChargingSession.objects.select_related("token", "charger")
            .filter(
                pk=int(session_id) if session_id.isascii() and session_id.isdigit() else 0,
                charger__property__organization_id=partner.organization_id,
            )
            .first()
        )
        if session is None:
            return Response("UNKNOWN_SESSION", "Unknown session.")
        if (
            session.token is None
            or session.token.msp_id is None
            or not services.partner_speaks_for(partner, session.token.msp_id)
        ):
            return Response("REJECTED", "This session is not one of your customers'.")
        if session.status != ChargingSession.Status.ACTIVE:
            return Response("REJECTED", "This session has already ended.")
        remote.charger, remote.connector_id = session.charger, session.connector_id
    elif command == RemoteCommand.Type.UNLOCK_CONNECTOR:
        if not body.get("evse_uid") or not body.get("connector_id"):
            raise _invalid("location_id, evse_uid and connector_id are required.")
        remote.charger, remote.connector_id = _charger_at(
            partner, body.get("location_id"), body.get("evse_uid")
        )
    else:  # CANCEL_RESERVATION
        reservation_id = str(body.get("reservation_id", ""))[:36]
        if not reservation_id:
            raise _invalid("reservation_id is required.")
        reserved = (
            RemoteCommand.objects.filter(
                partner=partner,
                type=RemoteCommand.Type.RESERVE_NOW,
                reservation_id=reservation_id,
                result="ACCEPTED",
            )
            .order_by("-id")
            .first()
        )
        remote.reservation_id = reservation_id
        if reserved is not None:
            remote.charger, remote.connector_id = reserved.charger, reserved.connector_id
            remote.ocpp_reservation_id = reserved.ocpp_reservation_id
    remote.response = "ACCEPTED"
    with transaction.atomic():
        twin = _in_flight_twin(remote)
        if twin is not None:
            return Response("ACCEPTED", remote_command_id=twin.pk)
        remote.save()
        remote_id = remote.pk
        transaction.on_commit(lambda: _queue(remote_id))
    return Response("ACCEPTED", remote_command_id=remote_id)


def _in_flight_twin(remote: RemoteCommand) -> RemoteCommand | None:
    """The same command (the same body, so the same response_url) that this partner sent
    before, that we accepted and the charger has not answered yet: a partner retrying while its
    first call still runs gets the first one's answer, and the charger gets the command once.
    Call inside the transaction that saves `remote`: it locks the partner's row, so two such
    calls at once look one after the other (the second sees the first's command).

    A command already answered is no twin: the same body again is a new try (an eMSP whose
    response_url names no command, and a driver pressing start again after a failure); nor is
    one older than the timeout our CommandResponse gave (the partner has given up on it, and
    one whose task was lost must not swallow every retry)."""
    Partner.objects.select_for_update(no_key=True).filter(pk=remote.partner_id).first()
    waiting = RemoteCommand.objects.filter(
        created_at__gte=timezone.now() - timedelta(seconds=response_timeout_s()),
        partner_id=remote.partner_id,
        type=remote.type,
        response_url=remote.response_url,
        response="ACCEPTED",
        result="",
    ).order_by("pk")
    return next((sent for sent in waiting if sent.request == remote.request), None)


def _terminal_start(partner: Partner, remote: RemoteCommand, body: dict) -> Response:
    """A payment terminal's START_SESSION (OCPI 2.3.0 mod_payments "Transaction"): on an EVSE
    of one of its terminals, with its authorization_reference; the charger is started with the
    payment's one-off card, decided by the authorization engine like any remote start."""
    if remote.type != RemoteCommand.Type.START_SESSION:
        return Response("NOT_SUPPORTED", "A payment terminal starts sessions; it cannot reserve.")
    assert remote.charger is not None
    try:
        start = payments.terminal_start_prepare(
            partner=partner, body=body, charger=remote.charger, connector_id=remote.connector_id
        )
    except payments.PaymentRefused as exc:
        return Response("REJECTED", exc.message, code=exc.code)
    try:
        _checked(*_payload(remote, id_tag=start.uid))
        decision = _decide(remote.charger, start.uid, remote.connector_id)
    except Exception:  # refused, or anything else: the card never works
        payments.terminal_start_refused(start)
        raise
    if not decision.accepted:
        payments.terminal_start_refused(start)
        remote.response, remote.message = "REJECTED", decision.message
        remote.save()
        return Response("REJECTED", decision.message, remote_command_id=remote.pk)
    remote.response = "ACCEPTED"
    try:
        with transaction.atomic():
            remote.save()
            payments.terminal_start_record(start, command_id=remote.pk)
            remote_id = remote.pk
            transaction.on_commit(lambda: _queue(remote_id))
    except payments.PaymentRefused as exc:  # its reference, taken meanwhile
        payments.terminal_start_refused(start)
        return Response("REJECTED", exc.message, code=exc.code)
    return Response("ACCEPTED", remote_command_id=remote_id)


def _queue(remote_id: int) -> None:
    # No sweep runs a command nobody queued: a job the broker refuses is kept to send later.
    schedule.later(schedule.COMMAND_EXECUTE, remote_id)


def command_execute(*, remote_command_id: int) -> str:
    """Send the command to the charger and queue the CommandResult for the partner; idempotent.

    One run at a time (a cache claim): the task delivered twice while the first run waits for
    the charger (acks late: a lost worker, the broker's visibility timeout) returns at once,
    so the charger gets the command once and the partner one CommandResult. The claim lapses
    after the partner's timeout, so a run whose worker died does not hold it for ever."""
    remote = RemoteCommand.objects.select_related("charger", "partner").get(pk=remote_command_id)
    if remote.result:
        return remote.result
    claim = f"roaming:command:{remote.pk}"
    if not cache.add(claim, 1, response_timeout_s()):
        return ""  # another run sends it now
    try:
        remote.refresh_from_db(fields=["result"])
        if remote.result:  # the run before ours finished between our read and our claim
            return remote.result
        return _execute(remote)
    finally:
        cache.delete(claim)


def _execute(remote: RemoteCommand) -> str:
    result, message, charger_command = _run(remote)
    if remote.type == RemoteCommand.Type.START_SESSION and result != "ACCEPTED":
        # A payment terminal's one-off card is not for another try: the PTP starts anew.
        payments.terminal_command_failed(remote_command_id=remote.pk)
    remote.result, remote.message, remote.completed_at = result, message[:500], timezone.now()
    remote.charger_command = charger_command
    remote.save(update_fields=["result", "message", "completed_at", "charger_command"])
    body: dict[str, Any] = {"result": result}
    if message:
        body["message"] = [{"language": "en", "text": message[:512]}]
    services.delivery_enqueue(
        partner=remote.partner,
        module="commands",
        object_key=f"command:{remote.pk}",
        method="POST",
        path=remote.response_url,
        body=body,
        to_party=_result_party(remote),
    )
    services.deliveries_send(partner_id=remote.partner_id)
    return result


def _result_party(remote: RemoteCommand) -> tuple[str, str] | None:
    """The party the CommandResult is addressed to (routing headers): the command's token's,
    when the partner speaks for it. Only START_SESSION and RESERVE_NOW check their token; any
    other command's body may carry any token, whose party must not reach a header or a column."""
    token = remote.request.get("token")
    if not isinstance(token, dict):
        return None
    cc, pid = str(token.get("country_code", "")).upper(), str(token.get("party_id", "")).upper()
    if not pid or services.party_msp(remote.partner, cc, pid, claim=False) is None:
        return None
    return cc, pid


def _run(remote: RemoteCommand) -> tuple[str, str, Command | None]:
    if remote.charger is None:
        return "UNKNOWN_RESERVATION", "No such reservation is active.", None
    action, payload = _payload(remote)
    try:
        command = charger_commands.send_command_sync(remote.charger, action, payload, source="ocpi")
    except charger_commands.ChargerOffline:
        return "FAILED", "The charger is offline.", None
    except charger_commands.CommandTimeout as exc:
        return "TIMEOUT", "The charger did not answer in time.", exc.command
    except charger_commands.InvalidCommand as exc:
        return "FAILED", str(exc), None
    if command.status != Command.Status.ANSWERED:
        code = command.response.get("errorCode", "") if isinstance(command.response, dict) else ""
        result = "NOT_SUPPORTED" if code in ("NotImplemented", "NotSupported") else "FAILED"
        return result, f"The charger answered an error {code}".strip(), command
    status = command.result_status
    return _RESULTS[remote.type].get(status, "FAILED"), f"The charger answered {status}.", command

"""Our eMSP role for the platform's driver accounts: partner CPOs' chargers as the driver page
shows them (with our price to the driver), remote START_SESSION / STOP_SESSION with the driver's
app token (mod_commands, we are the Sender), and the CommandResults the CPOs post back.

Driver accounts roam on the one eMSP identity support marked for them
(`EmspIdentity.driver_accounts`): its organization's CPO partners are the networks a driver sees,
and its app tokens are the drivers'. Every read is scoped to that organization.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from authorization.decisions import Context, decide
from authorization.models import Token
from authorization.services import token_facts

from . import cdr_check, client, emsp, emsp_rules, hub_clients, ocpi, versions
from .emsp_network import Refused
from .models import (
    EmspIdentity,
    Partner,
    PartnerCdr,
    PartnerCommand,
    PartnerLocation,
    PartnerSession,
    PartnerTariff,
)

logger = logging.getLogger(__name__)


class CommandRefused(Exception):
    """A start or stop we do not send, in the driver's words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# The driver pages' "Other networks" link reads whether an identity serves driver accounts from
# the cache (drivers.context_processors); a change clears it.
DRIVER_ACCOUNTS_CACHE_KEY = "drivers:roaming-offered"


@transaction.atomic
def driver_accounts_set(*, identity_id: int | None) -> None:
    """Make driver accounts roam on the identity `identity_id` (None: on none)."""
    others = EmspIdentity.objects.filter(driver_accounts=True)
    if identity_id is not None:
        others = others.exclude(pk=identity_id)
    others.update(driver_accounts=False)
    if identity_id is not None:
        EmspIdentity.objects.filter(pk=identity_id).update(driver_accounts=True)
    transaction.on_commit(lambda: cache.delete(DRIVER_ACCOUNTS_CACHE_KEY))


def driver_identity() -> EmspIdentity | None:
    """The eMSP identity driver accounts roam on, or None (roaming is off for drivers)."""
    return EmspIdentity.objects.filter(driver_accounts=True).select_related("organization").first()


# -- their chargers, as the driver sees them -----------------------------------------------------


def network_locations(identity: EmspIdentity, *, query: str = "") -> QuerySet[PartnerLocation]:
    """The published locations of the identity's connected CPO partners, searched by name,
    address, city or postal code."""
    rows = (
        PartnerLocation.objects.filter(
            organization_id=identity.organization_id, partner__state=Partner.State.CONNECTED
        )
        .exclude(partner__cpo_party_id="")
        .exclude(data__publish=False)
        .select_related("partner")
        .order_by("data__city", "data__name", "pk")
    )
    words = query.strip()[:100]
    if words:
        rows = rows.filter(
            Q(data__name__icontains=words)
            | Q(data__address__icontains=words)
            | Q(data__city__icontains=words)
            | Q(data__postal_code__icontains=words)
        )
    return rows


def network_location(identity: EmspIdentity, pk: int) -> PartnerLocation | None:
    return network_locations(identity).filter(pk=pk).first()


@dataclass(frozen=True)
class ConnectorOffer:
    id: str
    standard: str  # in words (Type 2, CCS (Combo 2), ...)
    current: str  # AC or DC, '' when not said
    power_kw: Decimal | None
    tariff: cdr_check.DriverTariff | None


@dataclass(frozen=True)
class EvseOffer:
    uid: str
    evse_id: str
    status: str
    status_words: str
    connectors: list[ConnectorOffer]
    refusal: str  # why it cannot be started from the app, '' when it can


def _current_tariffs(location: PartnerLocation) -> dict[str, dict]:
    """The partner's tariffs as they stand now (the newest version of each, not removed)."""
    newest: dict[str, dict] = {}
    rows = PartnerTariff.objects.filter(
        partner_id=location.partner_id,
        country_code=location.country_code,
        party_id=location.party_id,
    ).order_by("tariff_id", "last_updated")
    for row in rows:
        if row.removed_at is None:
            newest[row.tariff_id] = row.data
        else:
            newest.pop(row.tariff_id, None)
    return newest


def _usable(value: Any) -> bool:
    """A positive finite number of a plausible size (a pulled location is not checked)."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and 0 < value < 10**7
    )


def _power_kw(connector: dict) -> Decimal | None:
    power = connector.get("max_electric_power")
    if _usable(power):
        return (Decimal(str(power)) / 1000).quantize(Decimal("0.1"))
    volts, amps = connector.get("max_voltage"), connector.get("max_amperage")
    if not (_usable(volts) and _usable(amps)):
        return None
    phases = 3 if connector.get("power_type") == "AC_3_PHASE" else 1
    return (Decimal(str(volts)) * Decimal(str(amps)) * phases / 1000).quantize(Decimal("0.1"))


def _driver_tariff(
    data: dict | None, *, at: datetime, power_kw: Decimal | None
) -> cdr_check.DriverTariff | None:
    if data is None:
        return None
    try:
        return cdr_check.driver_tariff(
            data,
            margin_percent=Decimal(settings.OCPI_EMSP_MARGIN_PERCENT),
            fee=Decimal(settings.OCPI_EMSP_ROAMING_FEE_CENTS) / 100,
            vat_percent=Decimal(settings.OCPI_EMSP_VAT_PERCENT),
            at=at,
            power_kw=power_kw,
        )
    except cdr_check.NotRecomputable:
        return None


def _listed(value: Any) -> list:
    """A list of a location's object; anything else none (pushes are checked since session 84,
    rows kept before may hold `"evses": 5`)."""
    return value if isinstance(value, list) else []


def _local_now(location: PartnerLocation) -> datetime:
    """The location's wall clock now (its `time_zone`, UTC when it gives none we know)."""
    zone = location.data.get("time_zone")
    try:
        return timezone.now().astimezone(ZoneInfo(zone if isinstance(zone, str) else "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.now()


def location_offer(location: PartnerLocation) -> list[EvseOffer]:
    """Each EVSE of the location with its connectors, our price to the driver per connector
    (the tariff the connector names, as it stands), and whether the app can start it."""
    tariffs = _current_tariffs(location)
    commands = bool(location.partner.endpoint("commands", ocpi.InterfaceRole.RECEIVER))
    now = _local_now(location)  # the price a session starting now pays there
    offers = []
    for evse in _listed(location.data.get("evses")):
        if not isinstance(evse, dict) or evse.get("status") == "REMOVED":
            continue
        connectors = []
        for connector in _listed(evse.get("connectors")):
            if not isinstance(connector, dict):
                continue
            named = [t for t in _listed(connector.get("tariff_ids")) if isinstance(t, str)]
            data = next((tariffs[t] for t in named if t in tariffs), None)
            power = _power_kw(connector)
            connectors.append(
                ConnectorOffer(
                    id=str(connector.get("id", "")),
                    standard=emsp_rules.standard_words(str(connector.get("standard", ""))),
                    current=str(connector.get("power_type", ""))[:2],
                    power_kw=power,
                    tariff=_driver_tariff(data, at=now, power_kw=power),
                )
            )
        offers.append(
            EvseOffer(
                uid=str(evse.get("uid", "")),
                evse_id=str(evse.get("evse_id") or evse.get("uid", "")),
                status=str(evse.get("status", "")),
                status_words=emsp_rules.status_words(str(evse.get("status", ""))),
                connectors=connectors,
                refusal=emsp_rules.start_refusal(evse, commands_offered=commands),
            )
        )
    return offers


# -- the driver's sessions there ------------------------------------------------------------------


def open_session(token: Token) -> PartnerSession | None:
    """The driver's session at a partner CPO that is still open, if any."""
    return (
        PartnerSession.objects.filter(
            token=token,
            status__in=list(emsp_rules.OPEN_SESSION_STATUSES),
            quiet_closed_at__isnull=True,  # silent for a day: emsp_cdrs.sessions_quiet_close
        )
        .select_related("partner")
        .order_by("-last_updated")
        .first()
    )


def sessions_of(token: Token) -> QuerySet[PartnerSession]:
    return PartnerSession.objects.filter(token=token).select_related("partner")


def cdrs_of(token: Token) -> QuerySet[PartnerCdr]:
    return PartnerCdr.objects.filter(token=token).select_related("partner")


def commands_of(token: Token) -> QuerySet[PartnerCommand]:
    return PartnerCommand.objects.filter(token=token).select_related("partner")


# After the charger accepted a start, the driver has this long to plug in before the session
# appears (a charger's connection timeout is seconds to minutes): meanwhile no second start.
PLUG_IN_WINDOW_S = 300
# A CPO's session carries its own start time: one from this long before our command (clocks
# differ) is still that command's.
CLOCK_SKEW = timedelta(minutes=2)


def _followed(command: PartnerCommand, token: Token) -> bool:
    """Whether the session this start led to has come: one carrying the command's
    authorization_reference, or one at its location starting after it was sent. A late update
    of an earlier session is not it."""
    for session in sessions_of(token).filter(received_at__gte=command.created_at):
        data = session.data
        if data.get("authorization_reference") == command.uid:
            return True
        try:
            started = ocpi.parse_datetime(str(data.get("start_date_time")))
        except ValueError:
            continue
        same_place = str(data.get("location_id", "")) == command.location_id
        if same_place and started >= command.created_at - CLOCK_SKEW:
            return True
    return False


def start_in_progress(token: Token) -> PartnerCommand | None:
    """The driver's start still under way: being sent (no answer yet), accepted by the CPO with
    no result within its timeout, or accepted by the charger with no session yet."""
    now = timezone.now()
    for command in commands_of(token).filter(
        type=PartnerCommand.Type.START_SESSION,
        response__in=("", "ACCEPTED"),
        result__in=("", "ACCEPTED"),
    )[:3]:
        if command.result == "ACCEPTED":
            window = PLUG_IN_WINDOW_S
            if _followed(command, token):
                continue  # its session came (open or already over)
        else:
            window = command.timeout_s if command.timeout_s is not None else 120
        if (now - command.created_at).total_seconds() <= window:
            return command
    return None


# -- commands -------------------------------------------------------------------------------------


def _response_url(site_url: str, version: str, command_type: str, uid: str) -> str:
    base = (settings.SITE_URL or site_url).rstrip("/")
    path = reverse(
        "roaming:emsp-command-result",
        kwargs={"version": version, "command": command_type, "uid": uid},
    )
    return f"{base}{path}"


def _send(
    command: PartnerCommand, body: dict[str, Any], *, to: tuple[str, str], identity: EmspIdentity
) -> PartnerCommand:
    """POST the command to the CPO's Commands Receiver (through a hub: to the CPO party `to`)
    and keep its CommandResponse."""
    partner = command.partner
    url = partner.endpoint("commands", ocpi.InterfaceRole.RECEIVER).rstrip("/")
    try:
        answer = client.call(
            partner=partner,
            method="POST",
            url=f"{url}/{command.type}",
            token=partner.outgoing_token,
            module="commands",
            body=body,
            to_party=to,
            from_party=(identity.country_code, identity.party_id),
        )
        response = emsp_rules.command_response_of(answer.data)
    except client.PartnerCallError as exc:
        return _unanswered(command, exc.message)
    except emsp_rules.BadObject as exc:
        return _unanswered(command, str(exc))
    command.response, command.timeout_s = response.result, response.timeout
    command.message = response.message
    command.save(update_fields=["response", "timeout_s", "message"])
    return command


def _unanswered(command: PartnerCommand, message: str) -> PartnerCommand:
    """The CPO's CommandResponse did not come (or was not one): UNREACHABLE, unless its
    CommandResult came meanwhile (the answer was lost, not the command): that stands."""
    if PartnerCommand.objects.filter(pk=command.pk, result="").update(
        response="UNREACHABLE", message=message[:300]
    ):
        command.response, command.message = "UNREACHABLE", message[:300]
    else:
        command.refresh_from_db()
    return command


def _commands_partner(location: PartnerLocation, identity: EmspIdentity) -> Partner:
    partner = location.partner
    usable = (
        partner.organization_id == identity.organization_id
        and partner.state == Partner.State.CONNECTED
        and partner.is_cpo
        and partner.endpoint("commands", ocpi.InterfaceRole.RECEIVER)
    )
    if not usable:
        raise CommandRefused("This network does not take starts from our app: use your card.")
    return partner


def start_session(
    *,
    identity: EmspIdentity,
    token: Token,
    location: PartnerLocation,
    evse_uid: str,
    connector_id: str = "",
    site_url: str = "",
) -> PartnerCommand:
    """Ask the CPO to start the driver's session at one EVSE (mod_commands START_SESSION), after
    our own decision for the token (the same as the real-time authorization's); raise
    CommandRefused saying why not."""
    partner = _commands_partner(location, identity)
    evse = next(
        (
            e
            for e in _listed(location.data.get("evses"))
            if isinstance(e, dict) and e.get("uid") == evse_uid
        ),
        None,
    )
    if evse is None:
        raise CommandRefused("That charger is not at this location any more.")
    refusal = emsp_rules.start_refusal(evse, commands_offered=True)
    if refusal:
        raise CommandRefused(refusal)
    behind = hub_clients.cpo_party(partner, location.country_code, location.party_id)
    if behind is not None and behind.status != "CONNECTED":
        # mod_hub_client_info: no requests to a party that is offline, planned or suspended.
        raise CommandRefused("This network is offline right now: try again later or use a card.")
    decision = decide(
        token_facts(token),
        emsp.partner_charger_facts(partner, location.location_id),
        Context.LOCAL,
        now=timezone.now(),
    )
    if emsp_rules.allowed_of(decision.status.value) != "ALLOWED":
        raise CommandRefused("Your account may not charge on other networks right now.")
    uid = uuid.uuid4().hex
    with transaction.atomic():
        # One start at a time per token: two taps at once send one START_SESSION. The command
        # row is the claim; the call to the CPO happens after the commit, outside the lock.
        Token.objects.select_for_update().filter(pk=token.pk).first()
        if open_session(token) is not None or start_in_progress(token) is not None:
            raise CommandRefused("You already have a session starting or running: stop it first.")
        command = PartnerCommand.objects.create(
            organization_id=identity.organization_id,
            partner=partner,
            token=token,
            type=PartnerCommand.Type.START_SESSION,
            uid=uid,
            partner_location=location,
            location_id=location.location_id,
            evse_uid=evse_uid[:36],
            connector_id=connector_id[:36],
            authorization_reference=uid,
        )
    body: dict[str, Any] = {
        "response_url": _response_url(site_url, partner.version, command.type, uid),
        "token": versions.of(partner.version).token(emsp.token_facts_of(token, identity)),
        "location_id": location.location_id,
        "evse_uid": command.evse_uid,
        "authorization_reference": uid,
    }
    if command.connector_id:
        body["connector_id"] = command.connector_id
    return _send(command, body, to=(location.country_code, location.party_id), identity=identity)


def stop_session(
    *, identity: EmspIdentity, token: Token, session: PartnerSession, site_url: str = ""
) -> PartnerCommand:
    """Ask the CPO to stop the driver's session (mod_commands STOP_SESSION)."""
    if session.token_id != token.pk or session.organization_id != identity.organization_id:
        raise CommandRefused("That session is not yours.")
    partner = session.partner
    if not partner.endpoint("commands", ocpi.InterfaceRole.RECEIVER):
        raise CommandRefused("This network does not take stops from our app: stop at the charger.")
    uid = uuid.uuid4().hex
    with transaction.atomic():
        # One stop at a time per token, as for starts: two taps at once send one STOP_SESSION.
        Token.objects.select_for_update().filter(pk=token.pk).first()
        if stopping(token, session):
            raise CommandRefused("Your session is already stopping.")
        command = PartnerCommand.objects.create(
            organization_id=identity.organization_id,
            partner=partner,
            token=token,
            type=PartnerCommand.Type.STOP_SESSION,
            uid=uid,
            location_id=str(session.data.get("location_id", ""))[:36],
            evse_uid=str(session.data.get("evse_uid", ""))[:36],
            session_id=session.session_id,
        )
    body = {
        "response_url": _response_url(site_url, partner.version, command.type, uid),
        "session_id": session.session_id,
    }
    return _send(command, body, to=(session.country_code, session.party_id), identity=identity)


def stopping(token: Token, session: PartnerSession) -> bool:
    """Whether a stop of this session is under way (sent or accepted in the last 2 minutes)."""
    return (
        commands_of(token)
        .filter(
            type=PartnerCommand.Type.STOP_SESSION,
            session_id=session.session_id,
            response__in=("", "ACCEPTED"),
            result__in=("", "ACCEPTED"),
            created_at__gte=timezone.now() - timedelta(minutes=2),
        )
        .exists()
    )


def command_result(*, partner: Partner, command_type: str, uid: str, body: Any) -> PartnerCommand:
    """Take the CPO's CommandResult for a command we sent it (mod_commands Sender "POST")."""
    command = PartnerCommand.objects.filter(partner=partner, type=command_type, uid=uid).first()
    if command is None:
        raise Refused(ocpi.Code.CLIENT_ERROR, "Unknown command.", 404)
    try:
        result, message = emsp_rules.command_result_of(body)
    except emsp_rules.BadObject as exc:
        raise Refused(ocpi.Code.INVALID_PARAMETERS, str(exc)) from None
    command.result, command.message, command.result_at = result, message, timezone.now()
    fields = ["result", "message", "result_at"]
    if command.response in ("", "UNREACHABLE"):
        # Its CommandResponse was lost (slower than our timeout) but the CPO took the command,
        # or it could not send a result: the start is under way and the driver told so.
        command.response = "ACCEPTED"
        fields.append("response")
    command.save(update_fields=fields)
    return command

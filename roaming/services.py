"""Roaming writes: partner registration both ways, credentials updates, unregistration."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from authorization.models import MobilityServiceProvider, Token, normalize_uid
from backoffice.models import Organization
from chargers.models import Charger, Connector

from . import client, mapping, ocpi, selectors
from .models import (
    Delivery,
    EvseProfile,
    HubParty,
    LocationProfile,
    OcpiLog,
    Partner,
    PushedToken,
)

logger = logging.getLogger(__name__)

# What we implement, per module: (identifier, our interface role) -> URL name.
OUR_ENDPOINTS: list[tuple[str, str, str]] = [
    ("credentials", ocpi.InterfaceRole.SENDER, "roaming:credentials"),
    ("credentials", ocpi.InterfaceRole.RECEIVER, "roaming:credentials"),
    ("locations", ocpi.InterfaceRole.SENDER, "roaming:locations"),
    ("tariffs", ocpi.InterfaceRole.SENDER, "roaming:tariffs"),
    ("tokens", ocpi.InterfaceRole.RECEIVER, "roaming:tokens"),
    ("commands", ocpi.InterfaceRole.RECEIVER, "roaming:commands"),
    ("sessions", ocpi.InterfaceRole.SENDER, "roaming:sessions"),
    ("cdrs", ocpi.InterfaceRole.SENDER, "roaming:cdrs"),
]


class RegistrationError(Exception):
    """The partner's side of the handshake failed; `code` is the OCPI status to answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def our_credentials(*, token: str, versions_url: str) -> dict[str, Any]:
    """Return our credentials object with `token` (credentials "Credentials object")."""
    return {
        "token": token,
        "url": versions_url,
        "roles": [
            {
                "role": ocpi.Role.CPO,
                "party_id": settings.OCPI_PARTY_ID,
                "country_code": settings.OCPI_COUNTRY_CODE,
                "business_details": {"name": settings.OCPP_CPO_NAME},
            }
        ],
    }


@dataclass(frozen=True)
class PartnerParty:
    role: str
    country_code: str
    party_id: str
    business_details: dict


def parse_credentials(body: Any) -> tuple[str, str, PartnerParty]:
    """Return (token, versions url, the eMSP or hub role) of a credentials object, or raise 2001."""
    if not isinstance(body, dict):
        raise RegistrationError(ocpi.Code.INVALID_PARAMETERS, "A credentials object is required.")
    token, url, roles = body.get("token"), body.get("url"), body.get("roles")
    if (
        not isinstance(token, str)
        or not token
        or len(token) > 64
        or not all(0x21 <= ord(c) <= 0x7E for c in token)
    ):
        raise RegistrationError(
            ocpi.Code.INVALID_PARAMETERS, "token: 1 to 64 printable ASCII characters."
        )
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise RegistrationError(
            ocpi.Code.INVALID_PARAMETERS, "url: the versions endpoint URL is required."
        )
    if not isinstance(roles, list) or not roles:
        raise RegistrationError(
            ocpi.Code.INVALID_PARAMETERS, "roles: at least one role is required."
        )
    for item in roles:
        if not isinstance(item, dict):
            continue
        role = str(item.get("role", "")).upper()
        cc, pid = str(item.get("country_code", "")).upper(), str(item.get("party_id", "")).upper()
        if role in (ocpi.Role.EMSP, ocpi.Role.HUB) and len(cc) == 2 and 1 <= len(pid) <= 3:
            details = (
                item.get("business_details")
                if isinstance(item.get("business_details"), dict)
                else {}
            )
            return token, url, PartnerParty(role, cc, pid, details or {})
    raise RegistrationError(
        ocpi.Code.NO_MATCHING_ENDPOINTS, "We are a CPO: the roles must include an EMSP or a HUB."
    )


def fetch_endpoints(*, partner: Partner | None, versions_url: str, token: str) -> tuple[str, dict]:
    """Return (version, {module: {role: url}}) of the partner's 2.2.1 endpoints.

    Raises RegistrationError 3001 when its API cannot be used, 3002 without version 2.2.1.
    """
    try:
        versions = client.call(
            partner=partner, method="GET", url=versions_url, token=token, module="versions"
        ).data
    except client.PartnerCallError as exc:
        raise RegistrationError(
            ocpi.Code.CLIENT_API_UNUSABLE, f"GET versions failed: {exc.message}"
        ) from None
    detail_url = next(
        (
            v.get("url")
            for v in versions or []
            if isinstance(v, dict) and v.get("version") == ocpi.VERSION
        ),
        None,
    )
    if not isinstance(detail_url, str):
        raise RegistrationError(
            ocpi.Code.UNSUPPORTED_VERSION, f"The partner offers no OCPI {ocpi.VERSION}."
        )
    try:
        details = client.call(
            partner=partner, method="GET", url=detail_url, token=token, module="versions"
        ).data
    except client.PartnerCallError as exc:
        raise RegistrationError(
            ocpi.Code.CLIENT_API_UNUSABLE, f"GET version details failed: {exc.message}"
        ) from None
    endpoints: dict[str, dict[str, str]] = {}
    for item in (details or {}).get("endpoints") or []:
        if (
            isinstance(item, dict)
            and isinstance(item.get("identifier"), str)
            and isinstance(item.get("url"), str)
        ):
            role = str(item.get("role") or ocpi.InterfaceRole.RECEIVER).upper()
            endpoints.setdefault(item["identifier"], {})[role] = item["url"]
    if "credentials" not in endpoints:
        raise RegistrationError(
            ocpi.Code.NO_MATCHING_ENDPOINTS, "The partner has no credentials endpoint."
        )
    return ocpi.VERSION, endpoints


def _link_msp(partner: Partner, party: PartnerParty) -> None:
    """Make the partner's party the operator's MobilityServiceProvider (one row per party)."""
    msp, _ = MobilityServiceProvider.objects.get_or_create(
        organization=partner.organization,
        country_code=party.country_code,
        party_id=party.party_id,
        defaults={"name": str(party.business_details.get("name") or partner.name)[:200]},
    )
    # Real-time authorization (mod_tokens "POST authorize") goes to the partner's tokens
    # sender; authorization.services sends `Token <live_validation_token>`, and OCPI 2.2.1
    # wants the credentials token Base64-encoded there.
    msp.live_validation_url = partner.endpoint("tokens", ocpi.InterfaceRole.SENDER)
    msp.live_validation_token = base64.b64encode(partner.outgoing_token.encode()).decode()
    msp.save(update_fields=["live_validation_url", "live_validation_token"])
    Partner.objects.filter(msp=msp).exclude(pk=partner.pk).update(msp=None)
    # A party connected directly speaks for itself: a hub no longer routes it here.
    HubParty.objects.filter(msp=msp).exclude(partner=partner).delete()
    partner.msp = msp


def _connect(
    partner: Partner,
    *,
    party: PartnerParty,
    version: str,
    endpoints: dict,
    versions_url: str,
    outgoing_token: str,
) -> None:
    partner.role = party.role if party.role in Partner.Role.values else Partner.Role.EMSP
    partner.country_code, partner.party_id = party.country_code, party.party_id
    partner.business_details = party.business_details
    partner.version, partner.endpoints, partner.versions_url = version, endpoints, versions_url
    partner.outgoing_token = outgoing_token
    partner.state = Partner.State.CONNECTED
    partner.token_a_hash = ""
    partner.registered_at = timezone.now()
    _link_msp(partner, party)
    partner.save()


# -- they register with us (we issued token A) ----------------------------------------------------


@transaction.atomic
def partner_invite(
    *, organization: Organization, name: str, role: str = Partner.Role.EMSP
) -> tuple[Partner, str]:
    """Create a partner and return it with the token A to hand over (shown once, kept hashed)."""
    token_a = ocpi.new_credentials_token()
    partner = Partner.objects.create(
        organization=organization,
        name=name,
        role=role,
        state=Partner.State.PENDING,
        token_a_hash=ocpi.token_hash(token_a),
    )
    return partner, token_a


def credentials_receive(
    *, partner: Partner, body: Any, versions_url: str, update: bool
) -> dict[str, Any]:
    """Register (POST) or update (PUT) a partner calling us; return our new credentials.

    Fetches the partner's endpoints with its token first (no database transaction is held
    during those calls), then issues a new token C and keeps only its hash.
    """
    token, their_versions_url, party = parse_credentials(body)
    version, endpoints = fetch_endpoints(
        partner=partner, versions_url=their_versions_url, token=token
    )
    token_c = ocpi.new_credentials_token()
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        locked.incoming_token_hash = ocpi.token_hash(token_c)
        _connect(
            locked,
            party=party,
            version=version,
            endpoints=endpoints,
            versions_url=their_versions_url,
            outgoing_token=token,
        )
    logger.info(
        "OCPI partner %s %s", partner.pk, "updated its credentials" if update else "registered"
    )
    return our_credentials(token=token_c, versions_url=versions_url)


@transaction.atomic
def partner_unregister(*, partner: Partner) -> None:
    """Forget both tokens: the partner can no longer call us, nor we it (credentials DELETE)."""
    Partner.objects.filter(pk=partner.pk).update(
        state=Partner.State.UNREGISTERED,
        incoming_token_hash="",
        token_a_hash="",
        outgoing_token="",
        updated_at=timezone.now(),
    )
    if partner.msp_id:
        MobilityServiceProvider.objects.filter(pk=partner.msp_id).update(
            live_validation_url="", live_validation_token=""
        )


# -- we register with them (they issued token A) -------------------------------------------------


def partner_connect(
    *,
    organization: Organization,
    name: str,
    versions_url: str,
    token_a: str,
    our_versions_url: str,
    partner: Partner | None = None,
) -> Partner:
    """Register with a partner from its versions URL and token A; return the connected partner.

    We GET its versions with token A, POST our credentials with a new token B (kept hashed:
    the partner calls us with it, also while it handles our POST) and keep its token C.
    Raises RegistrationError.
    """
    version, endpoints = fetch_endpoints(partner=partner, versions_url=versions_url, token=token_a)
    credentials_url = endpoints["credentials"].get(ocpi.InterfaceRole.RECEIVER) or next(
        iter(endpoints["credentials"].values())
    )
    token_b = ocpi.new_credentials_token()
    created = partner is None
    if partner is None:
        partner = Partner.objects.create(
            organization=organization, name=name, state=Partner.State.PENDING
        )
    Partner.objects.filter(pk=partner.pk).update(
        incoming_token_hash=ocpi.token_hash(token_b),
        versions_url=versions_url,
        endpoints=endpoints,
    )
    partner.refresh_from_db()
    method = "PUT" if partner.registered_at else "POST"
    try:
        answer = client.call(
            partner=partner,
            method=method,
            url=credentials_url,
            token=token_a if method == "POST" else partner.outgoing_token,
            module="credentials",
            body=our_credentials(token=token_b, versions_url=our_versions_url),
        )
        token_c, their_versions_url, party = parse_credentials(answer.data)
    except (client.PartnerCallError, RegistrationError) as exc:
        message = exc.message
        if created:
            # Nothing was agreed: no half-registered partner (and no live token B) is left behind.
            partner.delete()
        else:
            Partner.objects.filter(pk=partner.pk).update(
                last_error=f"Registration failed: {message}"[:500],
                last_error_at=timezone.now(),
                last_error_ocpi_status=getattr(exc, "ocpi_status", None),
            )
        raise RegistrationError(ocpi.Code.CLIENT_API_UNUSABLE, message) from None
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        _connect(
            locked,
            party=party,
            version=version,
            endpoints=endpoints,
            versions_url=their_versions_url,
            outgoing_token=token_c,
        )
    return locked


# -- pushes: the outbox -------------------------------------------------------------------------


def delivery_enqueue(
    *,
    partner: Partner,
    module: str,
    object_key: str,
    method: str,
    path: str,
    body: Any,
    coalesce: bool = False,
    to_party: tuple[str, str] | None = None,
) -> Delivery:
    """Queue a push to `partner`; with `coalesce`, a push of the same object still waiting takes
    the new body instead (the partner needs the state now, not every state in between)."""
    with transaction.atomic():
        if coalesce:
            waiting = (
                Delivery.objects.select_for_update()
                .filter(
                    partner=partner,
                    object_key=object_key,
                    status=Delivery.Status.PENDING,
                    coalesce=True,
                    method=method,
                    path=path,
                )
                .order_by("-id")
                .first()
            )
            if waiting is not None:
                waiting.body = body
                waiting.revision += 1
                waiting.save(update_fields=["body", "revision"])
                return waiting
        cc, pid = to_party if to_party is not None else ("", "")
        return Delivery.objects.create(
            partner=partner,
            module=module,
            object_key=object_key,
            method=method,
            path=path,
            body=body,
            coalesce=coalesce,
            next_attempt_at=timezone.now(),
            to_country_code=cc,
            to_party_id=pid,
        )


def _lock_key(partner_id: int) -> str:
    return f"roaming:deliver:{partner_id}"


def deliveries_send(*, partner_id: int, limit: int = 500) -> int:
    """Send the partner's due pushes in order; return how many it accepted.

    One sender per partner at a time (a cache lock). A push that fails waits with back-off
    (roaming.ocpi.retry_delay) and holds back the later pushes of the same object, so each
    object's updates arrive in order; when the partner is unreachable or answers 5xx, all its
    pushes wait. Nothing is dropped: a push stays until the partner accepts it.

    A push queued (or given a newer body) while the lock was held found it taken and left its
    sending to the holder: after letting go, the holder looks for such pushes and goes again, so
    none waits for the sweep's 30 s.
    """
    seen: dict[int, int] = {}
    sent = 0
    while True:
        if not cache.add(_lock_key(partner_id), 1, 300):
            return sent
        try:
            before = dict(seen)
            sent_now, go_on = _deliveries_send_locked(partner_id, limit, seen)
            sent += sent_now
        finally:
            cache.delete(_lock_key(partner_id))
        if not go_on or seen == before:
            return (
                sent  # down or gone, or a pass that read nothing new (more than `limit` held back)
            )
        due = Delivery.objects.filter(
            partner_id=partner_id,
            status=Delivery.Status.PENDING,
            next_attempt_at__lte=timezone.now(),
        ).values_list("pk", "revision")
        if all(seen.get(pk) == revision for pk, revision in due):
            return sent


def _deliveries_send_locked(partner_id: int, limit: int, seen: dict[int, int]) -> tuple[int, bool]:
    """One pass over the partner's pending pushes (the caller holds the lock); record each
    push's revision in `seen`. Return how many were accepted and whether a new pass may help
    (not when the partner is gone or down)."""
    partner = Partner.objects.select_related("msp").filter(pk=partner_id).first()
    if partner is None or partner.state != Partner.State.CONNECTED:
        return 0, False
    held: set[str] = set()
    sent = 0
    now = timezone.now()
    pending = list(
        Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).order_by("id")[
            :limit
        ]
    )
    seen.update((delivery.pk, delivery.revision) for delivery in pending)
    for delivery in pending:
        if delivery.object_key in held:
            continue
        if delivery.next_attempt_at > now:
            held.add(delivery.object_key)
            continue
        base = partner.endpoint(delivery.module, ocpi.InterfaceRole.RECEIVER)
        to_party = (
            (delivery.to_country_code, delivery.to_party_id)
            if delivery.to_party_id
            else (
                (partner.country_code, partner.party_id)
                if partner.role == Partner.Role.HUB
                else None
            )
        )
        absolute = delivery.path.startswith(("http://", "https://"))
        try:
            if not base and not absolute:
                raise client.PartnerCallError(
                    f"The partner has no {delivery.module} receiver endpoint."
                )
            client.call(
                partner=partner,
                method=delivery.method,
                url=delivery.path if absolute else base.rstrip("/") + delivery.path,
                token=partner.outgoing_token,
                module=delivery.module,
                body=delivery.body,
                to_party=to_party,
            )
        except client.PartnerCallError as exc:
            now = timezone.now()
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=delivery.attempts + 1,
                last_error=exc.message[:500],
                next_attempt_at=now + timedelta(seconds=ocpi.retry_delay(delivery.attempts + 1)),
            )
            Partner.objects.filter(pk=partner.pk).update(
                last_error=f"{delivery.method} {delivery.module}: {exc.message}"[:500],
                last_error_at=now,
                last_error_ocpi_status=exc.ocpi_status,
            )
            held.add(delivery.object_key)
            if exc.http_status is None or exc.http_status >= 500:
                return sent, False  # the partner is down: everything waits for it
            continue
        now = timezone.now()
        # A newer body that arrived while this one was on its way keeps the push pending (the
        # next pass sends it: its revision is not the one seen).
        sent += Delivery.objects.filter(pk=delivery.pk, revision=delivery.revision).update(
            status=Delivery.Status.SENT,
            sent_at=now,
            attempts=delivery.attempts + 1,
            last_error="",
        )
        Partner.objects.filter(pk=partner.pk).update(last_push_at=now)
    return sent, True


def partners_with_due_deliveries(*, fresh_s: int = 30) -> list[int]:
    """Return the partners with pushes due: failed ones whose back-off is over, and new ones
    nobody sent within `fresh_s` (their own task is sending the others)."""
    now = timezone.now()
    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now,
        partner__state=Partner.State.CONNECTED,
    )
    due = due.filter(Q(attempts__gt=0) | Q(created_at__lte=now - timedelta(seconds=fresh_s)))
    return list(due.values_list("partner_id", flat=True).distinct())


def _partners_receiving(organization_id: int, module: str) -> list[Partner]:
    partners = Partner.objects.filter(
        organization_id=organization_id, state=Partner.State.CONNECTED
    )
    return [p for p in partners if p.endpoint(module, ocpi.InterfaceRole.RECEIVER)]


def last_pushed(partner: Partner, object_key: str) -> Any:
    last = (
        Delivery.objects.filter(partner=partner, object_key=object_key)
        .order_by("-id")
        .values_list("body", flat=True)
        .first()
    )
    return last


def evse_status_queue(*, charger_id: int, connector_id: int) -> list[int]:
    """Queue the EVSE's status for every partner of its operator that does not have it yet;
    return the ids of the partners with something queued.

    Only for published chargers (public roaming at a location with OCPI data). Called for each
    status change (signal) and by the periodic sweep, so a change is pushed once either way.
    """
    charger = (
        Charger.objects.select_related("property", "property__ocpi_profile", "ocpi_profile")
        .prefetch_related("connectors")
        .filter(pk=charger_id)
        .first()
    )
    if (
        charger is None
        or not charger.property_id
        or connector_id < 1
        or not selectors.charger_is_published(charger)
    ):
        return []
    evse = selectors.evse_facts(charger, connector_id, now=timezone.now())
    if evse is None:
        return []
    location_id = str(charger.property_id)
    object_key = f"evse:{location_id}/{evse.uid}"
    body = mapping.evse_status_patch(evse)
    queued = []
    for partner in _partners_receiving(selectors.property_of(charger).organization_id, "locations"):
        last = last_pushed(partner, object_key)
        if isinstance(last, dict) and last.get("status") == body["status"]:
            continue
        delivery_enqueue(
            partner=partner,
            module="locations",
            object_key=object_key,
            method="PATCH",
            path=f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}/{location_id}/{evse.uid}",
            body=body,
            coalesce=True,
        )
        queued.append(partner.pk)
    return queued


def evse_status_changes_since(since: datetime) -> list[tuple[int, int]]:
    """Return (charger id, connector id) of the connectors whose EVSE status may have changed
    since `since`: a new connector status, or the charger connected or disconnected."""
    pairs = set(
        Connector.objects.filter(updated_at__gte=since, connector_id__gte=1).values_list(
            "charger_id", "connector_id"
        )
    )
    moved = Charger.objects.filter(
        Q(connected_at__gte=since) | Q(disconnected_at__gte=since)
    ).values_list("pk", flat=True)
    pairs |= set(
        Connector.objects.filter(charger_id__in=list(moved), connector_id__gte=1).values_list(
            "charger_id", "connector_id"
        )
    )
    return sorted(pairs)


# -- tokens receiver (mod_tokens): the partner's cards become authorization tokens ----------------

TOKEN_TYPES = {
    "RFID": Token.Type.RFID,
    "APP_USER": Token.Type.APP,
    "AD_HOC_USER": Token.Type.OTHER,
    "OTHER": Token.Type.OTHER,
}


class TokenRefused(Exception):
    """A token push we cannot take; `code` is the OCPI status, `http_status` the HTTP one."""

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def party_msp(
    partner: Partner, country_code: str, party_id: str, *, claim: bool = True
) -> MobilityServiceProvider | None:
    """Return the MobilityServiceProvider of a party the partner speaks for, or None.

    Always the partner's own operator's provider. An eMSP speaks for its own party; a hub for
    the parties it routes (roaming.HubParty), each a provider of the operator (so it can be
    blocked on its own under Mobility Providers). With `claim`, a hub routes a party it names
    for the first time, unless that party is connected directly (its own eMSP partner) or
    routed by another connected hub; without it (reads), nothing is created.
    """
    country_code, party_id = country_code.upper(), party_id.upper()
    if (partner.country_code, partner.party_id) == (country_code, party_id):
        return partner.msp
    if partner.role != Partner.Role.HUB or len(country_code) != 2 or not 1 <= len(party_id) <= 3:
        return None
    scope = {"organization_id": partner.organization_id}
    msp = MobilityServiceProvider.objects.filter(
        **scope, country_code=country_code, party_id=party_id
    ).first()
    route = HubParty.objects.filter(msp=msp).select_related("partner").first() if msp else None
    if route is not None and route.partner_id == partner.pk:
        return msp
    if not claim:
        return None
    with transaction.atomic():
        msp, _ = MobilityServiceProvider.objects.get_or_create(
            **scope,
            country_code=country_code,
            party_id=party_id,
            defaults={"name": f"{country_code}*{party_id} via {partner.name}"[:200]},
        )
        live = Partner.objects.exclude(state=Partner.State.UNREGISTERED).exclude(pk=partner.pk)
        if live.filter(msp=msp).exists():
            return None  # connected directly: its own partner speaks for it
        route, created = HubParty.objects.select_for_update().get_or_create(
            msp=msp, defaults={"partner": partner}
        )
        if not created and route.partner_id != partner.pk:
            if live.filter(pk=route.partner_id).exists():
                return None  # another connected hub routes it
            route.partner = partner  # the hub that routed it is gone
            route.save(update_fields=["partner"])
    return msp


def partner_speaks_for(partner: Partner, msp_id: int) -> bool:
    """Return True if `msp_id` is the partner's own party or one it routes (as a hub)."""
    if partner.msp_id == msp_id:
        return True
    return (
        partner.role == Partner.Role.HUB
        and HubParty.objects.filter(partner=partner, msp_id=msp_id).exists()
    )


def _token_fields(
    body: dict, *, country_code: str, party_id: str, uid: str, type_: str
) -> dict[str, Any]:
    """Check a Token object against its URL (mod_tokens "PUT Method"); return the card's fields."""

    def bad(message: str) -> TokenRefused:
        return TokenRefused(ocpi.Code.INVALID_PARAMETERS, message)

    if str(body.get("uid", "")) != uid or str(body.get("type", "")) != type_:
        raise bad("uid and type must be those of the URL.")
    if (
        str(body.get("country_code", "")).upper() != country_code
        or str(body.get("party_id", "")).upper() != party_id
    ):
        raise bad("country_code and party_id must be those of the URL.")
    if type_ not in TOKEN_TYPES:
        raise bad(f"Unknown token type {type_}.")
    if not isinstance(body.get("valid"), bool):
        raise bad("valid (boolean) is required.")
    if body.get("whitelist") not in Token.Whitelist.values:
        raise bad("whitelist must be ALWAYS, ALLOWED, ALLOWED_OFFLINE or NEVER.")
    for name in ("contract_id", "issuer", "last_updated"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise bad(f"{name} is required.")
    try:
        ocpi.parse_datetime(body["last_updated"])
    except ValueError:
        raise bad("last_updated is not a DateTime.") from None
    if not 1 <= len(uid) <= 36:
        raise bad("uid: 1 to 36 characters.")
    return {
        "uid": uid,
        "type": TOKEN_TYPES[type_],
        "valid": body["valid"],
        "whitelist": body["whitelist"],
        "label": str(body.get("visual_number") or body["contract_id"])[:200],
        "parent_id_tag": str(body.get("group_id") or "")[:20],
    }


def token_store(
    *,
    partner: Partner,
    country_code: str,
    party_id: str,
    uid: str,
    type_: str,
    body: Any,
    patch: bool = False,
) -> bool:
    """Store a pushed token (PUT), or apply a partial update (PATCH); return True if it is new."""
    country_code, party_id = country_code.upper(), party_id.upper()
    if not isinstance(body, dict):
        raise TokenRefused(ocpi.Code.INVALID_PARAMETERS, "A Token object is required.")
    msp = party_msp(partner, country_code, party_id)
    if msp is None:
        raise TokenRefused(
            ocpi.Code.CLIENT_ERROR, "You cannot push tokens for this party.", http_status=404
        )
    with transaction.atomic():
        pushed = (
            PushedToken.objects.select_for_update()
            .select_related("token")
            .filter(
                organization_id=partner.organization_id,
                country_code=country_code,
                party_id=party_id,
                uid=uid,
                type=type_,
            )
            .first()
        )
        if patch:
            if pushed is None:
                raise TokenRefused(
                    ocpi.Code.UNKNOWN_TOKEN, "Unknown token: PUT it first.", http_status=404
                )
            if "last_updated" not in body:
                raise TokenRefused(
                    ocpi.Code.INVALID_PARAMETERS, "A PATCH must contain last_updated."
                )
            body = {**pushed.data, **body}
        fields = _token_fields(
            body, country_code=country_code, party_id=party_id, uid=uid, type_=type_
        )
        token = (
            pushed.token
            if pushed is not None
            else (
                Token.objects.filter(msp=msp, uid_normalized=normalize_uid(uid)).first()
                or Token(msp=msp)
            )
        )
        other = (
            PushedToken.objects.filter(token_id=token.pk).exclude(type=type_).first()
            if token.pk
            else None
        )
        if other is not None:
            # One card per uid and provider for the authorization engine (chargers send only the uid).
            raise TokenRefused(
                ocpi.Code.INVALID_PARAMETERS,
                f"This uid is already pushed as a {other.type} token of this party.",
            )
        for name, value in fields.items():
            setattr(token, name, value)
        token.msp, token.organization = msp, None
        token.save()
        PushedToken.objects.update_or_create(
            organization_id=partner.organization_id,
            country_code=country_code,
            party_id=party_id,
            uid=uid,
            type=type_,
            defaults={
                "partner": partner,
                "token": token,
                "data": body,
                "last_updated": ocpi.parse_datetime(body["last_updated"]),
            },
        )
    return pushed is None


def token_get(
    *, partner: Partner, country_code: str, party_id: str, uid: str, type_: str
) -> PushedToken | None:
    """Return a token the partner's operator holds for a party the partner speaks for, or None."""
    msp = party_msp(partner, country_code, party_id, claim=False)
    if msp is None:
        return None
    return PushedToken.objects.filter(
        organization_id=partner.organization_id,
        token__msp=msp,
        country_code=country_code.upper(),
        party_id=party_id.upper(),
        uid=uid,
        type=type_,
    ).first()


def partner_disconnect(*, partner: Partner) -> None:
    """Unregister on both sides: tell the partner (credentials DELETE, best effort), forget ours."""
    url = partner.endpoint("credentials", ocpi.InterfaceRole.RECEIVER) or partner.endpoint(
        "credentials", ocpi.InterfaceRole.SENDER
    )
    if partner.state == Partner.State.CONNECTED and url and partner.outgoing_token:
        try:
            client.call(
                partner=partner,
                method="DELETE",
                url=url,
                token=partner.outgoing_token,
                module="credentials",
            )
        except client.PartnerCallError as exc:
            logger.warning(
                "Partner %s did not take our unregistration: %s", partner.pk, exc.message
            )
    partner_unregister(partner=partner)


@shared_task(name="roaming.location_push")
def location_push_task(property_id: int) -> int:
    """PUT a location whose OCPI data changed to its operator's partners."""
    partner_ids = location_push_queue(property_id=property_id)
    for partner_id in sorted(partner_ids):
        deliveries_send(partner_id=partner_id)
    return len(partner_ids)


def _push_after_commit(property_id: int) -> None:
    """After commit, PUT the location to the operator's partners (or REMOVE what is no longer
    published)."""

    def push() -> None:
        try:
            location_push_task.delay(property_id)
        except Exception:
            logger.exception("Could not push location %s to roaming partners", property_id)

    transaction.on_commit(push)


@transaction.atomic
def location_ocpi_save(*, location: LocationProfile, connectors: list[EvseProfile]) -> None:
    """Save a location's OCPI data and its chargers' connectors; the location (when published)
    is then PUT to the operator's partners (after commit)."""
    location.save()
    for connector in connectors:
        connector.save()
    _push_after_commit(location.property_id)


@transaction.atomic
def location_portal_save(
    *, location: LocationProfile, address: str, connectors: list[EvseProfile]
) -> None:
    """The portal's roaming data form: the location's street address (on the property), its
    OCPI data and its chargers' connectors, in one transaction; partners get the change after
    commit."""
    prop = location.property
    prop.address = address.strip()
    prop.full_clean(exclude=["organization"])
    prop.save(update_fields=["address"])
    location.full_clean(exclude=["property"])
    location_ocpi_save(location=location, connectors=connectors)


# The fields of a location's roaming data a caller may set (roaming.location_data checks them).
LOCATION_DATA_FIELDS = (
    "city",
    "postal_code",
    "country",
    "latitude",
    "longitude",
    "operator_name",
    "open_24_7",
    "regular_hours",
    "exceptional_openings",
    "exceptional_closings",
)


@transaction.atomic
def location_data_save(*, property_id: int, data: dict[str, Any] | None) -> LocationProfile | None:
    """Set a location's roaming data (the fields given), or remove it with None (the location
    is then no longer published); partners get the change after commit."""
    profile = LocationProfile.objects.select_for_update().filter(property_id=property_id).first()
    if data is None:
        if profile is not None:
            profile.delete()
        _push_after_commit(property_id)
        return None
    profile = profile or LocationProfile(property_id=property_id)
    for name, value in data.items():
        if name not in LOCATION_DATA_FIELDS:
            raise ValueError(f"not a roaming data field: {name}")
        setattr(profile, name, value)
    profile.full_clean(exclude=["property"])
    profile.save()
    _push_after_commit(property_id)
    return profile


def location_push_queue(*, property_id: int) -> list[int]:
    """Queue the whole published location (PUT) for the operator's partners; return their ids."""
    from backoffice.models import Property

    prop = Property.objects.filter(pk=property_id).first()
    if prop is None:
        return []
    partners = _partners_receiving(prop.organization_id, "locations")
    if not partners:
        return []
    location = selectors.location_get(partners[0], str(property_id), now=timezone.now())
    if location is None:
        # Not published (any more): partners told about its EVSEs get them REMOVED now.
        return [p.pk for p in partners if locations_reconcile(partner_id=p.pk)]
    for partner in partners:
        delivery_enqueue(
            partner=partner,
            module="locations",
            object_key=f"location:{property_id}",
            method="PUT",
            path=f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}/{property_id}",
            body=location,
            coalesce=True,
        )
    return [p.pk for p in partners]


def log_cleanup(*, now: datetime | None = None, retention_days: int | None = None) -> int:
    """Delete OCPI log rows and sent pushes older than the log retention; return how many."""
    days = retention_days if retention_days is not None else settings.OCPP_LOG_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    logs, _ = OcpiLog.objects.filter(created_at__lt=cutoff).delete()
    sent, _ = Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__lt=cutoff).delete()
    return logs + sent


def locations_reconcile(*, partner_id: int) -> int:
    """Bring a push-receiving partner's view of our locations in line; return pushes queued.

    What the partner was told is read from the outbox (EVSE PATCHes and Location PUTs, the last
    one per object wins). An EVSE it knows that is no longer published (roaming switched off,
    charger made private or moved) gets status REMOVED (mod_locations "Status": REMOVED); a
    location with an EVSE it was never told about is PUT whole.
    """
    partner = Partner.objects.filter(pk=partner_id, state=Partner.State.CONNECTED).first()
    if partner is None or not partner.endpoint("locations", ocpi.InterfaceRole.RECEIVER):
        return 0
    now = timezone.now()
    current = {loc["id"]: loc for loc in selectors.locations_all(partner.organization_id, now=now)}
    current_evses = {
        f"evse:{loc_id}/{evse['uid']}" for loc_id, loc in current.items() for evse in loc["evses"]
    }
    told: dict[str, str] = {}  # evse object key -> last status told
    rows = (
        Delivery.objects.filter(partner=partner, module="locations")
        .order_by("id")
        .values_list("object_key", "body")
    )
    for object_key, body in rows.iterator():
        if not isinstance(body, dict):
            continue
        if object_key.startswith("evse:"):
            told[object_key] = str(body.get("status", ""))
        elif object_key.startswith("location:"):
            for evse in body.get("evses") or []:
                told[f"evse:{body.get('id')}/{evse.get('uid')}"] = str(evse.get("status", ""))
    queued = 0
    prefix = f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}"
    for object_key, status in sorted(told.items()):
        if object_key not in current_evses and status != "REMOVED":
            location_id, uid = object_key[len("evse:") :].split("/", 1)
            delivery_enqueue(
                partner=partner,
                module="locations",
                object_key=object_key,
                method="PATCH",
                path=f"{prefix}/{location_id}/{uid}",
                body={"status": "REMOVED", "last_updated": ocpi.format_datetime(now)},
                coalesce=True,
            )
            queued += 1
    for location_id, location in current.items():
        if any(f"evse:{location_id}/{evse['uid']}" not in told for evse in location["evses"]):
            delivery_enqueue(
                partner=partner,
                module="locations",
                object_key=f"location:{location_id}",
                method="PUT",
                path=f"{prefix}/{location_id}",
                body=location,
                coalesce=True,
            )
            queued += 1
    return queued

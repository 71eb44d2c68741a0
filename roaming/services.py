"""Roaming writes: partner registration both ways, credentials updates, unregistration."""

from __future__ import annotations

import base64
import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from authorization.models import MobilityServiceProvider, Token, normalize_uid
from backoffice import metrics, queueing
from backoffice.models import Organization
from chargers.models import Charger, Connector

from . import client, emsp_rules, hub_clients, mapping, ocpi, schedule, selectors, versions
from .models import (
    Delivery,
    EmspIdentity,
    EvseProfile,
    HubClient,
    HubParty,
    LocationProfile,
    OcpiLog,
    ParkingEvse,
    ParkingPlace,
    Partner,
    PushedToken,
)
from .sender_lock import SenderLock

logger = logging.getLogger(__name__)

# Our endpoint of each module (identifier, or (identifier, role) where our two roles have the
# module on different URLs) -> its URL name (roaming.urls).
_URL_NAMES: dict[str | tuple[str, str], str] = {
    "credentials": "roaming:credentials",
    "locations": "roaming:locations",
    "tariffs": "roaming:tariffs",
    "tokens": "roaming:tokens",
    "commands": "roaming:commands",
    "sessions": "roaming:sessions",
    "cdrs": "roaming:cdrs",
    "payments": "roaming:payments",
    # Our eMSP role's interfaces, where the CPO role has the other one.
    ("tokens", "SENDER"): "roaming:emsp-tokens",
    ("locations", "RECEIVER"): "roaming:emsp-locations",
    ("tariffs", "RECEIVER"): "roaming:emsp-tariffs",
    ("sessions", "RECEIVER"): "roaming:emsp-sessions",
    ("cdrs", "RECEIVER"): "roaming:emsp-cdrs",
    "hubclientinfo": "roaming:hubclientinfo",
}


def our_endpoints(version: str) -> list[tuple[str, str, str]]:
    """Return (identifier, our interface role, path) of every endpoint we offer in `version`
    (version_information_endpoint "Version details")."""
    found = []
    for identifier, role in versions.of(version).ENDPOINTS:
        name = _URL_NAMES.get((identifier, role)) or _URL_NAMES[identifier]
        kwargs = {} if identifier == "payments" else {"version": version}
        found.append((identifier, role, reverse(name, kwargs=kwargs)))
    return found


class RegistrationError(Exception):
    """The partner's side of the handshake failed; `code` is the OCPI status to answer."""

    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def our_credentials(
    *,
    token: str,
    versions_url: str,
    version: str = ocpi.V221,
    organization_id: int | None = None,
) -> dict[str, Any]:
    """Return our credentials object with `token`, in `version` (credentials "Credentials
    object"): our CPO role, and the EMSP role of `organization_id`'s eMSP identity if it has one."""
    identity = (
        EmspIdentity.objects.filter(organization_id=organization_id).first()
        if organization_id is not None
        else None
    )
    return versions.of(version).credentials(
        mapping.CredentialsFacts(
            token=token,
            url=versions_url,
            party=mapping.Party(settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID),
            business_name=settings.OCPP_CPO_NAME,
            emsp=mapping.Party(identity.country_code, identity.party_id) if identity else None,
            emsp_business_name=identity.business_name if identity else "",
        )
    )


@dataclass(frozen=True)
class PartnerParty:
    role: str
    country_code: str
    party_id: str
    business_details: dict


@dataclass(frozen=True)
class Credentials:
    """A partner's credentials object as we read it."""

    token: str
    url: str
    # The party it connects as: its eMSP, hub or PTP role.
    party: PartnerParty
    # Every role it listed: [{"role", "country_code", "party_id", "name"}].
    roles: list[dict[str, str]]
    # A 2.3.0 hub's parties (EMSP roles besides its hub_party_id): (country code, party id).
    routed: list[tuple[str, str]]
    # Its CPO role, if it lists one: our drivers charge there (we are its eMSP). A hub's is its
    # own party (pushes to it are broadcast to the CPOs behind it).
    cpo: PartnerParty | None = None
    # A 2.3.0 hub's CPO parties (its CPO roles): the networks behind it for our drivers.
    hub_cpos: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _check_token_and_url(body: Any) -> tuple[str, str, list]:
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
    return token, url, roles


def _listed_roles(roles: list) -> list[PartnerParty]:
    listed = []
    for item in roles:
        if not isinstance(item, dict):
            continue
        role = str(item.get("role", "")).upper()
        cc, pid = str(item.get("country_code", "")).upper(), str(item.get("party_id", "")).upper()
        if len(cc) == 2 and 1 <= len(pid) <= 3:
            details = item.get("business_details")
            listed.append(PartnerParty(role, cc, pid, details if isinstance(details, dict) else {}))
    return listed


def _hub(body: dict, listed: list[PartnerParty]) -> PartnerParty | None:
    """A 2.3.0 platform with hub functionality names its hub party in `hub_party_id` (credentials
    "Credentials object": country code and party id as one five-character string)."""
    hub_party_id = body.get("hub_party_id")
    if hub_party_id is None:
        return None
    if (
        not isinstance(hub_party_id, str)
        or len(hub_party_id) != 5
        or not all(c.isascii() and c.isalnum() for c in hub_party_id)
    ):
        raise RegistrationError(
            ocpi.Code.INVALID_PARAMETERS,
            "hub_party_id: the hub's country code and party id as five characters, e.g. NLHUB.",
        )
    cc, pid = hub_party_id[:2].upper(), hub_party_id[2:].upper()
    same = next((r for r in listed if (r.country_code, r.party_id) == (cc, pid)), None)
    details = same.business_details if same else (listed[0].business_details if listed else {})
    return PartnerParty(ocpi.Role.HUB, cc, pid, details)


def parse_credentials(body: Any, *, version: str = ocpi.V221, emsp: bool = False) -> Credentials:
    """Read a partner's credentials object in `version`; raise RegistrationError (2001 when it
    is malformed, 3003 when no role of it is one we connect with).

    The party it connects as: in 2.3.0 the hub of `hub_party_id` (the parties it reaches are
    its other EMSP roles), else its first EMSP role, else its PTP role (Payments, 2.3.0 only),
    else (2.2.1) its HUB role, else (`emsp`: its operator has an eMSP identity) its CPO role.
    Its CPO role, whatever it connects as, is kept: a platform may be CPO and eMSP at once."""
    token, url, roles = _check_token_and_url(body)
    listed = _listed_roles(roles)
    cpo = next((r for r in listed if r.role == ocpi.Role.CPO), None) if emsp else None
    summary = [
        {
            "role": r.role,
            "country_code": r.country_code,
            "party_id": r.party_id,
            "name": str(r.business_details.get("name") or "")[:100],
        }
        for r in listed
    ]
    hub = _hub(body, listed) if version == ocpi.V230 else None
    if hub is not None:

        def behind(role: str) -> list[tuple[str, str]]:
            return [
                (r.country_code, r.party_id)
                for r in listed
                if r.role == role
                and (r.country_code, r.party_id) != (hub.country_code, hub.party_id)
            ]

        # In our eMSP role a hub is the CPO we push to (broadcast); its CPO roles are behind it.
        return Credentials(
            token,
            url,
            hub,
            summary,
            behind(ocpi.Role.EMSP),
            hub if emsp else None,
            behind(ocpi.Role.CPO) if emsp else [],
        )
    for wanted in (ocpi.Role.EMSP, ocpi.Role.PTP, ocpi.Role.HUB):
        party = next((r for r in listed if r.role == wanted), None)
        if party is None:
            continue
        if wanted == ocpi.Role.PTP and version != ocpi.V230:
            raise RegistrationError(
                ocpi.Code.NO_MATCHING_ENDPOINTS,
                "A payment terminal provider connects with OCPI 2.3.0 (its Payments module).",
            )
        if wanted == ocpi.Role.HUB and emsp:
            # A 2.2.1 hub names the CPOs behind it in its ClientInfo (mod_hub_client_info).
            cpo = party
        return Credentials(token, url, party, summary, [], cpo)
    if cpo is not None:
        return Credentials(token, url, cpo, summary, [], cpo)
    raise RegistrationError(
        ocpi.Code.NO_MATCHING_ENDPOINTS,
        "The roles must include an EMSP, a hub or a payment terminal provider (PTP), or a CPO "
        "when the operator has an eMSP identity.",
    )


@dataclass(frozen=True)
class PartnerVersion:
    """The version agreed with a partner, every version it offers, and its endpoints in the
    agreed one: {module: {role: url}}."""

    version: str
    offered: list[str]
    endpoints: dict[str, dict[str, str]]


def fetch_endpoints(
    *, partner: Partner | None, versions_url: str, token: str, version: str | None = None
) -> PartnerVersion:
    """Return the partner's endpoints in `version`, or (None) in the newest version both sides
    speak.

    Raises RegistrationError 3001 when its API cannot be used, 3002 when it does not offer
    the version (or none of ours).
    """
    try:
        listed = client.call(
            partner=partner, method="GET", url=versions_url, token=token, module="versions"
        ).data
    except client.PartnerCallError as exc:
        raise RegistrationError(
            ocpi.Code.CLIENT_API_UNUSABLE, f"GET versions failed: {exc.message}"
        ) from None
    if not isinstance(listed, list) or ocpi.text_problem(listed):
        raise RegistrationError(
            ocpi.Code.CLIENT_API_UNUSABLE, "GET versions answered no list of versions."
        )
    urls = {
        str(v.get("version")): v.get("url")
        for v in listed
        if isinstance(v, dict) and isinstance(v.get("url"), str)
    }
    offered = sorted(urls)
    chosen = version if version in urls else None if version else ocpi.highest_common(offered)
    if chosen is None:
        wanted = version or " or ".join(ocpi.VERSIONS)
        raise RegistrationError(
            ocpi.Code.UNSUPPORTED_VERSION, f"The partner offers no OCPI {wanted}."
        )
    try:
        details = client.call(
            partner=partner, method="GET", url=str(urls[chosen]), token=token, module="versions"
        ).data
    except client.PartnerCallError as exc:
        raise RegistrationError(
            ocpi.Code.CLIENT_API_UNUSABLE, f"GET version details failed: {exc.message}"
        ) from None
    listed_endpoints = details.get("endpoints") if isinstance(details, dict) else None
    if not isinstance(listed_endpoints, list) or ocpi.text_problem(listed_endpoints):
        raise RegistrationError(
            ocpi.Code.CLIENT_API_UNUSABLE, "GET version details answered no list of endpoints."
        )
    endpoints: dict[str, dict[str, str]] = {}
    for item in listed_endpoints:
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
    return PartnerVersion(chosen, offered, endpoints)


def _check_ptp_endpoints(party: PartnerParty, found: PartnerVersion) -> None:
    """A PTP must offer its terminals (mod_payments Sender): we tell it the EVSEs we assign."""
    if party.role == ocpi.Role.PTP and not found.endpoints.get("payments"):
        raise RegistrationError(
            ocpi.Code.NO_MATCHING_ENDPOINTS,
            "A payment terminal provider must offer the payments module (its terminals).",
        )


def _live_through(partner: Partner, *, hub: bool) -> dict[str, Any]:
    """A provider's real-time authorization fields when it is reached through `partner`: the
    partner's tokens Sender, our token there, its version (a contract is asked as EMAID from
    2.3.0, as OTHER before), and through a hub the routing headers to the provider's party."""
    return {
        "live_validation_url": partner.endpoint("tokens", ocpi.InterfaceRole.SENDER),
        "live_validation_token": base64.b64encode(partner.outgoing_token.encode()).decode(),
        "ocpi_version": partner.version,
        "via_hub": hub,
    }


def _point_live(msp: MobilityServiceProvider, partner: Partner, *, hub: bool) -> None:
    """Ask `msp` live through `partner` from now on (its own partner, or the hub routing it)."""
    fields = _live_through(partner, hub=hub)
    for name, value in fields.items():
        setattr(msp, name, value)
    msp.save(update_fields=list(fields))


def _route_through_hub(hub: Partner) -> None:
    """The parties a hub routes are asked live through it, with its current endpoint and token
    (after its registration or a credentials update)."""
    MobilityServiceProvider.objects.filter(hub_route__partner=hub).update(
        **_live_through(hub, hub=True)
    )


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
    _point_live(msp, partner, hub=False)
    Partner.objects.filter(msp=msp).exclude(pk=partner.pk).update(msp=None)
    # A party connected directly speaks for itself: a hub no longer routes it here.
    HubParty.objects.filter(msp=msp).exclude(partner=partner).delete()
    partner.msp = msp


def _pending_to_version(partner: Partner, version: str) -> None:
    """The partner moved to `version`: pushes still waiting are sent in it (the same amounts)."""
    waiting = Delivery.objects.select_for_update().filter(
        partner=partner, status=Delivery.Status.PENDING, module__in=("sessions", "cdrs")
    )
    for delivery in waiting:
        delivery.body = versions.convert(
            delivery.module, delivery.body, written_in=partner.version, to=version
        )
        delivery.revision += 1
        delivery.save(update_fields=["body", "revision"])


def _connect(
    partner: Partner,
    *,
    credentials: Credentials,
    found: PartnerVersion,
    outgoing_token: str,
) -> None:
    party = credentials.party
    moved = bool(partner.version) and partner.version != found.version
    if moved:
        _pending_to_version(partner, found.version)
    partner.role = party.role if party.role in Partner.Role.values else Partner.Role.EMSP
    partner.country_code, partner.party_id = party.country_code, party.party_id
    partner.business_details = party.business_details
    partner.version, partner.endpoints = found.version, found.endpoints
    partner.versions_offered, partner.roles = found.offered, credentials.roles
    partner.versions_url = credentials.url
    partner.outgoing_token = outgoing_token
    partner.state = Partner.State.CONNECTED
    partner.token_a_hash = ""
    partner.registered_at = timezone.now()
    cpo = credentials.cpo
    partner.cpo_country_code = cpo.country_code if cpo else ""
    partner.cpo_party_id = cpo.party_id if cpo else ""
    if party.role != ocpi.Role.CPO:
        _link_msp(partner, party)
    partner.save()
    if partner.role == Partner.Role.HUB:
        _route_through_hub(partner)
    if credentials.hub_cpos:
        hub_clients.listed_in_credentials(partner, credentials.hub_cpos)
    if cpo is not None:
        # Our drivers' cards go to the new CPO partner (after the commit, from a task).
        partner_id = partner.pk
        transaction.on_commit(lambda: schedule.later(schedule.EMSP_TOKENS_PUSH_ALL, partner_id))
        # ... and its locations and tariffs are pulled.
        transaction.on_commit(lambda: schedule.later(schedule.EMSP_NETWORK_PULL, partner_id))
    if moved:
        # It holds our locations in its old version's shapes: it gets them all in the new one
        # (2.3.0's parking places, help phone, accepted providers), not only those changed later.
        # From a task: a large operator's locations are not built inside its credentials call.
        # Through the outbox of jobs (schedule.later): a broker that is down keeps it to send
        # once it answers; no sweep would send these locations again.
        partner_id = partner.pk
        transaction.on_commit(lambda: schedule.later(schedule.LOCATIONS_RESEND, partner_id))
    # A 2.3.0 hub lists the parties it reaches: each is routed through it (unless connected to
    # the operator directly or routed by another hub: party_msp's rules).
    names = {(r["country_code"], r["party_id"]): r["name"] for r in credentials.roles}
    for country_code, party_id in credentials.routed:
        msp = party_msp(partner, country_code, party_id)
        name = names.get((country_code, party_id))
        if msp is not None and name and msp.name.startswith(f"{country_code}*{party_id} via "):
            # The name the hub gave its party, not our placeholder (accepted_service_providers).
            msp.name = name[:200]
            msp.save(update_fields=["name"])


# -- they register with us (we issued token A) ----------------------------------------------------


def _invite_token(organization_id: int, key: str) -> str:
    """The token A of an invite form's key: like ocpi.new_credentials_token (43 URL-safe
    characters, 256 bits), but the same for the same key, from our secret key."""
    digest = salted_hmac(
        "roaming.partner_invite", f"{organization_id}:{key}", algorithm="sha256"
    ).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@transaction.atomic
def partner_invite(
    *, organization: Organization, name: str, role: str = Partner.Role.EMSP, key: str = ""
) -> tuple[Partner, str | None]:
    """Create a partner and return it with the token A to hand over (shown once, kept hashed).

    `key` is the invite form's own (a new one each time the form is shown): the form sent twice,
    also at once, is one partner, and both answers show the same token A (derived from the key
    with our secret, so it is never stored). Token None: the partner of that key registered
    since (its token A is spent). Another name from the same form is another invite."""
    if not key:
        token_a = ocpi.new_credentials_token()
        partner = Partner.objects.create(
            organization=organization,
            name=name,
            role=role,
            state=Partner.State.PENDING,
            token_a_hash=ocpi.token_hash(token_a),
        )
        return partner, token_a
    token_a = _invite_token(organization.pk, key)
    partner, created = Partner.objects.select_for_update().get_or_create(
        organization=organization,
        invite_key=key,
        defaults={
            "name": name,
            "role": role,
            "state": Partner.State.PENDING,
            "token_a_hash": ocpi.token_hash(token_a),
        },
    )
    if created or partner.token_a_hash == ocpi.token_hash(token_a):
        if partner.name == name and partner.role == role:
            return partner, token_a
    elif partner.name == name:
        return partner, None
    return partner_invite(organization=organization, name=name, role=role)


def credentials_receive(
    *,
    partner: Partner,
    body: Any,
    versions_url: str,
    update: bool,
    version: str = ocpi.V221,
    token: str = "",
) -> dict[str, Any]:
    """Register (POST) or update (PUT) a partner calling us at our `version`; return our new
    credentials.

    The partner chose the version by calling that version's credentials endpoint: a 2.2.1
    partner moves to 2.3.0 by a PUT to /ocpi/2.3.0/credentials (credentials "Updating to a
    newer version"), without registering again. Fetches the partner's endpoints of that
    version with its token first (no database transaction is held during those calls), then
    issues a new token C and keeps only its hash.

    `token` is the one the partner called with (token A to register, its token C to update):
    when another registration or update at the same time replaced it first, this one changes
    nothing and is refused as a call with that token would be now (401), so the token C we
    answered the first one stays the one that works.
    """
    has_emsp = EmspIdentity.objects.filter(organization_id=partner.organization_id).exists()
    credentials = parse_credentials(body, version=version, emsp=has_emsp)
    found = fetch_endpoints(
        partner=partner, versions_url=credentials.url, token=credentials.token, version=version
    )
    _check_ptp_endpoints(credentials.party, found)
    token_c = ocpi.new_credentials_token()
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        held = {locked.incoming_token_hash, locked.token_a_hash} - {""}
        if token and ocpi.token_hash(token) not in held:
            raise RegistrationError(
                ocpi.Code.CLIENT_ERROR,
                "Your credentials changed meanwhile (a registration or update at the same "
                "time): this token is no longer valid.",
                http_status=401,
            )
        locked.incoming_token_hash = ocpi.token_hash(token_c)
        _connect(locked, credentials=credentials, found=found, outgoing_token=credentials.token)
    logger.info(
        "OCPI partner %s %s (OCPI %s)",
        partner.pk,
        "updated its credentials" if update else "registered",
        version,
    )
    return our_credentials(
        token=token_c,
        versions_url=versions_url,
        version=version,
        organization_id=partner.organization_id,
    )


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
    # Neither its own party nor the parties it routed (as a hub) can be asked through it now.
    MobilityServiceProvider.objects.filter(
        Q(pk=partner.msp_id) | Q(hub_route__partner=partner)
    ).update(live_validation_url="", live_validation_token="")


# -- we register with them (they issued token A) -------------------------------------------------


def _registration_claim(organization: Organization, *, name: str, versions_url: str) -> Partner:
    """The new partner row of a registration with the partner at `versions_url`; raise
    RegistrationError when the operator is connected to it already or registering with it right
    now (*Connect to a partner* submitted twice, two tabs, the API retried: one partner row,
    not two connected to one party). Two claims at once look one after the other (a lock on
    the operator's row). A registration left pending longer than its calls can take (its
    process died) does not block a new one."""
    under_way = timezone.now() - timedelta(seconds=10 * settings.OCPI_TIMEOUT_S)
    with transaction.atomic():
        Organization.objects.select_for_update(no_key=True).filter(pk=organization.pk).first()
        taken = Partner.objects.filter(organization=organization, versions_url=versions_url).filter(
            Q(state=Partner.State.CONNECTED)
            | Q(state=Partner.State.PENDING, updated_at__gte=under_way)
        )
        if taken.exists():
            raise RegistrationError(
                ocpi.Code.CLIENT_ERROR,
                "This partner is already connected, or a registration with it is under way: "
                "see its page under Roaming partners.",
            )
        return Partner.objects.create(
            organization=organization,
            name=name,
            state=Partner.State.PENDING,
            versions_url=versions_url,
        )


def partner_connect(
    *,
    organization: Organization,
    name: str,
    versions_url: str,
    token_a: str,
    our_versions_url: str,
    partner: Partner | None = None,
) -> Partner:
    """Register with a partner from its versions URL and token A, on the newest OCPI version
    both sides speak; return the connected partner.

    We GET its versions with token A, POST our credentials with a new token B (kept hashed:
    the partner calls us with it, also while it handles our POST) and keep its token C. With
    `partner` (registered already) it is the credentials update instead: a PUT with the token
    we call it with, moving to the newest common version; when that fails, the partner keeps
    its version, endpoints and tokens. Raises RegistrationError.
    """
    found = fetch_endpoints(
        partner=partner,
        versions_url=versions_url,
        token=token_a if partner is None else partner.outgoing_token,
    )
    credentials_url = found.endpoints["credentials"].get(ocpi.InterfaceRole.RECEIVER) or next(
        iter(found.endpoints["credentials"].values())
    )
    token_b = ocpi.new_credentials_token()
    created = partner is None
    if partner is None:
        partner = _registration_claim(organization, name=name, versions_url=versions_url)
    before = Partner.objects.values("incoming_token_hash", "versions_url", "endpoints").get(
        pk=partner.pk
    )
    Partner.objects.filter(pk=partner.pk).update(
        incoming_token_hash=ocpi.token_hash(token_b),
        versions_url=versions_url,
        endpoints=found.endpoints,
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
            body=our_credentials(
                token=token_b,
                versions_url=our_versions_url,
                version=found.version,
                organization_id=organization.pk,
            ),
        )
        has_emsp = EmspIdentity.objects.filter(organization_id=organization.pk).exists()
        credentials = parse_credentials(answer.data, version=found.version, emsp=has_emsp)
        _check_ptp_endpoints(credentials.party, found)
    except (client.PartnerCallError, RegistrationError) as exc:
        message = exc.message
        if created:
            # Nothing was agreed: no half-registered partner (and no live token B) is left behind.
            partner.delete()
        else:
            # The partner did not take the update: it keeps calling us as before.
            Partner.objects.filter(pk=partner.pk).update(
                **before,
                last_error=f"Registration failed: {message}"[:500],
                last_error_at=timezone.now(),
                last_error_ocpi_status=getattr(exc, "ocpi_status", None),
            )
        raise RegistrationError(ocpi.Code.CLIENT_API_UNUSABLE, message) from None
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        _connect(locked, credentials=credentials, found=found, outgoing_token=credentials.token)
    return locked


def partner_version_update(
    *, partner: Partner, our_versions_url: str, renew: bool = False
) -> Partner:
    """Move a registered partner to the newest OCPI version both sides speak (a 2.2.1 partner
    to 2.3.0) by a credentials update (PUT), without registering again; new tokens both ways.

    `renew`: the same credentials update also when no newer version is offered (credentials
    "Updating the credentials and resetting the credentials token": its endpoints fetched
    again, new tokens both ways). It is how a partner whose registration answer was lost gets
    our token: its POST reached us and we keep its token B, but it never read our token C, and
    its retry with the spent token A is a 401.

    Raises RegistrationError: the partner is not connected, offers no newer version (without
    `renew`), or did not take the update (it then stays on its version, with its tokens)."""
    if partner.state != Partner.State.CONNECTED or not partner.registered_at:
        raise RegistrationError(ocpi.Code.CLIENT_ERROR, "The partner is not connected.")
    found = fetch_endpoints(
        partner=partner, versions_url=partner.versions_url, token=partner.outgoing_token
    )
    if not renew and not ocpi.is_newer(found.version, partner.version or ocpi.V221):
        Partner.objects.filter(pk=partner.pk).update(versions_offered=found.offered)
        raise RegistrationError(
            ocpi.Code.UNSUPPORTED_VERSION,
            f"The partner offers no newer OCPI version than {partner.version or ocpi.V221} "
            f"that we speak (it offers {', '.join(found.offered) or 'none'}).",
        )
    return partner_connect(
        organization=partner.organization,
        name=partner.name,
        versions_url=partner.versions_url,
        token_a="",
        our_versions_url=our_versions_url,
        partner=partner,
    )


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
        lock = SenderLock(partner_id)
        if not lock.take():
            return sent
        try:
            before = dict(seen)
            sent_now, go_on = deliveries_pass(partner_id, limit, seen, lock)
            sent += sent_now
        finally:
            lock.let_go()
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


@shared_task(name="roaming.deliveries_send")
def deliveries_send_task(partner_id: int) -> int:
    return deliveries_send(partner_id=partner_id)


def deliveries_send_later(partner_id: int) -> None:
    """Send the partner's waiting pushes from a task (call after the commit that queued them);
    if the task cannot be queued, the deliveries sweep sends them."""
    try:
        deliveries_send_task.delay(partner_id)
    except Exception:
        logger.exception("Could not queue the pushes of partner %s; the sweep will", partner_id)


def push_endpoint(partner: Partner, module: str) -> str:
    """Return the partner's URL we push `module` to: its Receiver interface, except the
    Payments module, whose terminals the CPO updates on the PTP's Sender interface (mod_payments
    "PATCH Terminal Method")."""
    role = ocpi.InterfaceRole.SENDER if module == "payments" else ocpi.InterfaceRole.RECEIVER
    return partner.endpoint(module, role)


def deliveries_pass(
    partner_id: int, limit: int, seen: dict[int, int], lock: SenderLock
) -> tuple[int, bool]:
    """One pass over the partner's pending pushes while `lock` is ours (renewed before each
    push: a pass that outlived it sends nothing more, the new holder does); record each push's
    revision in `seen`. Return how many were accepted and whether a new pass may help (not
    when the partner is gone or down, or the lock was lost)."""
    partner = Partner.objects.select_related("msp").filter(pk=partner_id).first()
    if partner is None or partner.state != Partner.State.CONNECTED:
        return 0, False
    now = timezone.now()
    if partner_resting(partner.pk, now=now):
        return 0, False  # down at its last try: everything waits for that push's retry
    held: set[str] = set()
    sent = 0
    kind = "access_point" if partner.role == Partner.Role.NAP else "ocpi"  # metrics' label
    pending = list(
        Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).order_by("id")[
            :limit
        ]
    )
    seen.update((delivery.pk, delivery.revision) for delivery in pending)
    identity = (
        EmspIdentity.objects.filter(organization_id=partner.organization_id).first()
        if any(delivery.module == "tokens" for delivery in pending)
        else None
    )
    emsp_party = (identity.country_code, identity.party_id) if identity is not None else None
    for delivery in pending:
        if delivery.object_key in held:
            continue
        if delivery.next_attempt_at > now:
            held.add(delivery.object_key)
            continue
        if not lock.keep():
            return sent, False  # another sender has the partner's pushes now
        base = push_endpoint(partner, delivery.module)
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
                # A DELETE (a Tariff withdrawn from an access point) has no body.
                body=None if delivery.method == "DELETE" else delivery.body,
                to_party=to_party,
                # Our cards go out from our eMSP party (mod_tokens: the eMSP is the Sender).
                from_party=emsp_party if delivery.module == "tokens" else None,
            )
        except client.PartnerCallError as exc:
            metrics.delivery(kind, ok=False)
            now = timezone.now()
            # A module the partner has no receiver for is about that push alone.
            down = bool(base or absolute) and partner_failing(exc)
            # A partner that said when to come back (429 or 503 with Retry-After) is asked
            # again then, not on our own back-off (ocpi.retry_after_seconds caps it).
            wait = exc.retry_after or ocpi.retry_delay(delivery.attempts + 1)
            Delivery.objects.filter(pk=delivery.pk).update(
                attempts=delivery.attempts + 1,
                last_error=exc.message[:500],
                next_attempt_at=now + timedelta(seconds=wait),
                partner_down=down,
            )
            Partner.objects.filter(pk=partner.pk).update(
                last_error=f"{delivery.method} {delivery.module}: {exc.message}"[:500],
                last_error_at=now,
                last_error_ocpi_status=exc.ocpi_status,
            )
            held.add(delivery.object_key)
            if down:
                return sent, False  # the partner is down: everything waits for it
            continue
        metrics.delivery(kind, ok=True)
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


def partner_failing(exc: client.PartnerCallError) -> bool:
    """Whether a failed push says the partner itself is failing, not this one push: unreachable
    or past our timeout, HTTP 5xx, 429 Too Many Requests, an answer that is not OCPI (a proxy's
    page), or OCPI 3xxx (status_codes: the server's own errors)."""
    http, code = exc.http_status, exc.ocpi_status
    if http is None or http >= 500 or http == 429:
        return True
    if 200 <= http < 300 and code is None:
        return True
    return code is not None and 3000 <= code < 4000


def _resting_partners(now: datetime) -> QuerySet[Delivery]:
    return Delivery.objects.filter(
        status=Delivery.Status.PENDING, partner_down=True, next_attempt_at__gt=now
    )


def partner_resting(partner_id: int, *, now: datetime) -> bool:
    """Whether the partner was down at its last try and that push's back-off is not over: its
    new pushes wait too, so a partner that stays down is asked at the back-off's pace (not at
    every status change, each costing up to the OCPI timeout to the partners served next)."""
    return _resting_partners(now).filter(partner_id=partner_id).exists()


def partner_resting_until(partner_id: int, *, now: datetime) -> datetime | None:
    """When a partner that was down is tried again (none of its pushes goes before), or None."""
    return (
        _resting_partners(now)
        .filter(partner_id=partner_id)
        .aggregate(until=Max("next_attempt_at"))["until"]
    )


def partners_with_due_deliveries(*, fresh_s: int = 30) -> list[int]:
    """Return the partners with pushes due: failed ones whose back-off is over, and new ones
    nobody sent within `fresh_s` (their own task is sending the others); not the partners that
    are down and resting."""
    now = timezone.now()
    due = Delivery.objects.filter(
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now,
        partner__state=Partner.State.CONNECTED,
    ).exclude(partner_id__in=_resting_partners(now).values("partner_id"))
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
    if charger is None or not charger.property_id or connector_id < 1:
        return []
    partners = _partners_receiving(selectors.property_of(charger).organization_id, "locations")
    now = timezone.now()
    # Roaming partners get published chargers; national access points (role NAP) publicly
    # accessible ones at locations not held back (selectors.chargers_for).
    visible: dict[bool, bool] = {}
    for partner in partners:
        nap = partner.role == Partner.Role.NAP
        if nap not in visible:
            visible[nap] = selectors.charger_visible_to(partner, charger, now=now)
    partners = [p for p in partners if visible[p.role == Partner.Role.NAP]]
    if not partners:
        return []
    evse = selectors.evse_facts(charger, connector_id, now=now)
    if evse is None:
        return []
    location_id = str(charger.property_id)
    object_key = f"evse:{location_id}/{evse.uid}"
    body = versions.of(ocpi.V221).evse_status(evse)  # the same PATCH in 2.2.1 and 2.3.0
    queued = []
    for partner in partners:
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
    "EMAID": Token.Type.EMAID,  # 2.3.0 (mod_tokens TokenType)
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
        _point_live(msp, partner, hub=True)
    return msp


def contract_route(organization_id: int, country_code: str, party_id: str) -> int | None:
    """The provider of an eMSP party that a connected hub of the operator says it connects
    (mod_hub_client_info), routed by that hub: a foreign contract of that party is asked live
    through it. None when no hub connects it (or only as offline, planned or suspended)."""
    hubs = Partner.objects.filter(
        organization_id=organization_id,
        role=Partner.Role.HUB,
        state=Partner.State.CONNECTED,
        hub_clients__country_code=country_code,
        hub_clients__party_id=party_id,
        hub_clients__role=ocpi.Role.EMSP,
        hub_clients__status=HubClient.Status.CONNECTED,
    ).order_by("pk")
    for hub in hubs:
        msp = party_msp(hub, country_code, party_id)
        if msp is not None:
            return msp.pk
    return None


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
        emsp_rules.check_not_ahead(body, now=timezone.now())
    except emsp_rules.BadObject as exc:
        raise bad(str(exc)) from None
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
        # One push of a party's card at a time: two at once of a new uid would each make the
        # card (the second an IntegrityError, a 500); the second now finds the first's.
        MobilityServiceProvider.objects.select_for_update(no_key=True).filter(pk=msp.pk).first()
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
        if pushed is not None and ocpi.parse_datetime(body["last_updated"]) < pushed.last_updated:
            # Older than the token we hold (a retry, or delivered late after a newer push): a
            # card blocked since is not made valid again. Taken (1000), nothing changes.
            return False
        token = (
            pushed.token
            if pushed is not None
            else (
                Token.objects.filter(msp=msp, uid_normalized=normalize_uid(uid)).first()
                or Token(msp=msp)
            )
        )
        # Another pushed token of the same card: another type, or the same uid spelt otherwise
        # ("abc1" after "ABC1": one card, as chargers read them).
        others = PushedToken.objects.filter(token_id=token.pk)
        if pushed is not None:
            others = others.exclude(pk=pushed.pk)
        other = others.first() if token.pk else None
        if other is not None:
            # One card per uid and provider for the authorization engine (chargers send only the uid).
            raise TokenRefused(
                ocpi.Code.INVALID_PARAMETERS,
                f"This uid is already pushed as the {other.type} token {other.uid} of this party.",
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
    published). No sweep sends a location whose data changed: a job the broker does not take is
    kept and sent once it answers."""
    queueing.on_commit("roaming.location_push", property_id)


def location_changed(property_id: int) -> None:
    """A location's published data changed (inside a transaction): after the commit, PUT it to
    the operator's partners (or REMOVE what is no longer published)."""
    _push_after_commit(property_id)


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
    "help_phone",
    "energy_mix",
)

# The fields of a parking place a caller may set (besides the chargers serving it).
PARKING_FIELDS = (
    "physical_reference",
    "vehicle_types",
    "restricted_to_type",
    "reservation_required",
    "max_vehicle_weight",
    "max_vehicle_height",
    "max_vehicle_length",
    "max_vehicle_width",
    "parking_space_length",
    "parking_space_width",
    "dangerous_goods_allowed",
    "direction",
    "drive_through",
    "time_limit",
    "roofed",
    "lighting",
    "refrigeration_outlet",
    "standards",
)


class InvalidParking(ValueError):
    """Parking places that cannot be saved, in words for the caller."""


@transaction.atomic
def parking_places_save(*, property_id: int, places: list[dict[str, Any]]) -> list[ParkingPlace]:
    """Set the location's parking places to `places` (each: PARKING_FIELDS, an optional `id` of
    an existing place of the location, `chargers`: [{"station_id", "evse_position"}] of this
    location); places left out are removed. Partners get the location after commit."""
    existing = {
        p.pk: p for p in ParkingPlace.objects.select_for_update().filter(property_id=property_id)
    }
    chargers = {
        c.station_id: c
        for c in Charger.objects.filter(property_id=property_id).only("pk", "station_id")
    }
    kept: list[ParkingPlace] = []
    for item in places:
        place = (
            existing.get(item["id"])
            if item.get("id") is not None
            else ParkingPlace(property_id=property_id)
        )
        if place is None:
            raise InvalidParking(f"Parking place {item['id']} is not one of this location's.")
        for name in PARKING_FIELDS:
            if name in item:
                value = item[name]
                setattr(
                    place,
                    name,
                    "" if value is None and name in ("physical_reference", "direction") else value,
                )
        place.full_clean(exclude=["property"])
        place.save()
        links = []
        for link in item.get("chargers") or []:
            charger = chargers.get(link["station_id"])
            if charger is None:
                raise InvalidParking(f"{link['station_id']} is not a charger of this location.")
            links.append(
                ParkingEvse(
                    parking=place, charger=charger, evse_position=link.get("evse_position") or ""
                )
            )
        if "chargers" in item:
            place.evses.all().delete()
            ParkingEvse.objects.bulk_create(links)
        kept.append(place)
    ParkingPlace.objects.filter(property_id=property_id).exclude(
        pk__in=[p.pk for p in kept]
    ).delete()
    _push_after_commit(property_id)
    return kept


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
    now = timezone.now()
    # A national access point is given other chargers than roaming partners (AFIR's publicly
    # accessible ones, held back while incomplete): one view per version and kind.
    by_view: dict[tuple[str, bool], dict | None] = {}
    for partner in partners:
        view = (partner.version, partner.role == Partner.Role.NAP)
        if view not in by_view:
            by_view[view] = selectors.location_get(
                partner, str(property_id), now=now, version=partner.version
            )
    queued = []
    for partner in partners:
        location = by_view[(partner.version, partner.role == Partner.Role.NAP)]
        if location is None:
            # Not given to it (any more): what it was told about gets REMOVED now.
            if locations_reconcile(partner_id=partner.pk):
                queued.append(partner.pk)
            continue
        queued.append(partner.pk)
        delivery_enqueue(
            partner=partner,
            module="locations",
            object_key=f"location:{property_id}",
            method="PUT",
            path=f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}/{property_id}",
            body=location,
            coalesce=True,
        )
    return queued


def tariffs_push_queue(*, partner_id: int, rate_ids: set[str] | None = None) -> int:
    """Queue a full PUT of each tariff the partner receives by push (a national access point:
    2.2.1 Tariffs have no PATCH), of `rate_ids` only when given, unless the last one queued is
    the same; return how many were queued."""
    partner = Partner.objects.filter(pk=partner_id, state=Partner.State.CONNECTED).first()
    if partner is None or not partner.endpoint("tariffs", ocpi.InterfaceRole.RECEIVER):
        return 0
    queued = 0
    prefix = f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}"
    for rate_id, tariff in selectors.tariffs_all(partner, now=timezone.now()):
        if rate_ids is not None and rate_id not in rate_ids:
            continue
        object_key = f"tariff:{rate_id}"
        if last_pushed(partner, object_key) == tariff:
            continue
        delivery_enqueue(
            partner=partner,
            module="tariffs",
            object_key=object_key,
            method="PUT",
            path=f"{prefix}/{rate_id}",
            body=tariff,
            coalesce=True,
        )
        queued += 1
    return queued


def tariffs_reconcile(*, partner_id: int) -> int:
    """DELETE at a national access point the Tariffs it holds that are no longer ours to give
    (the rate was deleted or has ended, or no charger it was given uses it); return how many
    were queued. Roaming partners pull tariffs and are left alone."""
    partner = Partner.objects.filter(
        pk=partner_id, state=Partner.State.CONNECTED, role=Partner.Role.NAP
    ).first()
    if partner is None or not partner.endpoint("tariffs", ocpi.InterfaceRole.RECEIVER):
        return 0
    current = {rate_id for rate_id, _ in selectors.tariffs_all(partner, now=timezone.now())}
    told: dict[str, str] = {}  # tariff object key -> the last method queued
    rows = (
        Delivery.objects.filter(partner=partner, module="tariffs")
        .order_by("id")
        .values_list("object_key", "method")
    )
    for object_key, method in rows.iterator():
        told[object_key] = method
    queued = 0
    prefix = f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}"
    for object_key, method in sorted(told.items()):
        rate_id = object_key.removeprefix("tariff:")
        if method != "PUT" or rate_id in current:
            continue
        delivery_enqueue(
            partner=partner,
            module="tariffs",
            object_key=object_key,
            method="DELETE",
            path=f"{prefix}/{rate_id}",
            body={},
        )
        queued += 1
    return queued


def log_cleanup(*, now: datetime | None = None, retention_days: int | None = None) -> int:
    """Delete OCPI log rows and sent pushes older than the log retention; return how many."""
    days = retention_days if retention_days is not None else settings.OCPP_LOG_RETENTION_DAYS
    cutoff = (now or timezone.now()) - timedelta(days=days)
    logs, _ = OcpiLog.objects.filter(created_at__lt=cutoff).delete()
    sent, _ = Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__lt=cutoff).delete()
    return logs + sent


def locations_resend(*, partner_id: int) -> int:
    """Queue every location the partner is given, whole (PUT), in its version; return how many.
    For a partner that moved to another version and an access point's full sync: it then holds
    them in that version's shapes. A PUT of the same location still waiting takes the new body."""
    partner = Partner.objects.filter(pk=partner_id, state=Partner.State.CONNECTED).first()
    if partner is None or not partner.endpoint("locations", ocpi.InterfaceRole.RECEIVER):
        return 0
    prefix = f"/{settings.OCPI_COUNTRY_CODE}/{settings.OCPI_PARTY_ID}"
    locations = selectors.locations_all(
        partner.organization_id, now=timezone.now(), version=partner.version, partner=partner
    )
    for location in locations:
        delivery_enqueue(
            partner=partner,
            module="locations",
            object_key=f"location:{location['id']}",
            method="PUT",
            path=f"{prefix}/{location['id']}",
            body=location,
            coalesce=True,
        )
    return len(locations)


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
    current = {
        loc["id"]: loc
        for loc in selectors.locations_all(
            partner.organization_id, now=now, version=partner.version, partner=partner
        )
    }
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

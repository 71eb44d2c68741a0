"""Roaming writes: partner registration both ways, credentials updates, unregistration."""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from authorization.models import MobilityServiceProvider
from backoffice.models import Organization

from . import client, ocpi
from .models import Partner

logger = logging.getLogger(__name__)

# What we implement, per module: (identifier, our interface role) -> URL name.
OUR_ENDPOINTS: list[tuple[str, str, str]] = [
    ("credentials", ocpi.InterfaceRole.SENDER, "roaming:credentials"),
    ("credentials", ocpi.InterfaceRole.RECEIVER, "roaming:credentials"),
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
        "roles": [{
            "role": ocpi.Role.CPO,
            "party_id": settings.OCPI_PARTY_ID,
            "country_code": settings.OCPI_COUNTRY_CODE,
            "business_details": {"name": settings.OCPP_CPO_NAME},
        }],
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
    if not isinstance(token, str) or not token or len(token) > 64 or not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise RegistrationError(ocpi.Code.INVALID_PARAMETERS, "token: 1 to 64 printable ASCII characters.")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise RegistrationError(ocpi.Code.INVALID_PARAMETERS, "url: the versions endpoint URL is required.")
    if not isinstance(roles, list) or not roles:
        raise RegistrationError(ocpi.Code.INVALID_PARAMETERS, "roles: at least one role is required.")
    for item in roles:
        if not isinstance(item, dict):
            continue
        role = str(item.get("role", "")).upper()
        cc, pid = str(item.get("country_code", "")).upper(), str(item.get("party_id", "")).upper()
        if role in (ocpi.Role.EMSP, ocpi.Role.HUB) and len(cc) == 2 and 1 <= len(pid) <= 3:
            details = item.get("business_details") if isinstance(item.get("business_details"), dict) else {}
            return token, url, PartnerParty(role, cc, pid, details or {})
    raise RegistrationError(
        ocpi.Code.NO_MATCHING_ENDPOINTS, "We are a CPO: the roles must include an EMSP or a HUB."
    )


def fetch_endpoints(*, partner: Partner | None, versions_url: str, token: str) -> tuple[str, dict]:
    """Return (version, {module: {role: url}}) of the partner's 2.2.1 endpoints.

    Raises RegistrationError 3001 when its API cannot be used, 3002 without version 2.2.1.
    """
    try:
        versions = client.call(partner=partner, method="GET", url=versions_url, token=token, module="versions").data
    except client.PartnerCallError as exc:
        raise RegistrationError(ocpi.Code.CLIENT_API_UNUSABLE, f"GET versions failed: {exc.message}") from None
    detail_url = next(
        (v.get("url") for v in versions or [] if isinstance(v, dict) and v.get("version") == ocpi.VERSION), None
    )
    if not isinstance(detail_url, str):
        raise RegistrationError(ocpi.Code.UNSUPPORTED_VERSION, f"The partner offers no OCPI {ocpi.VERSION}.")
    try:
        details = client.call(partner=partner, method="GET", url=detail_url, token=token, module="versions").data
    except client.PartnerCallError as exc:
        raise RegistrationError(ocpi.Code.CLIENT_API_UNUSABLE, f"GET version details failed: {exc.message}") from None
    endpoints: dict[str, dict[str, str]] = {}
    for item in (details or {}).get("endpoints") or []:
        if isinstance(item, dict) and isinstance(item.get("identifier"), str) and isinstance(item.get("url"), str):
            role = str(item.get("role") or ocpi.InterfaceRole.RECEIVER).upper()
            endpoints.setdefault(item["identifier"], {})[role] = item["url"]
    if "credentials" not in endpoints:
        raise RegistrationError(ocpi.Code.NO_MATCHING_ENDPOINTS, "The partner has no credentials endpoint.")
    return ocpi.VERSION, endpoints


def _link_msp(partner: Partner, party: PartnerParty) -> None:
    """Make the partner's party the operator's MobilityServiceProvider (one row per party)."""
    msp, _ = MobilityServiceProvider.objects.get_or_create(
        organization=partner.organization, country_code=party.country_code, party_id=party.party_id,
        defaults={"name": str(party.business_details.get("name") or partner.name)[:200]},
    )
    # Real-time authorization (mod_tokens "POST authorize") goes to the partner's tokens
    # sender; authorization.services sends `Token <live_validation_token>`, and OCPI 2.2.1
    # wants the credentials token Base64-encoded there.
    msp.live_validation_url = partner.endpoint("tokens", ocpi.InterfaceRole.SENDER)
    msp.live_validation_token = base64.b64encode(partner.outgoing_token.encode()).decode()
    msp.save(update_fields=["live_validation_url", "live_validation_token"])
    Partner.objects.filter(msp=msp).exclude(pk=partner.pk).update(msp=None)
    partner.msp = msp


def _connect(partner: Partner, *, party: PartnerParty, version: str, endpoints: dict, versions_url: str,
             outgoing_token: str) -> None:
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
def partner_invite(*, organization: Organization, name: str, role: str = Partner.Role.EMSP) -> tuple[Partner, str]:
    """Create a partner and return it with the token A to hand over (shown once, kept hashed)."""
    token_a = ocpi.new_credentials_token()
    partner = Partner.objects.create(
        organization=organization, name=name, role=role, state=Partner.State.PENDING,
        token_a_hash=ocpi.token_hash(token_a),
    )
    return partner, token_a


def credentials_receive(*, partner: Partner, body: Any, versions_url: str, update: bool) -> dict[str, Any]:
    """Register (POST) or update (PUT) a partner calling us; return our new credentials.

    Fetches the partner's endpoints with its token first (no database transaction is held
    during those calls), then issues a new token C and keeps only its hash.
    """
    token, their_versions_url, party = parse_credentials(body)
    version, endpoints = fetch_endpoints(partner=partner, versions_url=their_versions_url, token=token)
    token_c = ocpi.new_credentials_token()
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        locked.incoming_token_hash = ocpi.token_hash(token_c)
        _connect(locked, party=party, version=version, endpoints=endpoints, versions_url=their_versions_url,
                 outgoing_token=token)
    logger.info("OCPI partner %s %s", partner.pk, "updated its credentials" if update else "registered")
    return our_credentials(token=token_c, versions_url=versions_url)


@transaction.atomic
def partner_unregister(*, partner: Partner) -> None:
    """Forget both tokens: the partner can no longer call us, nor we it (credentials DELETE)."""
    Partner.objects.filter(pk=partner.pk).update(
        state=Partner.State.UNREGISTERED, incoming_token_hash="", token_a_hash="", outgoing_token="",
        updated_at=timezone.now(),
    )
    if partner.msp_id:
        MobilityServiceProvider.objects.filter(pk=partner.msp_id).update(live_validation_url="", live_validation_token="")


# -- we register with them (they issued token A) -------------------------------------------------


def partner_connect(
    *, organization: Organization, name: str, versions_url: str, token_a: str, our_versions_url: str,
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
    if partner is None:
        partner = Partner.objects.create(organization=organization, name=name, state=Partner.State.PENDING)
    Partner.objects.filter(pk=partner.pk).update(
        incoming_token_hash=ocpi.token_hash(token_b), versions_url=versions_url, endpoints=endpoints,
    )
    partner.refresh_from_db()
    method = "PUT" if partner.registered_at else "POST"
    try:
        answer = client.call(
            partner=partner, method=method, url=credentials_url, token=token_a if method == "POST" else partner.outgoing_token,
            module="credentials", body=our_credentials(token=token_b, versions_url=our_versions_url),
        )
        token_c, their_versions_url, party = parse_credentials(answer.data)
    except client.PartnerCallError as exc:
        Partner.objects.filter(pk=partner.pk).update(
            last_error=f"Registration failed: {exc.message}"[:500], last_error_at=timezone.now(),
            last_error_ocpi_status=exc.ocpi_status,
        )
        raise RegistrationError(ocpi.Code.CLIENT_API_UNUSABLE, exc.message) from None
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        _connect(locked, party=party, version=version, endpoints=endpoints, versions_url=their_versions_url,
                 outgoing_token=token_c)
    return locked

"""Our eMSP role: the organization's eMSP identity, its cards pushed to partner CPOs (mod_tokens
Receiver on their side) and kept current, and the Tokens Sender interface they call (the list,
real-time authorization) answered from the same decision as at home.

Writes are atomic; pushes go through the outbox (`services.delivery_enqueue`), which retries
with back-off until the CPO accepts them. Every read and write is scoped to the partner's
operator: a CPO partner sees only the cards of the organization it is connected to.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from authorization.decisions import ChargerFacts, Context, decide
from authorization.models import Token
from authorization.services import token_facts
from backoffice.models import Organization

from . import emsp_rules, mapping, ocpi, services, versions
from .models import EmspIdentity, Partner

logger = logging.getLogger(__name__)


# -- identity ----------------------------------------------------------------------------------


@transaction.atomic
def identity_save(
    *,
    organization: Organization,
    country_code: str,
    party_id: str,
    emaid_prefix: str = "",
    business_name: str = "",
    currency: str = "",
) -> EmspIdentity:
    """Set the organization's eMSP identity; raise emsp_rules.InvalidIdentity (by field) when OCPI
    or the eMAID format does not allow it, or another organization holds the party."""
    checked = emsp_rules.check_identity(
        country_code=country_code,
        party_id=party_id,
        emaid_prefix=emaid_prefix,
        business_name=business_name or organization.name,
    )
    taken = (
        EmspIdentity.objects.filter(country_code=checked.country_code, party_id=checked.party_id)
        .exclude(organization=organization)
        .exists()
    )
    if taken:
        raise emsp_rules.InvalidIdentity(
            {"party_id": "This country code and party id belong to another organization."}
        )
    identity, _ = EmspIdentity.objects.update_or_create(
        organization=organization,
        defaults={
            "country_code": checked.country_code,
            "party_id": checked.party_id,
            "emaid_prefix": checked.emaid_prefix,
            "business_name": checked.business_name,
            # Kept when not given (a PUT that only renames keeps how drivers are billed).
            **({"currency": currency.upper()} if currency else {}),
        },
    )
    # Every card's contract id and party change with it: partner CPOs get them again.
    organization_id = organization.pk
    transaction.on_commit(lambda: _push_all_of(organization_id))
    return identity


def _push_all_of(organization_id: int) -> None:
    from . import schedule

    for partner_id in _cpo_partners(organization_id).values_list("pk", flat=True):
        schedule.later(schedule.EMSP_TOKENS_PUSH_ALL, partner_id)


# -- our cards ------------------------------------------------------------------------------------


def issued_cards(organization_id: int) -> QuerySet[Token]:
    """The organization's own cards that other networks get: its RFID, app and other cards, not
    a provider's cards, a guest's one-time token or a stay's access code."""
    return Token.objects.filter(
        organization_id=organization_id,
        msp__isnull=True,
        reservation__isnull=True,
        type__in=list(emsp_rules.TOKEN_TYPES),
    )


def contract_ids_of(cards: list[tuple[int, int | None]]) -> dict[int, str]:
    """The contract ids (eMAIDs) of own cards, as other networks know them
    (authorization.providers.contract_ids): for organizations with an eMSP identity, and only
    the card types it issues (a guest's token or a contract token has none of its own)."""
    prefixes = dict(
        EmspIdentity.objects.filter(
            organization_id__in={organization_id for _, organization_id in cards}
        ).values_list("organization_id", "emaid_prefix")
    )
    if not prefixes:
        return {}
    issued = set(
        Token.objects.filter(
            pk__in=[card_id for card_id, organization_id in cards if organization_id in prefixes],
            msp__isnull=True,
            reservation__isnull=True,
            type__in=list(emsp_rules.TOKEN_TYPES),
        ).values_list("pk", flat=True)
    )
    found: dict[int, str] = {}
    for card_id, organization_id in cards:
        if card_id in issued and organization_id is not None:
            try:
                found[card_id] = emsp_rules.contract_id(prefixes[organization_id], card_id)
            except ValueError:  # a card number the prefix leaves no room for: none is issued
                continue
    return found


def card_of_contract(emaid: str) -> int | None:
    """Our card whose contract id an eMAID is (authorization.providers.contract_card): the
    identity its country and party name, the card number after that identity's prefix."""
    plain = emaid.strip().upper().replace("-", "")
    identity = EmspIdentity.objects.filter(country_code=plain[:2], party_id=plain[2:5]).first()
    if identity is None:
        return None
    number = emsp_rules.card_number_of(plain, identity.emaid_prefix)
    if number is None:
        return None
    return (
        issued_cards(identity.organization_id)
        .filter(pk=number)
        .values_list("pk", flat=True)
        .first()
    )


def cards_changed_since(since: datetime, *, now: datetime) -> list[int]:
    """Return our cards (of organizations with an eMSP identity and a CPO partner) changed since
    `since`, or whose expiry passed since then: what the periodic sweep pushes again."""
    organizations = (
        Partner.objects.filter(
            state=Partner.State.CONNECTED, organization__emsp_identity__isnull=False
        )
        .exclude(cpo_party_id="")
        .values_list("organization_id", flat=True)
    )
    return list(
        Token.objects.filter(
            organization_id__in=organizations,
            msp__isnull=True,
            reservation__isnull=True,
            type__in=list(emsp_rules.TOKEN_TYPES),
        )
        .filter(Q(updated_at__gte=since) | Q(expires_at__gt=since, expires_at__lte=now))
        .values_list("pk", flat=True)[:5000]
    )


def cpo_partner_ids() -> list[int]:
    """Return every connected CPO partner (of any organization): what the network sweep pulls."""
    return list(
        Partner.objects.filter(state=Partner.State.CONNECTED)
        .exclude(cpo_party_id="")
        .values_list("pk", flat=True)
    )


def _cpo_partners(organization_id: int) -> QuerySet[Partner]:
    return Partner.objects.filter(
        organization_id=organization_id, state=Partner.State.CONNECTED
    ).exclude(cpo_party_id="")


def token_facts_of(token: Token, identity: EmspIdentity) -> mapping.IssuedTokenFacts:
    """Return the facts of our card as a Token object: our party, its contract id, and whether
    it may charge (blocked, invalid or expired cards are `valid: false`)."""
    now = timezone.now()
    expired = token.expires_at is not None and token.expires_at <= now
    return mapping.IssuedTokenFacts(
        party=mapping.Party(identity.country_code, identity.party_id),
        uid=token.uid,
        type=emsp_rules.issued_type(token.type) or "OTHER",
        contract_id=emsp_rules.contract_id(identity.emaid_prefix, token.pk),
        issuer=identity.business_name,
        valid=token.valid and not token.blocked and not expired,
        last_updated=token.updated_at,
        visual_number=token.label,
        group_id=token.parent_id_tag,
    )


def _token_path(facts: mapping.IssuedTokenFacts) -> str:
    # mod_tokens Receiver: {tokens_endpoint_url}/{country_code}/{party_id}/{token_uid}[?type=]
    return f"/{facts.party.country_code}/{facts.party.party_id}/{facts.uid}?type={facts.type}"


def _queue(partner: Partner, token: Token, identity: EmspIdentity) -> None:
    facts = token_facts_of(token, identity)
    services.delivery_enqueue(
        partner=partner,
        module="tokens",
        object_key=f"token:{token.pk}",
        method="PUT",
        path=_token_path(facts),
        body=versions.of(partner.version).token(facts),
        # A card's newer state replaces one still waiting: the CPO needs the state now.
        coalesce=True,
        to_party=(partner.cpo_country_code, partner.cpo_party_id),
    )


def _receiving(organization_id: int) -> list[Partner]:
    return [
        p
        for p in _cpo_partners(organization_id)
        if p.endpoint("tokens", ocpi.InterfaceRole.RECEIVER)
    ]


def token_push_queue(*, token_id: int) -> list[int]:
    """Queue our card's current state (PUT Token) for every CPO partner of its organization;
    return the partners with something queued. A card that is not ours to issue, or an
    organization without an eMSP identity, queues nothing."""
    token = Token.objects.filter(pk=token_id).first()
    if token is None or token.organization_id is None:
        return []
    if not issued_cards(token.organization_id).filter(pk=token_id).exists():
        return []
    identity = EmspIdentity.objects.filter(organization_id=token.organization_id).first()
    if identity is None:
        return []
    partners = _receiving(token.organization_id)
    with transaction.atomic():
        for partner in partners:
            _queue(partner, token, identity)
    return [p.pk for p in partners]


def tokens_push_all(*, partner_id: int) -> int:
    """Queue every card of the partner's organization for the partner (a new CPO partner, or our
    identity changed); return how many."""
    partner = Partner.objects.filter(pk=partner_id, state=Partner.State.CONNECTED).first()
    if partner is None or not partner.is_cpo:
        return 0
    if not partner.endpoint("tokens", ocpi.InterfaceRole.RECEIVER):
        return 0
    identity = EmspIdentity.objects.filter(organization_id=partner.organization_id).first()
    if identity is None:
        return 0
    cards = list(issued_cards(partner.organization_id).order_by("pk"))
    with transaction.atomic():
        for token in cards:
            _queue(partner, token, identity)
    return len(cards)


# -- the Tokens Sender interface partner CPOs call ------------------------------------------------


def _caller_identity(partner: Partner) -> EmspIdentity | None:
    if not partner.is_cpo:
        return None
    return EmspIdentity.objects.filter(organization_id=partner.organization_id).first()


def tokens_page(partner: Partner, page: ocpi.Page, *, version: str) -> tuple[int, list[dict]]:
    """Return (total, this page) of our cards for a CPO partner, oldest change first; a partner
    that is not a CPO, or an operator without an eMSP identity, has none."""
    identity = _caller_identity(partner)
    if identity is None:
        return 0, []
    cards = issued_cards(partner.organization_id)
    if page.date_from is not None:
        cards = cards.filter(updated_at__gte=page.date_from)
    if page.date_to is not None:
        cards = cards.filter(updated_at__lt=page.date_to)
    total = cards.count()
    chosen = cards.order_by("updated_at", "pk")[page.offset : page.offset + page.limit]
    dialect = versions.of(version)
    return total, [dialect.token(token_facts_of(token, identity)) for token in chosen]


@dataclass(frozen=True)
class Authorization:
    """A real-time authorization answer (mod_tokens "AuthorizationInfo object")."""

    data: dict[str, Any]


class UnknownToken(Exception):
    """Not one of the partner's operator's cards (404 + 2004)."""


def partner_charger_facts(partner: Partner, location_id: str) -> ChargerFacts:
    """The partner's charger as the decision engine sees it: another operator's public charger
    with roaming on. Its license is the partner's business, not ours: taken as active today."""
    return ChargerFacts(
        station_id=f"{partner.cpo_country_code}*{partner.cpo_party_id}*{location_id}"[:48],
        organization_id=None,
        license_valid_until=timezone.now().date(),
        access_mode="public",
        roaming_enabled=True,
        guest_charging_enabled=False,
    )


def authorize(
    *, partner: Partner, uid: str, ocpi_type: str, location: Any, version: str
) -> Authorization:
    """Answer a CPO partner's real-time authorization of our card `uid` (mod_tokens "POST
    Method"): the decision engine's answer for the card at a roaming charger, as AllowedType.
    Raise UnknownToken when it is not a card of the partner's operator we issued."""
    identity = _caller_identity(partner)
    card_type = emsp_rules.card_type_of(ocpi_type)
    if identity is None or card_type is None:
        raise UnknownToken
    token = (
        issued_cards(partner.organization_id)
        .filter(uid__iexact=uid, type=card_type)
        .order_by("pk")
        .first()
    )
    if token is None:
        raise UnknownToken
    location_id = location.get("location_id") if isinstance(location, dict) else None
    charger = partner_charger_facts(partner, str(location_id or "-"))
    decision = decide(token_facts(token), charger, Context.LOCAL, now=timezone.now())
    allowed = emsp_rules.allowed_of(decision.status.value)
    data: dict[str, Any] = {
        "allowed": allowed,
        "token": versions.of(version).token(token_facts_of(token, identity)),
    }
    if isinstance(location_id, str) and allowed == "ALLOWED":
        # Only the EVSEs the driver may use are returned: all of those asked about.
        data["location"] = {
            "location_id": location_id[:36],
            "evse_uids": [str(e)[:36] for e in location.get("evse_uids") or []],
        }
    if allowed == "ALLOWED":
        data["authorization_reference"] = uuid.uuid4().hex
    return Authorization(data)

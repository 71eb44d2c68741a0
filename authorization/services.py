"""Authorization: gather facts, ask MSPs live, record every decision; token and group changes."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backoffice import db, outbound
from stays.models import Reservation
from stays.selectors import reservation_access

from .decisions import (
    NEEDS_MSP,
    OCPI_ALLOWED,
    ChargerFacts,
    Context,
    Decision,
    MspAnswer,
    StayFacts,
    TokenFacts,
    decide,
    emaid_issuer,
    emaid_token_type,
    unknown_contract_decision,
)
from .models import AuthorizationDecision, MobilityServiceProvider, Token, TokenGroup, normalize_uid
from .msp_client import msp_async_client, msp_http_client
from .providers import contract_card, contract_route
from .signals import token_groups_changed

logger = logging.getLogger(__name__)

MSP_CACHE_SECONDS = getattr(settings, "MSP_POSITIVE_CACHE_SECONDS", 300)

# How many sessions a card has open now (for single-session cards).
ActiveSessionsOf = Callable[[Token], int]


def token_find(uid: str, organization_id: int | None) -> Token | None:
    """Return the token a charger of `organization_id` should use for `uid`.

    Own cards first, then cards of this operator's roaming partners (MSPs), then cards
    of other organizations on the platform.
    """
    key = normalize_uid(uid)
    return token_choose(
        list(
            Token.objects.select_related("msp")
            .filter(uid_normalized=key)
            .order_by("pk")[:TOKEN_CANDIDATES]
        ),
        organization_id,
    )


TOKEN_CANDIDATES = 20  # tokens of one UID looked at (several MSPs and organizations may share one)


def token_choose(candidates: list[Token], organization_id: int | None) -> Token | None:
    """`token_find`'s choice among the tokens of one UID (in pk order, their MSP loaded)."""
    if not candidates:
        return None

    def rank(token: Token) -> int:
        if organization_id is not None and token.organization_id == organization_id:
            return 0
        if token.msp is not None and token.msp.organization_id == organization_id:
            return 1
        return 2

    return min(candidates, key=rank)


def token_facts(
    token: Token, *, active_sessions: int = 0, group_ids: frozenset[int] | None = None
) -> TokenFacts:
    msp = token.msp
    live = bool(msp and msp.live_validation_url)
    on_timeout_accept = bool(msp and msp.on_timeout == MobilityServiceProvider.OnTimeout.ACCEPT)
    if token.whitelist:
        # OCPI 2.2.1 WhitelistType (mod_tokens): ALWAYS and ALLOWED are whitelisted (we choose not
        # to ask for ALLOWED), NEVER is always asked live and refused when the provider cannot
        # answer, ALLOWED_OFFLINE is asked live and accepted when it cannot.
        live = live and token.whitelist in (Token.Whitelist.NEVER, Token.Whitelist.ALLOWED_OFFLINE)
        on_timeout_accept = token.whitelist == Token.Whitelist.ALLOWED_OFFLINE
    return TokenFacts(
        uid=token.uid,
        valid=token.valid,
        blocked=token.blocked,
        expires_at=token.expires_at,
        organization_id=token.organization_id,
        msp_id=token.msp_id,
        msp_blocked=bool(msp and msp.blocked),
        msp_live_validation=live,
        msp_on_timeout_accept=on_timeout_accept,
        group_ids=group_ids
        if group_ids is not None
        else frozenset(token.groups.values_list("pk", flat=True)),
        allowed_station_ids=frozenset(token.allowed_station_ids or []),
        single_session=token.single_session,
        active_sessions=active_sessions,
        is_guest=token.type == Token.Type.GUEST,
        is_driver=token.type == Token.Type.GUEST and token.label == Token.DRIVER_SESSION_LABEL,
        stay=stay_facts_of(token.reservation) if token.reservation is not None else None,
        parent_id_tag=token.parent_id_tag,
    )


def stay_facts_of(reservation: Reservation, *, kwh_used: float | None = None) -> StayFacts:
    """Return the decision facts of a reservation (kwh_used: energy its sessions already took)."""
    access = reservation_access(reservation)
    kwh_left = None
    if access.charging_included and access.kwh_cap is not None and kwh_used is not None:
        kwh_left = float(access.kwh_cap) - kwh_used
    return StayFacts(
        reservation_id=access.reservation_id,
        confirmed=access.confirmed,
        valid_from=access.valid_from,
        valid_until=access.valid_until,
        property_id=access.property_id,
        unit_id=access.unit_id,
        shared_chargers=access.shared_chargers,
        kwh_left=kwh_left,
    )


def decision_record(**kwargs: Any) -> AuthorizationDecision:
    """Record a decision (`decision_build`'s keyword arguments)."""
    record = decision_build(**kwargs)
    record.save(force_insert=True)
    return record


def decision_build(
    *,
    decision: Decision,
    uid: str,
    token_id: int | None,
    organization_id: int | None,
    station_id: str,
    connector_id: int | None,
    context: Context,
    msp_id: int | None = None,
    msp_response: dict | None = None,
    msp_latency_ms: int | None = None,
    ocpp_unique_id: str = "",
) -> AuthorizationDecision:
    """The record of a decision, not saved yet (a batch of starts inserts many at once)."""
    return AuthorizationDecision(
        uid=uid[:36],
        uid_normalized=normalize_uid(uid)[:36],
        token_id=token_id,
        organization_id=organization_id,
        station_id=station_id,
        connector_id=connector_id,
        context=str(context),
        status=str(decision.status),
        reason=decision.reason,
        step=decision.step,
        message=decision.message,
        msp_id=msp_id,
        msp_response=msp_response,
        msp_latency_ms=msp_latency_ms,
        ocpp_unique_id=ocpp_unique_id[:36],
        reservation_id=decision.reservation_id,
    )


def _msp_cache_key(msp_id: int, uid: str) -> str:
    return f"msp-ok:{msp_id}:{normalize_uid(uid)}"


def live_headers(msp: MobilityServiceProvider) -> dict[str, str]:
    """The headers of a request to the provider's tokens endpoint (OCPI transport_and_format):
    its token, a request and correlation id, and through a hub the routing headers, from our
    CPO party to the provider's."""
    headers = {"X-Request-ID": str(uuid.uuid4()), "X-Correlation-ID": str(uuid.uuid4())}
    if msp.live_validation_token:
        headers["Authorization"] = f"Token {msp.live_validation_token}"
    if msp.via_hub:
        headers.update(
            {
                "OCPI-to-country-code": msp.country_code,
                "OCPI-to-party-id": msp.party_id,
                "OCPI-from-country-code": settings.OCPI_COUNTRY_CODE,
                "OCPI-from-party-id": settings.OCPI_PARTY_ID,
            }
        )
    return headers


# HTTP statuses of a provider that refuses OUR credentials (its token for us is unknown, rotated
# or revoked, or it unregistered us): an answer about us, not about the card.
CREDENTIALS_REFUSED_STATUSES = (401, 403)


def credentials_refused_words(http_status: int) -> str:
    """What the decision and Mobility Providers say of a provider that refused our credentials."""
    return (
        f"The provider refused our credentials (HTTP {http_status}): it said nothing about the "
        "card. Check or renew the credentials of this provider."
    )


def msp_live_error_record(msp_id: int, words: str, at: datetime) -> None:
    """Keep a provider's refusal of our credentials on it, for Mobility Providers."""
    MobilityServiceProvider.objects.filter(pk=msp_id).update(
        live_error=words[:500], live_error_at=at
    )


def msp_live_error_clear(msp_id: int, asked_at: datetime) -> None:
    """The provider answered about a card: its refusal of our credentials recorded before this
    ask is over (one recorded by an ask that started later stays)."""
    MobilityServiceProvider.objects.filter(pk=msp_id, live_error_at__lte=asked_at).update(
        live_error="", live_error_at=None
    )


def _provider_failed(http_status: int, payload: Any) -> str:
    """Words for an answer that says the provider could not check the card (HTTP 5xx, 429, a
    2xx page that is not OCPI, OCPI 3xxx: status_codes' server errors); "" for one that
    decides (a redirect, never followed, or a 4xx other than 401, 403 and 429 stays a
    refusal; 401 and 403 are a refusal of our credentials, `msp_validate_live`)."""
    if http_status >= 500 or http_status == 429:
        return f"The provider could not answer the live check (HTTP {http_status})."
    if 200 <= http_status < 300 and not isinstance(payload, dict):
        return f"The provider could not answer the live check (HTTP {http_status}, not OCPI)."
    code = payload.get("status_code") if isinstance(payload, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 3000 <= code < 4000:
        return f"The provider could not answer the live check (HTTP {http_status}, OCPI {code})."
    return ""


async def msp_validate_live(
    msp: MobilityServiceProvider,
    uid: str,
    *,
    location_id: str,
    station_id: str,
    token_type: str = "RFID",
) -> tuple[MspAnswer, dict | None, int]:
    """Ask the MSP with OCPI real-time authorization; return (answer, body, latency ms).

    HTTP 401/403 is CREDENTIALS_REFUSED (the provider refused us, not the card), kept on the
    provider with its time (`live_error`) until its next answer about a card empties it."""
    # The UID is one path segment: a "/", "?" or "#" in it must not reshape the URL.
    url = f"{msp.live_validation_url.rstrip('/')}/{quote(uid, safe='')}/authorize"
    body = {"location_id": location_id, "evse_uids": [station_id]}
    headers = live_headers(msp)
    asked_at = timezone.now()
    started = time.monotonic()
    try:
        async with msp_async_client(timeout=msp.timeout_s) as client:
            response = await client.post(
                url, params={"type": token_type}, json=body, headers=headers
            )
    except httpx.TimeoutException:
        return MspAnswer.TIMEOUT, None, int((time.monotonic() - started) * 1000)
    except httpx.HTTPError as exc:
        logger.warning("MSP %s unreachable: %s", msp.pk, exc)
        return (
            MspAnswer.TIMEOUT,
            {"error": outbound.failure_words(exc, "the provider")},
            int((time.monotonic() - started) * 1000),
        )
    latency = int((time.monotonic() - started) * 1000)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    said = payload if isinstance(payload, dict) else response.text[:500]
    if response.status_code in CREDENTIALS_REFUSED_STATUSES:
        words = credentials_refused_words(response.status_code)
        await db.run(msp_live_error_record, msp.pk, words, timezone.now())
        refused = {"error": words, "http_status": response.status_code, "body": said}
        return MspAnswer.CREDENTIALS_REFUSED, refused, latency
    failed = _provider_failed(response.status_code, payload)
    if failed:
        # Not a refusal of the card: the provider's on-timeout policy decides, as for silence.
        return MspAnswer.TIMEOUT, {"error": failed, "body": said}, latency
    if msp.live_error and not 300 <= response.status_code < 400:
        # It answered about the card (an OCPI answer, or a 404 for a token it does not know):
        # it took our credentials this time, so its last refusal of them is over.
        await db.run(msp_live_error_clear, msp.pk, asked_at)
    if payload is None:
        payload = {"http_status": response.status_code, "body": response.text[:500]}
    allowed = ""  # none: a malformed answer
    if isinstance(payload, dict) and isinstance(payload.get("data"), dict):
        allowed = payload["data"].get("allowed")
    # Only OCPI's AllowedType values: a provider answering "TIMEOUT" (or our own readings)
    # has sent a malformed answer, not one the timeout policy may accept.
    known = isinstance(allowed, str) and allowed in OCPI_ALLOWED
    answer = MspAnswer(allowed) if known else MspAnswer.NOT_ALLOWED
    return answer, payload if isinstance(payload, dict) else {"body": payload}, latency


async def authorize(
    *,
    uid: str,
    charger: ChargerFacts,
    context: Context,
    location_id: str = "",
    connector_id: int | None = None,
    ocpp_unique_id: str = "",
    active_sessions_of: ActiveSessionsOf | None = None,
    now: datetime | None = None,
) -> Decision:
    """Decide whether `uid` may charge at `charger`, asking its MSP live if needed, and record it.

    The MSP is asked with an async HTTP client, so waiting for it never holds a database
    thread or delays any other charger.
    """
    token = await db.run(token_with_facts, uid, charger.organization_id, active_sessions_of)
    decision, record, _ = await decide_live(
        uid=uid,
        charger=charger,
        context=context,
        token=token,
        location_id=location_id,
        connector_id=connector_id,
        ocpp_unique_id=ocpp_unique_id,
        now=now,
    )
    await db.run(decision_record, **record)
    return decision


async def decide_live(
    *,
    uid: str,
    charger: ChargerFacts,
    context: Context,
    token: tuple[Token, TokenFacts] | None,
    location_id: str = "",
    connector_id: int | None = None,
    ocpp_unique_id: str = "",
    now: datetime | None = None,
    contract: bool = False,
) -> tuple[Decision, dict, tuple[Token, TokenFacts] | None]:
    """Decide with the token already looked up (`token_with_facts`), asking its MSP live if
    needed; return the decision, the keyword arguments of its `decision_record` (for a caller
    that records it in the same transaction as what it decides: a StartTransaction) and the
    card decided on (`token`, or the card a contract turned out to be).

    `contract`: `uid` is a Plug & Charge contract's eMAID. One no card of ours holds is asked
    live of the provider its eMAID names, when that provider is a roaming partner of the
    charger's operator (OCPI 2.3.0 mod_tokens: EMAID tokens are not pushed; the CPO learns the
    issuer from the eMAID and asks it in real time)."""
    now = now or timezone.now()
    facts = token[1] if token else None
    decision = decide(facts, charger, context, now=now)
    msp_id = msp_response = msp_latency = None
    if contract and token is None and decision.reason == "unknown_token":
        token = await db.run(contract_card_facts, uid)
        if token is not None:  # the contract of one of our own cards: decided as that card
            decision = decide(token[1], charger, context, now=now)
        else:
            asked = await _ask_contract_issuer(
                uid, charger, context, location_id=location_id, now=now
            )
            if asked is not None:
                decision, token, msp_id, msp_response, msp_latency = asked
    elif decision.reason == NEEDS_MSP:
        assert token is not None
        token_obj = token[0]
        msp = token_obj.msp
        assert msp is not None  # only a card of an MSP needs it asked
        msp_id = msp.pk
        if cache.get(_msp_cache_key(msp.pk, uid)):
            answer, msp_response, msp_latency = MspAnswer.ALLOWED, {"cached": True}, 0
        else:
            answer, msp_response, msp_latency = await msp_validate_live(
                msp, token_obj.uid, location_id=location_id, station_id=charger.station_id
            )
            if answer == MspAnswer.ALLOWED:
                cache.set(_msp_cache_key(msp.pk, uid), True, MSP_CACHE_SECONDS)
        decision = decide(facts, charger, context, now=now, msp_answer=answer)
    elif token and token[0].msp_id:
        msp_id = token[0].msp_id
    record = dict(
        decision=decision,
        uid=uid,
        token_id=token[0].pk if token else None,
        organization_id=charger.organization_id,
        station_id=charger.station_id,
        connector_id=connector_id,
        context=context,
        msp_id=msp_id,
        msp_response=msp_response,
        msp_latency_ms=msp_latency,
        ocpp_unique_id=ocpp_unique_id,
    )
    return decision, record, token


async def _ask_contract_issuer(
    uid: str, charger: ChargerFacts, context: Context, *, location_id: str, now: datetime
) -> tuple[Decision, tuple[Token, TokenFacts] | None, int, dict | None, int | None] | None:
    """Ask the provider a foreign eMAID names, live; None when it names no partner of ours.
    Returns the decision, the card kept from the answer, and what the record keeps of the ask."""
    issuer = await db.run(contract_issuer, uid, charger.organization_id)
    if issuer is None:
        return None
    if issuer.blocked:
        return (
            unknown_contract_decision(MspAnswer.NOT_ALLOWED, issuer_blocked=True),
            None,
            issuer.pk,
            None,
            None,
        )
    answer, body, latency = await msp_validate_live(
        issuer,
        uid,
        location_id=location_id,
        station_id=charger.station_id,
        token_type=emaid_token_type(issuer.ocpi_version),
    )
    kept = None
    if answer not in (MspAnswer.TIMEOUT, MspAnswer.CREDENTIALS_REFUSED):
        kept = await db.run(token_from_issuer, msp_id=issuer.pk, uid=uid, answer=body)
    if kept is None:
        return unknown_contract_decision(answer), None, issuer.pk, body, latency
    if answer == MspAnswer.ALLOWED:
        cache.set(_msp_cache_key(issuer.pk, uid), True, MSP_CACHE_SECONDS)
    # The live answer decides, whatever whitelist the provider gave the card for later.
    facts = replace(kept[1], msp_live_validation=True)
    decision = decide(facts, charger, context, now=now, msp_answer=answer)
    return decision, kept, issuer.pk, body, latency


def contract_card_facts(uid: str) -> tuple[Token, TokenFacts] | None:
    """The own card a contract id (eMAID) belongs to, as other networks know it, with its facts."""
    card_id = contract_card.call(uid)
    if card_id is None:
        return None
    token = Token.objects.select_related("msp").filter(pk=card_id).first()
    return (token, token_facts(token)) if token is not None else None


def token_find_presented(uid: str, organization_id: int | None, *, contract: bool) -> Token | None:
    """`token_find`; for a Plug & Charge contract (a 2.0.1 idToken of type eMAID) that no card
    holds by uid, the own card whose contract id it is (a session replayed from the journal
    finds its card as the live path did)."""
    token = token_find(uid, organization_id)
    if token is None and contract:
        found = contract_card_facts(uid)
        token = found[0] if found is not None else None
    return token


def contract_issuer(uid: str, organization_id: int | None) -> MobilityServiceProvider | None:
    """The operator's mobility provider an eMAID names, if it can be asked live: a partner of
    its own, or a party one of its hubs connects (asked through that hub)."""
    party = emaid_issuer(uid)
    if party is None or organization_id is None:
        return None
    known = MobilityServiceProvider.objects.filter(
        organization_id=organization_id, country_code=party[0], party_id=party[1]
    )
    msp = known.exclude(live_validation_url="").first()
    if msp is None:
        routed = contract_route.call(organization_id, *party)
        msp = known.filter(pk=routed).exclude(live_validation_url="").first() if routed else None
    return msp


def token_from_issuer(
    *, msp_id: int, uid: str, answer: dict | None
) -> tuple[Token, TokenFacts] | None:
    """Keep a foreign contract its provider answered for live as one of the provider's cards
    (type EMAID), so the session and its CDR go to that provider like any roaming card's, and
    a host sees it (and can block it) under Authorization > Roaming. None when the provider did
    not know it (OCPI 2004, no `data`) or refused it without a Token object: nothing is kept."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("allowed"), str):
        return None
    given = data.get("token")
    card: dict = given if isinstance(given, dict) else {}
    named = {normalize_uid(str(card.get(k) or "")) for k in ("uid", "contract_id")}
    if normalize_uid(uid) not in named:
        card = {}  # a Token object for another card: none of its facts are taken
    if not card and data["allowed"] != MspAnswer.ALLOWED:
        return None  # refused, and no card of its to keep
    whitelist = card.get("whitelist")
    with transaction.atomic():
        # Locked, or created once: two chargers presenting a new contract at once both keep
        # the one card (the second waits for the first; it no longer fails on unique_msp_token).
        token, _ = Token.objects.select_for_update().get_or_create(
            msp_id=msp_id,
            uid_normalized=normalize_uid(uid),
            defaults={"uid": uid, "organization": None, "type": Token.Type.EMAID},
        )
        token.type = Token.Type.EMAID
        token.valid = card.get("valid") is not False
        token.whitelist = (
            whitelist if whitelist in Token.Whitelist.values else Token.Whitelist.NEVER
        )
        token.label = str(card.get("visual_number") or card.get("contract_id") or uid)[:200]
        token.save()
    return token, token_facts(token)


def token_with_facts(
    uid: str, organization_id: int | None, active_sessions_of: ActiveSessionsOf | None = None
) -> tuple[Token, TokenFacts] | None:
    token = token_find(uid, organization_id)
    if token is None:
        return None
    active = active_sessions_of(token) if (active_sessions_of and token.single_session) else 0
    return token, token_facts(token, active_sessions=active)


def decide_sync(
    *, uid: str, charger: ChargerFacts, context: Context, now: datetime | None = None
) -> Decision:
    """Decide without asking an MSP (a cached or synced answer only); used for previews."""
    return decide_cached(uid=uid, charger=charger, context=context, now=now)[0]


# The uid the guest page records its refusals under (guest.services.guest_refusal_record): it
# refused every guest at that charger before any card was held.
GUEST_PAGE_UID = "GUEST"


def guest_preview_facts(charger: ChargerFacts) -> TokenFacts:
    """The facts of any guest's one-time token at this charger, before one exists: what the
    guest page asks the engine before the guest pays."""
    return TokenFacts(
        uid="GUEST-PREVIEW",
        organization_id=charger.organization_id,
        is_guest=True,
        allowed_station_ids=frozenset({charger.station_id}),
        single_session=True,
    )


def accepted_now(
    *, uid: str, token_id: int | None, context: str, charger: ChargerFacts, now: datetime
) -> bool:
    """Whether the rules that answer the charger would accept now the card of a recorded
    refusal (it was whitelisted, unblocked, made valid, the charger opened to guests …). A
    refusal of the guest page is asked again for any guest (issue 47 item 1)."""
    try:
        asked = Context(context)
    except ValueError:
        asked = Context.LOCAL
    if asked in (Context.STOP_TRANSACTION, Context.REMOTE_MSP):
        asked = Context.LOCAL
    if uid == GUEST_PAGE_UID and token_id is None:
        return decide(guest_preview_facts(charger), charger, asked, now=now).accepted
    return decide_sync(uid=uid, charger=charger, context=asked, now=now).accepted


def decide_cached(
    *, uid: str, charger: ChargerFacts, context: Context, now: datetime | None = None
) -> tuple[Decision, Token | None]:
    """`decide_sync`, with the card it found (for a caller that records the decision)."""
    now = now or timezone.now()
    token = token_find(uid, charger.organization_id)
    facts = token_facts(token) if token else None
    decision = decide(facts, charger, context, now=now)
    if decision.reason == NEEDS_MSP:
        # Only a card of an MSP needs it asked.
        assert token is not None and token.msp_id is not None and facts is not None
        cached = cache.get(_msp_cache_key(token.msp_id, uid))
        facts = replace(facts, msp_live_validation=not cached) if cached else facts
        decision = decide(
            facts, charger, context, now=now, msp_answer=MspAnswer.ALLOWED if cached else None
        )
    return decision, token


# -- host and agent actions ------------------------------------------------------------------


def token_group_create(*, organization_id: int, name: str) -> TokenGroup:
    """Create an empty local token group (whitelisting from a log row can start one); the
    organization's group of that name, whatever its case, when it exists (the same form sent
    twice at once, or "staff" when "Staff" exists)."""
    group, _ = TokenGroup.objects.get_or_create(
        organization_id=organization_id,
        name__iexact=name.strip(),
        defaults={"name": name.strip()},
    )
    return group


def _card_of(organization_id: int, uid: str, **defaults: Any) -> Token:
    """The organization's card `uid`, created (an RFID card) if it has none. Two requests adding
    the same new uid at once (a double click) get the one card: the second's insert fails on
    unique_org_token inside a savepoint and it reads the first's."""
    token, _ = Token.objects.get_or_create(
        organization_id=organization_id,
        uid_normalized=normalize_uid(uid),
        defaults={"uid": uid, "type": Token.Type.RFID, **defaults},
    )
    return token


@transaction.atomic
def token_group_add_uid(*, group: TokenGroup, uid: str) -> Token:
    """Whitelist `uid` in `group`: reuse the organization's token for it, or create one."""
    token = _card_of(group.organization_id, uid.strip())
    group.tokens.add(token)
    token_group_touch(group_ids=[group.pk])
    return token


@transaction.atomic
def token_group_remove_token(*, group: TokenGroup, token: Token) -> None:
    group.tokens.remove(token)
    token_group_touch(group_ids=[group.pk])


def token_group_touch(*, group_ids: list[int]) -> None:
    """Bump the groups' list versions and tell chargers restricted to them (after commit)."""
    if not group_ids:
        return
    from django.db.models import F

    TokenGroup.objects.filter(pk__in=group_ids).update(version=F("version") + 1)
    transaction.on_commit(
        lambda: token_groups_changed.send(sender=TokenGroup, token_group_ids=list(group_ids))
    )


@transaction.atomic
def token_update(*, token: Token, **fields: Any) -> Token:
    for name, value in fields.items():
        setattr(token, name, value)
    token.full_clean()
    token.save()
    token_group_touch(group_ids=list(token.groups.values_list("pk", flat=True)))
    return token


def token_reimbursement_allow(
    *, organization_id: int, uid: str, station_ids: list[str], label: str = ""
) -> Token:
    """Reimbursement (seed 002 item 5): let the organization's card `uid` charge at these stations
    too. A card with allowed stations charges only there (decision step 10); created if new."""
    uid = uid.strip()
    Token(uid=uid, organization_id=organization_id, type=Token.Type.RFID).clean_fields(
        exclude=["uid_normalized", "organization", "msp", "label"]
    )  # a uid the card cannot have is refused before anything is stored
    with transaction.atomic():
        card = _card_of(organization_id, uid, label=label.strip()[:200])
        # Locked: two stations allowed at once (two tabs) both stay on the list.
        token = Token.objects.select_for_update().get(pk=card.pk)
        allowed = sorted(set(token.allowed_station_ids or []) | set(station_ids))
        return token_update(token=token, allowed_station_ids=allowed)


def token_reimbursement_remove(*, token: Token, station_ids: list[str]) -> Token:
    """Take these stations off the card's reimbursement list. With none left the card is no longer
    limited (an empty list means anywhere): the caller says so."""
    allowed = [s for s in token.allowed_station_ids or [] if s not in set(station_ids)]
    return token_update(token=token, allowed_station_ids=allowed)


def msp_set_blocked(*, msp: MobilityServiceProvider, blocked: bool) -> MobilityServiceProvider:
    msp.blocked = blocked
    msp.save(update_fields=["blocked"])
    return msp


MSP_TIMEOUT_RANGE = (1, 30)  # seconds; a charger waits on Authorize, so never longer than this


def msp_set_validation(
    *, msp: MobilityServiceProvider, timeout_s: int, on_timeout: str
) -> MobilityServiceProvider:
    """Set how long live validation waits for the provider, and what a timeout means."""
    from django.core.exceptions import ValidationError

    low, high = MSP_TIMEOUT_RANGE
    if not low <= int(timeout_s) <= high:
        raise ValidationError({"timeout_s": f"Choose a timeout from {low} to {high} seconds."})
    if on_timeout not in MobilityServiceProvider.OnTimeout.values:
        raise ValidationError(
            {"on_timeout": "Choose what happens when the provider does not answer."}
        )
    msp.timeout_s, msp.on_timeout = int(timeout_s), on_timeout
    msp.save(update_fields=["timeout_s", "on_timeout"])
    return msp


def tokens_search(*, uid: str, organization_ids: Iterable[int]) -> list[Token]:
    """Return tokens matching `uid` among an organization's own and its MSPs' cards."""
    key = normalize_uid(uid)
    return list(
        Token.objects.select_related("msp", "organization")
        .filter(uid_normalized__contains=key)
        .filter(
            Q(organization_id__in=organization_ids) | Q(msp__organization_id__in=organization_ids)
        )
        .order_by("uid")[:100]
    )


# -- MSP token pull (OCPI GET tokens) ----------------------------------------------------------


TOKEN_PULL_MAX_PAGES = 2000  # 1,000,000 cards at 500 a page: past that the list is not a list


class MspListUnreadable(Exception):
    """The MSP's token list answered, but not with a list we can page through (the task retries
    with back-off; the cards pulled before stay, and the next pull starts from the same point)."""


def _token_page(response: httpx.Response) -> list:
    """The `data` of one OCPI page of tokens."""
    try:
        body = response.json()
    except ValueError:
        raise MspListUnreadable("the provider's token list is not JSON") from None
    if not isinstance(body, dict):
        raise MspListUnreadable("the provider's token list is not an OCPI answer")
    code = body.get("status_code")
    if isinstance(code, int) and not isinstance(code, bool) and not 1000 <= code < 2000:
        # An error at HTTP 200 (OCPI puts the outcome here): no list, and no new sync point.
        raise MspListUnreadable(f"the provider answered its token list with OCPI status {code}")
    data = body.get("data")
    if data is None:
        return []
    if not isinstance(data, list):
        raise MspListUnreadable("the provider's token list has no list of tokens in `data`")
    return data


def _pulled_token(item: object) -> dict | None:
    """The fields of a pulled OCPI Token we keep; None for an item that is no card (no usable
    uid). Only `valid: true` grants: a card whose `valid` is not a boolean is kept as invalid."""
    if not isinstance(item, dict):
        return None
    uid = item.get("uid")
    if not isinstance(uid, str) or not uid.strip() or "\x00" in uid or len(uid.strip()) > 36:
        return None
    valid = item.get("valid", True)
    defaults = {
        "uid": uid.strip(),
        "valid": valid is True,
        "type": Token.Type.APP if item.get("type") == "APP_USER" else Token.Type.RFID,
    }
    if item.get("whitelist") in Token.Whitelist.values:  # OCPI token objects carry it
        defaults["whitelist"] = item["whitelist"]
    return defaults


def msp_tokens_pull(
    *, msp: MobilityServiceProvider, page_size: int = 500, client: httpx.Client | None = None
) -> int:
    """Pull the MSP's token list (incremental from the last sync); return how many were stored.
    Items that are no card are skipped; a page that is no list, or a list that does not end
    (a provider ignoring `offset`), raises MspListUnreadable and leaves the sync point."""
    if not msp.live_validation_url or msp.via_hub:
        return 0  # a hub's token list is every party's: its pushes bring a routed party's cards
    started = timezone.now()
    params: dict = {"offset": 0, "limit": page_size}
    if msp.tokens_synced_at:
        # An OCPI DateTime: UTC with "Z", whole seconds (types "DateTime": string(25), "other
        # formats are not allowed"; isoformat's "+00:00" and microseconds are 32 characters).
        params["date_from"] = msp.tokens_synced_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers = (
        {"Authorization": f"Token {msp.live_validation_token}"} if msp.live_validation_token else {}
    )
    own_client = client is None
    client = client or msp_http_client(timeout=max(msp.timeout_s, 30))
    stored, pages, previous = 0, 0, None
    try:
        while True:
            pages += 1
            if pages > TOKEN_PULL_MAX_PAGES:
                raise MspListUnreadable(
                    f"the provider's token list did not end after {TOKEN_PULL_MAX_PAGES} pages"
                )
            response = client.get(
                msp.live_validation_url.rstrip("/"), params=params, headers=headers
            )
            response.raise_for_status()
            data = _token_page(response)
            if data and data == previous:
                raise MspListUnreadable(
                    "the provider's token list sent the same page again (it ignores `offset`)"
                )
            previous = data
            for defaults in filter(None, map(_pulled_token, data)):
                Token.objects.update_or_create(
                    msp=msp,
                    uid_normalized=normalize_uid(defaults["uid"]),
                    defaults=defaults,
                )
                stored += 1
            if len(data) < params["limit"]:
                break
            params["offset"] += len(data)
    finally:
        if own_client:
            client.close()
    msp.tokens_synced_at = started
    msp.save(update_fields=["tokens_synced_at"])
    return stored

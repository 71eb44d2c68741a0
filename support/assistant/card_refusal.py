"""A host's "why was card X refused at my charger?" (seeds 001 and 002), answered from the data.

The answer names the card, the charger, when, and the reason as the records say it: who blocked
the card (the host's own organization under Tokens, or its mobility provider), which list it is
not in, when it expired, which stations it may use. Then the host's fix, each with the portal
path where it is done (Tokens, Mobility Providers, Locations, Chargers › View › Logs and Proxy).
Only the host's own chargers are searched: a card refused at another organization's charger is
not found, and another organization is never named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ObjectDoesNotExist
from django.urls import reverse

from authorization.models import (
    AuthorizationDecision,
    MobilityServiceProvider,
    Token,
    TokenGroup,
    normalize_uid,
    not_alarms,
)
from chargers.models import Charger

from .refusals import ACCEPTED, refusals_at

if TYPE_CHECKING:
    from .diagnosis import Viewer

# How far back a named card's refusal is looked for (the Logs keep more; this is "recently").
CARD_LOOKBACK = timedelta(days=30)
OCPP_ACTION: dict[str, str] = {
    "local": "Authorize",
    "start_transaction": "StartTransaction",
    "stop_transaction": "StopTransaction",
    "remote_app": "RemoteStartTransaction",
    "remote_msp": "RemoteStartTransaction",
}
TOKENS = "Cards & roaming › Tokens"
PROVIDERS = "Cards & roaming › Mobility Providers (/mobility-providers/)"
ROAMING = "Cards & roaming › Authorization › Roaming (/authorization/roaming/)"
PARTNERS = "Cards & roaming › Roaming partners"


@dataclass
class CardAnswer:
    sentence: str  # what happened: the card, the charger, when, why
    steps: list[str] = field(default_factory=list)  # the host's fix, with portal paths
    charger: Charger | None = None
    current: bool = False  # still refused now (not charged since, not accepted now)


def _own(token: Token | None, viewer: Viewer) -> bool:
    return (
        token is not None
        and token.organization_id is not None
        and viewer.may_see_org(token.organization_id)
    )


def _token_path(token: Token | None, viewer: Viewer) -> str:
    if _own(token, viewer):
        assert token is not None
        return f"{TOKENS} › {token.uid} (/tokens/{token.pk}/)"
    return f"{TOKENS} (/tokens/)"


def _provider(decision: AuthorizationDecision, viewer: Viewer) -> str:
    """The card's mobility provider by name when it is one the host may see."""
    msp = decision.msp or (decision.token.msp if decision.token is not None else None)
    if msp is None:
        return "its mobility provider"
    if msp.organization_id is None or viewer.may_see_org(msp.organization_id):
        return f"its mobility provider {msp.name}"
    return "its mobility provider"


def _groups(charger: Charger) -> list[TokenGroup]:
    groups = list(charger.token_groups.all())
    if charger.property is not None:
        groups += [g for g in charger.property.restricted_token_groups.all() if g not in groups]
    return groups


def _blocked(decision: AuthorizationDecision, viewer: Viewer) -> tuple[str, list[str]]:
    token = decision.token
    if _own(token, viewer):
        return (
            "your organization blocked this card: Blocked is ticked on it in your Tokens, and a "
            "blocked card is refused everywhere",
            [
                f"If the driver should charge, open {_token_path(token, viewer)}, untick Blocked and save."
            ],
        )
    who = _provider(decision, viewer) if token is not None and token.msp_id else "its issuer"
    return (
        f"the card is blocked by {who}, not by you",
        [f"Only {who} can unblock it: ask the driver to contact them."],
    )


def _not_listed(
    decision: AuthorizationDecision, charger: Charger, viewer: Viewer
) -> tuple[str, list[str]]:
    if decision.reason == "not_in_local_group":
        groups = _groups(charger)
        names = ", ".join(g.name for g in groups) or "its local token groups"
        steps = [
            f"Add the card to a group: {TOKENS} › Groups › {g.name} (/tokens/groups/{g.pk}/), "
            f"type {decision.uid} and click Add Token."
            for g in groups[:3]
        ]
        return (
            f"{charger.station_id} accepts only the cards of its local token groups ({names}) "
            "and this card is in none of them",
            steps
            or [
                f"Add the card to one of the charger's groups under {TOKENS} › Groups (/tokens/groups/)."
            ],
        )
    return (
        "the card is not in your Tokens list and no mobility provider claims it",
        [
            f"If it is one of your drivers' cards, add it under {TOKENS} (/tokens/), or whitelist "
            f"it from its log row in Chargers › View › Logs (/chargers/{charger.station_id}/logs/).",
            f"If it is a roaming card, search its UID under {ROAMING}; otherwise ask the driver "
            "which provider issued it.",
        ],
    )


def _card_state(decision: AuthorizationDecision, viewer: Viewer) -> tuple[str, list[str]] | None:
    token, reason = decision.token, decision.reason
    if reason == "token_invalid":
        return (
            "the card is in your Tokens but its Valid box is not ticked",
            [f"Open {_token_path(token, viewer)}, tick Valid and save."],
        )
    if reason == "token_expired":
        until = (
            f" on {token.expires_at.date().isoformat()}"
            if token is not None and token.expires_at
            else ""
        )
        return (
            f"the card's validity expired{until}",
            [f"Open {_token_path(token, viewer)} and extend Expires at (or empty it) and save."],
        )
    if reason == "msp_token_invalid":
        return (
            f"{_provider(decision, viewer)} marked the card as not valid",
            [
                f"Check the card under {ROAMING}: if Valid is not ticked there, the driver asks "
                "their provider to validate it."
            ],
        )
    if reason == "msp_blocked":
        who = _provider(decision, viewer).removeprefix("its mobility provider ").strip()
        name = who if who != "its mobility provider" else "the card's provider"
        return (
            f"the card belongs to {name}, a mobility provider your organization has blocked",
            [f"If its cards should charge here, open {PROVIDERS} and click Unblock beside {name}."],
        )
    return None


def _partner_of(msp: MobilityServiceProvider) -> tuple[str, Any]:
    """The roaming partner the provider's live checks go to, as its Mobility Providers row says:
    ("hub", the hub) when a hub routes its party, ("own", its partner) when it connected itself,
    ("", None) when support set it up."""
    if msp.via_hub:
        try:
            return "hub", msp.hub_route.partner
        except ObjectDoesNotExist:
            pass
    try:
        return "own", msp.ocpi_partner
    except ObjectDoesNotExist:
        return "", None


def _credentials_fix(decision: AuthorizationDecision, viewer: Viewer) -> list[str]:
    """Where the host renews our credentials with the provider that refused them: its roaming
    partner's page (the hub's, when a hub routes it), with the page's link for a host of the
    organization that has the provider; otherwise the way there."""
    msp = decision.msp or (decision.token.msp if decision.token is not None else None)
    listing = "Mobility Providers (/mobility-providers/) shows the provider's last refusal."
    if msp is None or not viewer.may_see_org(msp.organization_id):
        return [
            f"Renew our credentials with the card's provider: {PARTNERS} (/roaming/partners/) › "
            "the provider's partner (or the hub that routes it) › Renew credentials; a provider "
            f"set up by support: ask support to renew its token. {listing}"
        ]
    how, partner = _partner_of(msp)
    if partner is None or not viewer.may_see_org(partner.organization_id):
        return [
            f"{msp.name}'s credentials were set up by support, not through a roaming partner: "
            f"ask support to renew its token (ask me for a person). {listing}"
        ]
    page = (
        f"{PARTNERS} › {partner.name} ({reverse('partners:msp-ocpi-partner', args=[partner.pk])})"
    )
    through = (
        f"{msp.name}'s live checks go through the hub {partner.name}: " if how == "hub" else ""
    )
    if partner.state != "connected":
        return [
            f"{through}{page} is not connected ({partner.get_state_display().lower()}): connect to it again "
            f"under {PARTNERS} (/roaming/partners/) › Connect to a partner. {listing}"
        ]
    return [
        f"{through}Open {page} and click Renew credentials under Connection (an owner or "
        f"manager); if it unregistered us, connect to it again. {listing}"
    ]


def _access(
    decision: AuthorizationDecision, charger: Charger, viewer: Viewer
) -> tuple[str, list[str]] | None:
    reason, location = decision.reason, ""
    if charger.property_id is not None:
        location = f"Locations › {charger.property} (/locations/{charger.property_id}/)"
    if reason == "reimbursement_not_allowed":
        token = decision.token
        stations = ", ".join(token.allowed_station_ids[:5]) if token is not None else ""
        return (
            "the card is a reimbursement card with no access to this charger"
            + (f": it may charge only at {stations}" if stations else ""),
            [
                f"If it should be reimbursed here, add {charger.station_id} to its allowed stations under {location or 'Locations'}."
            ],
        )
    if reason in ("charger_not_roaming", "remote_start_roaming_disabled"):
        return (
            f"{charger.station_id} is not open to this card: it is not public (roaming) for "
            "other networks' cards and guests",
            [
                f"Set the location to 'public (roaming)' or 'guest charging' under {location or 'Locations'}, "
                f"or add the card to a local token group under {TOKENS} › Groups (/tokens/groups/)."
            ],
        )
    if reason == "license_inactive":
        return (
            f"{charger.station_id} has no active license, so it refuses every card",
            [f"Renew the license: Support › Licenses (/support/licenses/{charger.station_id}/)."],
        )
    return None


def reason_and_fix(
    decision: AuthorizationDecision, charger: Charger, viewer: Viewer
) -> tuple[str, list[str]]:
    """Why the card was refused, in the host's words from the records, and the host's fix."""
    if decision.reason == "token_blocked":
        return _blocked(decision, viewer)
    if decision.reason in ("unknown_token", "not_in_local_group"):
        return _not_listed(decision, charger, viewer)
    if decision.reason == "msp_refused_our_credentials":
        who = _provider(decision, viewer).replace("its ", "the card's ", 1)
        return (
            f"{who} refused our credentials for its live check (HTTP 401 or 403), so it said "
            "nothing about the card: the card is not the problem, and the provider's cards that "
            "are checked live are refused until it accepts our credentials again",
            _credentials_fix(decision, viewer),
        )
    found = _card_state(decision, viewer) or _access(decision, charger, viewer)
    if found is not None:
        return found
    message = decision.message.rstrip(".")
    return message[:1].lower() + message[1:], []


def _see_it_steps(decision: AuthorizationDecision, charger: Charger) -> list[str]:
    """Where the host reads the refusal themselves (seed 001: Chargers > View > Logs, > Proxy)."""
    action = OCPP_ACTION.get(decision.context, "Authorize")
    steps = [
        f"To see it yourself: Chargers › View › Logs (/chargers/{charger.station_id}/logs/), "
        f"search for idTag {decision.uid}: the {action}'s idTagInfo status is {decision.status}."
    ]
    if decision.leader_name:
        steps.append(
            f"This charger also reports to another backoffice through the proxy "
            f"(Chargers › View › Proxy, /chargers/{charger.station_id}/proxy/): "
            f"{decision.leader_summary}. The card must be accepted by the Leader too."
        )
    return steps


def host_fix_steps(decision: AuthorizationDecision, charger: Charger, viewer: Viewer) -> list[str]:
    """The host's fix for one refusal, then where to read it in the Logs."""
    return reason_and_fix(decision, charger, viewer)[1] + _see_it_steps(decision, charger)


def card_refusal(
    viewer: Viewer,
    card_uid: str,
    chargers: list[Charger],
    *,
    now: datetime,
    when: Callable[[datetime, Charger], str],
) -> CardAnswer:
    """The latest refusal of `card_uid` at one of `chargers` (the host's own) and its fix."""
    key = normalize_uid(card_uid)
    by_station = {c.station_id: c for c in chargers}
    decision = (
        AuthorizationDecision.objects.filter(
            station_id__in=list(by_station),
            uid_normalized=key,
            created_at__gte=now - CARD_LOOKBACK,
        )
        .exclude(status=ACCEPTED)
        .exclude(not_alarms())
        .select_related("token__msp", "msp")
        .order_by("-created_at", "-id")
        .first()
    )
    where = f"at {chargers[0].station_id}" if len(chargers) == 1 else "at any of your chargers"
    if decision is None:
        logs = (
            f"Chargers › View › Logs (/chargers/{chargers[0].station_id}/logs/)"
            if len(chargers) == 1
            else "Chargers (/chargers/) › View on the charger › Logs"
        )
        return CardAnswer(
            f"I found no refusal of card {card_uid} {where} in the last "
            f"{CARD_LOOKBACK.days} days. Check the card number (it is printed on the card or "
            "shown after idTag in Chargers › View › Logs) and which charger it was.",
            [
                f"Look for the card's attempts yourself: {logs}, search for idTag {card_uid}: "
                "the Authorize's or StartTransaction's idTagInfo status says Accepted, Invalid, "
                "Blocked or Expired.",
                "If the charger also reports to another backoffice (Chargers › View › Proxy), "
                "the one set to Leader answers the charger: the card must be accepted there too.",
            ],
        )
    charger = by_station[decision.station_id]
    reason, fix = reason_and_fix(decision, charger, viewer)
    at = when(decision.created_at, charger)
    place = f" ({charger.property})" if charger.property is not None else ""
    sentence = (
        f"Card {decision.uid} was refused at {charger.station_id}{place} at {at} "
        f"({decision.status}) because {reason}"
    )
    refusal = next(
        (
            r
            for r in refusals_at(charger, since=decision.created_at, now=now)
            if (r.decision.uid_normalized or normalize_uid(r.decision.uid)) == key
        ),
        None,
    )
    if refusal is not None and not refusal.current and refusal.solved_at is not None:
        if refusal.solved_how == "charged":
            sentence += (
                f", but it has charged here since {when(refusal.solved_at, charger)}: solved."
            )
        else:
            sentence += ", but your settings accept it there now: it works on its next try."
        fix = []
    else:
        sentence += "."
    current = refusal is None or refusal.current
    return CardAnswer(sentence, fix + _see_it_steps(decision, charger), charger, current)

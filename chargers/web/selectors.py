"""Reads of chargers, sessions and the message log, scoped to what a user may see."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet, TextField
from django.db.models.functions import Cast

from backoffice.tenancy import readable_organization_ids
from chargers.models import (
    Charger,
    ChargerDeviation,
    ChargingSession,
    Connector,
    Deviation,
    OcppMessage,
)
from chargers.state import quirks as quirks_state


def chargers_for(user: Any) -> QuerySet[Charger]:
    queryset = Charger.objects.select_related(
        "property", "property__organization"
    ).prefetch_related(Prefetch("connectors", queryset=Connector.objects.order_by("connector_id")))
    ids = readable_organization_ids(user)
    if ids is not None:
        queryset = queryset.filter(property__organization_id__in=ids)
    return queryset


def charger_for_user(user: Any, station_id: str) -> Charger | None:
    """Return the charger if the user may see it, else None (the caller answers 404)."""
    return chargers_for(user).filter(station_id=station_id).first()


def sessions_for(user: Any) -> QuerySet[ChargingSession]:
    queryset = ChargingSession.objects.select_related("charger", "charger__property")
    ids = readable_organization_ids(user)
    if ids is not None:
        queryset = queryset.filter(charger__property__organization_id__in=ids)
    return queryset


# The messages that carry a card and get its verdict back (1.6 idTagInfo, 2.0.1 idTokenInfo).
CARD_ACTIONS = ("Authorize", "StartTransaction", "TransactionEvent")
# Searching either 1.6 card message shows both: a card refused at Authorize never sends a
# StartTransaction, so seed 001's "type StartTransaction" would otherwise miss the refusal.
CARD_SEARCH = {
    "Authorize": ("Authorize", "StartTransaction"),
    "StartTransaction": ("Authorize", "StartTransaction"),
}


def refused_answers() -> Q:
    """Answers that refused a card: idTagInfo / idTokenInfo present with a status other than Accepted."""
    refused = Q()
    for info in ("idTagInfo", "idTokenInfo"):
        refused |= Q(**{f"payload__{info}__has_key": "status"}) & ~Q(
            **{f"payload__{info}__status": "Accepted"}
        )
    return Q(message_type=3, action__in=CARD_ACTIONS) & refused


def message_log(
    charger: Charger,
    *,
    search: str = "",
    action: str = "",
    direction: str = "",
    message_type: str = "",
    before_id: int | None = None,
    limit: int = 50,
    link: str = "",
    refused_only: bool = False,
) -> list[OcppMessage]:
    """Return a page of the charger's log, newest first, by keyset (id < before_id).

    `search` matches an action name exactly (type "StartTransaction": Authorize and
    StartTransaction both), an idTag exactly (indexed), or else any text inside the payload.
    `refused_only` keeps the answers that refused a card (their CALL is paired on the page).
    """
    from chargers.ocpp.protocol import KNOWN_ACTIONS_V16

    queryset = OcppMessage.objects.filter(charger=charger)
    if refused_only:
        queryset = queryset.filter(refused_answers())
    # The proxy's links: "charger" = only the charger's own link, a backoffice id = only that one.
    if link == "charger":
        queryset = queryset.filter(backoffice__isnull=True)
    elif link.isdigit():
        queryset = queryset.filter(backoffice_id=int(link))
    if action:
        queryset = queryset.filter(action=action)
    if direction in ("in", "out"):
        queryset = queryset.filter(direction=direction)
    if message_type:
        types = {"CALL": 2, "CALLRESULT": 3, "CALLERROR": 4}
        if message_type.upper() in types:
            queryset = queryset.filter(message_type=types[message_type.upper()])
    if before_id:
        queryset = queryset.filter(id__lt=before_id)
    search = search.strip()
    if search:
        if search in CARD_SEARCH:
            queryset = queryset.filter(action__in=CARD_SEARCH[search])
        elif search in KNOWN_ACTIONS_V16:
            queryset = queryset.filter(action=search)
        elif refused_only:
            # The refusing answer carries no idTag: match the card on its CALL (same unique id).
            calls = OcppMessage.objects.filter(charger=charger, id_tag=search, message_type=2)
            queryset = queryset.filter(unique_id__in=calls.values("unique_id"))
        else:
            # An idTag is an index hit; otherwise fall back to a payload text match.
            by_tag = list(queryset.filter(id_tag=search).order_by("-id")[:limit])
            if by_tag:
                return by_tag
            queryset = queryset.annotate(payload_text=Cast("payload", TextField())).filter(
                Q(payload_text__icontains=search) | Q(action__icontains=search)
            )
    return list(queryset.order_by("-id")[:limit])


def deviations_of(charger: Charger) -> dict[str, Any]:
    """What the charger's page says of its protocol deviations (docs/quirks.md): those its quirk
    profiles name (handled) and those met that none names (recorded for support). The charger
    is one the caller may read (charger_or_404)."""
    known = quirks_state.quirks_of_row(charger).codes
    met = list(ChargerDeviation.objects.filter(charger=charger).order_by("-last_seen_at")[:20])
    names = dict(
        Deviation.objects.filter(code__in=known | {d.code for d in met}).values_list("code", "name")
    )
    return {
        "handled": sorted(names.get(code, code) for code in known),
        "met": [(d, names.get(d.code, d.code.replace("_", " "))) for d in met],
    }

"""The price a session is billed with: the version shown before the start (issue 56 item 5).

A session used to be priced with the rate in force at its start by the charger's clock, so a
wrong clock or an offline-queued start could bill a price nobody was shown. Now the price a
guest or driver saw is stored when they start (`price_shown_record`) and tied to the session
when the charger's start arrives (`price_shown_attach`); any other start is given the price in
force at our own time of its arrival (`price_at_start`). Pricing reads it (`session_rate`).
Sessions from before this have no row and keep the old rule (charger clock)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, models, transaction

from chargers.models import ChargingSession

from .models import RATE_PRICE_FIELDS, PriceShown, Rate
from .selectors import rate_for_charger

# The fields of a rate that price a session (billing.pricing.RateTerms), copied as shown.
RATE_FIELDS = RATE_PRICE_FIELDS
DECIMAL_FIELDS = frozenset(
    name for name in RATE_FIELDS if isinstance(Rate._meta.get_field(name), models.DecimalField)
)


def terms_of(rate: Rate) -> dict[str, str | int | bool | None]:
    """The rate's price terms as JSON: decimals as exact strings."""
    terms: dict[str, str | int | bool | None] = {}
    for name in RATE_FIELDS:
        value = getattr(rate, name)
        terms[name] = f"{value}" if isinstance(value, Decimal) else value
    return terms


def version_key(rate: Rate) -> str:
    """A short fingerprint of the price a page shows (the rate, its start and its terms): the
    start form carries it back, and a start whose price changed meanwhile is refused."""
    data = json.dumps([rate.pk, rate.valid_from.isoformat(), terms_of(rate)], sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def rate_of(shown: PriceShown, charger) -> Rate:
    """The price version as a Rate (unsaved; its id is the rate it was copied from, if that still
    exists), so pricing and pages read it as any rate."""
    values = {}
    for name in RATE_FIELDS:
        value = shown.terms.get(name)
        values[name] = Decimal(value) if name in DECIMAL_FIELDS and value is not None else value
    source = shown.rate
    return Rate(
        pk=shown.rate_id,
        property=charger.property,
        charger_id=source.charger_id if source is not None else None,
        valid_from=shown.rate_valid_from,
        valid_until=source.valid_until if source is not None else None,
        created_at=source.created_at if source is not None else shown.shown_at,
        updated_at=source.updated_at if source is not None else shown.shown_at,
        **values,
    )


def _record(
    *, session_id: int | None, charger, rate: Rate, source: str, reference, at
) -> PriceShown:
    return PriceShown.objects.create(
        organization_id=charger.property.organization_id,
        charger=charger,
        session_id=session_id,
        reference=reference,
        source=source,
        rate=rate,
        rate_valid_from=rate.valid_from,
        currency=charger.property.currency,
        terms=terms_of(rate),
        shown_at=at,
    )


def price_shown_record(
    *, charger, rate: Rate, source: str, reference: str, at: datetime
) -> PriceShown:
    """Store the price shown to a guest or driver who starts (`reference`: their start)."""
    return _record(
        session_id=None, charger=charger, rate=rate, source=source, reference=reference, at=at
    )


@transaction.atomic
def price_shown_attach(*, reference: str, session_id: int) -> PriceShown | None:
    """Tie the price shown for a start to the session the charger opened for it. It replaces the
    price in force at the start's arrival, if that was stored first (receivers run in any order)."""
    shown = (
        PriceShown.objects.select_for_update()
        .filter(reference=reference, session__isnull=True)
        .first()
    )
    if shown is None:
        return None
    PriceShown.objects.filter(session_id=session_id, source=PriceShown.Source.START).delete()
    if PriceShown.objects.filter(session_id=session_id).exists():
        return None  # another shown price already holds this session
    shown.session_id = session_id
    shown.save(update_fields=["session"])
    return shown


def price_at_start(*, session_id: int) -> PriceShown | None:
    """A start nobody was shown a price for (a card at the charger, an offline start, a roaming
    partner's): the price in force at our own time of its arrival, never the charger's clock."""
    if PriceShown.objects.filter(session_id=session_id).exists():
        return None
    session = (
        ChargingSession.objects.select_related("charger__property").filter(pk=session_id).first()
    )
    if session is None or session.charger.property is None:
        return None
    rate = rate_for_charger(session.charger, session.received_start_at)
    if rate is None:
        return None
    try:
        with transaction.atomic():
            return _record(
                session_id=session_id,
                charger=session.charger,
                rate=rate,
                source=PriceShown.Source.START,
                reference=None,
                at=session.received_start_at,
            )
    except IntegrityError:  # a shown price was tied to it meanwhile: that one applies
        return None


def price_version(session: ChargingSession) -> PriceShown | None:
    """The session's price version; read from the session when its query selected it
    (`select_related("price_shown")`), else looked up."""
    related = ChargingSession.price_shown.related  # type: ignore[attr-defined]
    if related.is_cached(session):
        return related.get_cached_value(session)
    return PriceShown.objects.select_related("rate").filter(session_id=session.pk).first()


def session_rate(session: ChargingSession) -> tuple[Rate | None, PriceShown | None]:
    """The rate a session is billed with, and its stored version (None: a session from before
    versions were stored, priced by the rate in force at its start on the charger's clock)."""
    shown = price_version(session)
    if shown is not None:
        return rate_of(shown, session.charger), shown
    return rate_for_charger(session.charger, session.started_at), None

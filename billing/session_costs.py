"""A page of sessions priced at once (issue 51 items 3 and 8): the facts of every session that has
no final stored charge (still charging, or not priced yet) read in a constant number of queries,
then priced one by one by the receipt's own pure function (`pricing.session_cost`), so a list's
"cost so far" is the amount the guest's live page and receipt show.

Each batched read here answers what `services.session_facts` / `services.session_cost` read for
one session (the price version or the rate in force at the start, meter samples, status changes,
a retry's neighbours, the payer's subscription and its included kWh, waits for power, signed
readings); `tests/billing/test_session_costs.py` prices one table of cases both ways."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db.models import Q
from django.db.models.functions import Lower

from chargers.models import ChargingSession, MeterValue, StatusEvent
from metering.selectors import session_signatures
from power.selectors import waiting_periods_many

from . import pricing
from .models import Payment, PriceShown, Rate, SessionCharge, Subscription
from .price_shown import rate_of
from .services import RETRY_WINDOW, rate_terms, signed_energy
from .services.subscriptions import month_bounds, plan_zone

ZERO = Decimal("0")


def rate_in_force(rates: Iterable[Rate], *, charger_id: int, at: datetime) -> Rate | None:
    """`selectors.rate_for_charger` over rates already read (the charger's location's): the
    charger's own rate in force at `at` wins over the location's; among several, the one that
    started last (then the highest id)."""
    in_force = [
        r
        for r in rates
        if r.valid_from <= at
        and (r.valid_until is None or r.valid_until > at)
        and r.charger_id in (None, charger_id)
    ]
    if not in_force:
        return None
    return max(in_force, key=lambda r: (r.charger_id is not None, r.valid_from, r.pk))


def _rates(sessions: Sequence[ChargingSession]) -> dict[int, Rate | None]:
    """The rate each session is billed with (`price_shown.session_rate`): its stored price
    version, else the rate in force at its start. Two queries."""
    # The version read with the session (`select_related("price_shown")`), else one query.
    version = ChargingSession._meta.get_field("price_shown")
    cached = [s for s in sessions if version.is_cached(s)]
    # Cached: reading it costs no query (None when the session has no version).
    shown: dict[int, PriceShown] = {
        s.pk: v for s in cached if (v := getattr(s, "price_shown", None)) is not None
    }
    unread = [s.pk for s in sessions if not version.is_cached(s)]
    if unread:
        for v in PriceShown.objects.select_related("rate").filter(session_id__in=unread):
            if v.session_id is not None:
                shown[v.session_id] = v
    unversioned = [s for s in sessions if s.pk not in shown and s.charger.property_id]
    by_property: dict[int, list[Rate]] = defaultdict(list)
    if unversioned:
        latest = max(s.started_at for s in unversioned)
        for rate in Rate.objects.filter(
            property_id__in={s.charger.property_id for s in unversioned}, valid_from__lte=latest
        ):
            by_property[rate.property_id].append(rate)
    rates: dict[int, Rate | None] = {}
    for s in sessions:
        if s.pk in shown:
            rates[s.pk] = rate_of(shown[s.pk], s.charger)
            continue
        prop_id = s.charger.property_id
        found = (
            rate_in_force(by_property[prop_id], charger_id=s.charger_id, at=s.started_at)
            if prop_id
            else None
        )
        prop = s.charger.property
        if found is not None and prop is not None:
            found.property = prop  # read with the session
        rates[s.pk] = found
    return rates


def _wh(value: Decimal, unit: str, measurand: str) -> Decimal:
    # Energy in Wh, power in W (services.session_facts' conversion).
    big = "kwh" if measurand == pricing.ENERGY_REGISTER else "kw"
    return value * 1000 if unit.lower() == big else value


def _samples(ids: list[int]) -> dict[int, list[pricing.Sample]]:
    samples: dict[int, list[pricing.Sample]] = defaultdict(list)
    rows = (
        MeterValue.objects.filter(
            session_id__in=ids,
            value__isnull=False,
            phase="",
            measurand__in=[pricing.ENERGY_REGISTER, pricing.POWER],
        )
        .order_by("session_id", "timestamp", "id")
        .values_list("session_id", "timestamp", "measurand", "value", "unit")
    )
    for session_id, when, measurand, value, unit in rows:
        if value is None:  # excluded by the query; the column is nullable
            continue
        default = "Wh" if measurand == pricing.ENERGY_REGISTER else "W"
        samples[session_id].append(
            pricing.Sample(when, measurand, _wh(value, unit or default, measurand))
        )
    return samples


def _statuses(sessions: Sequence[ChargingSession]) -> dict[int, list[pricing.StatusChange]]:
    """Each session's connector's status changes from its start (to its stop): one query over
    the sessions' (charger, connector, time) ranges."""
    ranges = [
        Q(charger_id=s.charger_id, connector_id=s.connector_id, timestamp__gte=s.started_at)
        & (Q(timestamp__lte=s.stopped_at) if s.stopped_at is not None else Q())
        for s in sessions
    ]
    out: dict[int, list[pricing.StatusChange]] = defaultdict(list)
    rows = (
        StatusEvent.objects.filter(reduce(or_, ranges))
        .order_by("timestamp", "id")
        .values_list("charger_id", "connector_id", "timestamp", "status")
    )
    for charger_id, connector_id, when, status in rows:
        for s in sessions:
            if (
                s.charger_id == charger_id
                and s.connector_id == connector_id
                and when >= s.started_at
                and (s.stopped_at is None or when <= s.stopped_at)
            ):
                out[s.pk].append(pricing.StatusChange(when, status))
    return out


def _retries(sessions: Sequence[ChargingSession]) -> set[int]:
    """The sessions (of those without energy) that are a retry (`services` `_repeated_attempt`:
    the same card on the same charger within RETRY_WINDOW, an earlier start or one with energy)."""
    empty = [s for s in sessions if not s.energy_wh]
    if not empty:
        return set()
    nearby = reduce(
        or_,
        (
            Q(
                charger_id=s.charger_id,
                id_tag=s.id_tag,
                started_at__gte=s.started_at - RETRY_WINDOW,
                started_at__lte=s.started_at + RETRY_WINDOW,
            )
            for s in empty
        ),
    )
    others = list(
        # Every field `energy_wh` reads, or each neighbour would load one more.
        ChargingSession.objects.filter(nearby).only(
            "pk",
            "charger_id",
            "id_tag",
            "started_at",
            "status",
            "meter_start_wh",
            "meter_stop_wh",
            "signed_energy_wh",
        )
    )
    retries = set()
    for s in empty:
        for other in others:
            if (
                other.pk == s.pk
                or other.charger_id != s.charger_id
                or other.id_tag != s.id_tag
                or abs(other.started_at - s.started_at) > RETRY_WINDOW
            ):
                continue
            earlier = other.started_at < s.started_at or (
                other.started_at == s.started_at and other.pk < s.pk
            )
            if earlier or other.energy_wh:
                retries.add(s.pk)
                break
    return retries


@dataclass(frozen=True)
class _Plans:
    """The subscription each session's payer holds there, with its included kWh used."""

    subscriptions: dict[int, Subscription]
    remaining: dict[int, Decimal]


def _plans(sessions: Sequence[ChargingSession]) -> _Plans:
    """`selectors.subscription_for_session` (by the session's card or its payer's email) and
    `selectors.included_kwh_used` of each session: at most three queries."""
    emails: dict[int, str] = {}
    for session_id, email in (
        Payment.objects.filter(session_id__in=[s.pk for s in sessions])
        .exclude(email="")
        .order_by("-id")  # the first payment's email wins, as services reads it
        .values_list("session_id", "email")
    ):
        emails[session_id] = email
    holders = [s for s in sessions if s.charger.property_id and (s.token_id or s.pk in emails)]
    if not holders:
        return _Plans({}, {})
    candidates = list(
        Subscription.objects.select_related("plan__property")
        .annotate(email_lower=Lower("email"))
        .filter(plan__property_id__in={s.charger.property_id for s in holders})
        .filter(
            Q(token_id__in={s.token_id for s in holders if s.token_id})
            | Q(email_lower__in={emails[s.pk].lower() for s in holders if s.pk in emails})
        )
        .order_by("-started_at")
    )
    chosen: dict[int, Subscription] = {}
    for s in holders:
        email = emails.get(s.pk, "").lower()
        for sub in candidates:
            by_card = bool(s.token_id) and sub.token_id == s.token_id
            by_email = bool(email) and sub.email_lower == email
            if (
                sub.plan.property_id == s.charger.property_id
                and (by_card or by_email)
                and sub.started_at <= s.started_at
                and (sub.ends_at is None or sub.ends_at > s.started_at)
            ):
                chosen[s.pk] = sub
                break
    remaining: dict[int, Decimal] = {}
    if chosen:
        used = list(
            SessionCharge.objects.filter(
                subscription_id__in={sub.pk for sub in chosen.values()}
            ).values_list("subscription_id", "session_id", "started_at", "included_kwh_used")
        )
        for session_id, held in chosen.items():
            start = next(s.started_at for s in holders if s.pk == session_id)
            month_start, month_end = month_bounds(start, plan_zone(held.plan))
            total = sum(
                (
                    amount or ZERO
                    for sub_id, other_id, at, amount in used
                    if sub_id == held.pk
                    and other_id != session_id
                    and at is not None
                    and month_start <= at < month_end
                ),
                ZERO,
            )
            remaining[session_id] = max(held.plan.included_kwh - total, ZERO)
    return _Plans(chosen, remaining)


def _facts(
    sessions: Sequence[ChargingSession],
) -> dict[int, pricing.SessionFacts]:
    ids = [s.pk for s in sessions]
    samples = _samples(ids)
    statuses = _statuses(sessions)
    retries = _retries(sessions)
    plans = _plans(sessions)
    waits = waiting_periods_many(ids)
    signatures = session_signatures(sessions)
    facts = {}
    for s in sessions:
        signed = signed_energy(signatures[s.pk])
        start_wh, stop_wh = signed if signed is not None else (s.meter_start_wh, s.meter_stop_wh)
        sub = plans.subscriptions.get(s.pk)
        plan = (
            pricing.PlanTerms(
                name=sub.plan.name,
                included_kwh_remaining=plans.remaining[s.pk],
                energy_discount_percent=sub.plan.energy_discount_percent,
            )
            if sub is not None
            else None
        )
        started_at, stopped_at = pricing.clock_span(
            started_at=s.started_at,
            stopped_at=s.stopped_at,
            received_start_at=s.received_start_at,
            received_stop_at=s.received_stop_at,
        )
        facts[s.pk] = pricing.SessionFacts(
            started_at=started_at,
            stopped_at=stopped_at,
            meter_start_wh=start_wh,
            meter_stop_wh=stop_wh,
            energy_signed=signed is not None,
            samples=tuple(samples[s.pk]),
            statuses=tuple(statuses[s.pk]),
            repeated_attempt=s.pk in retries,
            plan=plan,
            waiting=tuple(waits[s.pk]),
        )
    return facts


def stored_charge(session: ChargingSession) -> SessionCharge | None:
    """The session's stored charge when its query selected it (`select_related("charge")`)."""
    return getattr(session, "charge", None)  # its DoesNotExist is also an AttributeError


def needs_pricing(session: ChargingSession) -> bool:
    """Whether the session's cost must be computed: it has no final stored charge (it is still
    charging, or it stopped and the pricing sweep has not reached it)."""
    charge = stored_charge(session)
    return charge is None or not charge.final or session.stopped_at is None


# Sessions whose facts are read together: a page's 50 in one go; a CSV chunk of 2,000 in slices,
# so the per-session OR of the status and retry reads stays short (SQLite's expression depth is
# 1,000, and a long OR is slow to plan on PostgreSQL).
PRICE_BATCH = 200


def sessions_cost(sessions: Sequence[ChargingSession]) -> dict[int, pricing.Cost]:
    """The cost of each session (by pk) under its price version, so far for one still charging:
    `services.session_cost` of each, in a constant number of queries (none when the list is
    empty). Without a rate the cost has no lines and totals of zero (nothing is charged), as
    `services.session_cost` says. The sessions must have been read with `charger__property`."""
    sessions = list(sessions)
    if not sessions:
        return {}
    rates = _rates(sessions)
    priced = [s for s in sessions if rates[s.pk] is not None]
    facts: dict[int, pricing.SessionFacts] = {}
    for start in range(0, len(priced), PRICE_BATCH):
        facts.update(_facts(priced[start : start + PRICE_BATCH]))
    out: dict[int, pricing.Cost] = {}
    for s in sessions:
        prop = s.charger.property if s.charger.property_id else None
        out[s.pk] = pricing.Cost(
            currency=prop.currency if prop is not None else "EUR",
            final=s.stopped_at is not None,
        )
    for s in priced:
        rate = rates[s.pk]
        assert rate is not None
        out[s.pk] = pricing.session_cost(rate_terms(rate), facts[s.pk])
    return out


def sessions_price_so_far(sessions: Sequence[ChargingSession]) -> dict[int, dict | None]:
    """Answer the sessions page and CSV (chargers.web.providers.session_prices): each session's
    {"total", "currency", "final"}, the stored charge when final, else priced now in the batch;
    None when no rate applies."""
    sessions = list(sessions)
    out: dict[int, dict | None] = {}
    for s in sessions:
        charge = stored_charge(s)
        if not needs_pricing(s) and charge is not None:
            out[s.pk] = {"total": charge.total, "currency": charge.currency, "final": True}
    for pk, cost in sessions_cost([s for s in sessions if s.pk not in out]).items():
        out[pk] = (
            None
            if not cost.lines
            else {"total": cost.total, "currency": cost.currency, "final": cost.final}
        )
    return out

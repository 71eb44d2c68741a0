"""The support home's one search (admin): find the customer or the charger a question is about.

`find(query)` looks each word of the search (support.find_query) up where it can live: a
station id among chargers, an email among payments, tickets, sessions paid by card and user
accounts, the card's last four digits (narrowed by a day or an amount) among card payments, a
number among sessions, transactions and payments, a reference among tickets and payment
references. What it finds comes with the customer's recent sessions, payments and tickets and
the charger's state, each linked to its admin page (and the charger to its Logs and portal view).
Times are shown in UTC and say so; money with the currency's own decimals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.urls import reverse

from billing.models import Payment
from billing.money import round_money
from chargers.models import Charger, ChargingSession

from .find_query import Query, parse
from .models import Ticket

RECENT = 10


@dataclass
class Row:
    title: str
    url: str
    facts: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Found:
    query: Query
    chargers: list[Row] = field(default_factory=list)
    sessions: list[Row] = field(default_factory=list)
    payments: list[Row] = field(default_factory=list)
    tickets: list[Row] = field(default_factory=list)
    people: list[Row] = field(default_factory=list)

    @property
    def sections(self) -> list[tuple[str, list[Row]]]:
        return [
            ("Chargers", self.chargers),
            ("People", self.people),
            ("Payments", self.payments),
            ("Sessions", self.sessions),
            ("Tickets", self.tickets),
        ]

    @property
    def count(self) -> int:
        return sum(len(rows) for _, rows in self.sections)


def _utc(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "–"


def money_text(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return "–"
    return f"{currency} {round_money(amount, currency)}"


def _admin(obj: Any) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def _charger_row(charger: Charger) -> Row:
    connectors = ", ".join(
        f"port {c.connector_id} {c.status}"
        + (f" ({c.error_code})" if c.error_code not in ("", "NoError") else "")
        for c in charger.connectors.all()
    )
    facts = [
        "online" if charger.is_online() else f"offline (last heard {_utc(charger.last_seen_at)})",
        connectors or "no port reported yet",
    ]
    if charger.property is not None:
        facts.append(f"{charger.property.name} ({charger.property.organization.name})")
    return Row(
        title=charger.station_id,
        url=_admin(charger),
        facts=facts,
        links=[
            ("Logs", reverse("chargers:charger-logs", args=[charger.station_id])),
            ("Sessions", reverse("chargers:charger-sessions", args=[charger.station_id])),
            ("Portal view", reverse("chargers:charger-detail", args=[charger.station_id])),
        ],
    )


def _session_row(session: ChargingSession) -> Row:
    energy = session.energy_wh
    facts = [
        f"started {_utc(session.started_at)}",
        "charging" if session.status == ChargingSession.Status.ACTIVE else "ended",
        f"{energy / 1000:.3f} kWh" if energy is not None else "no energy reading yet",
        f"card {session.id_tag}" if session.id_tag else "no card",
    ]
    # The title names the session as the customer knows it (charger and connector); the numbers
    # an agent may have been given follow as facts.
    facts.append(f"session {session.pk}, transaction {session.transaction_id}")
    return Row(
        title=f"{session.charger.station_id} · connector {session.connector_id}",
        url=_admin(session),
        facts=facts,
        links=[("Portal view", reverse("chargers:session-detail", args=[session.pk]))],
    )


def _payment_row(payment: Payment) -> Row:
    facts = [
        f"{payment.get_status_display()} {_utc(payment.created_at)}",
        f"held {money_text(payment.amount_held, payment.currency)}, captured "
        f"{money_text(payment.amount_captured, payment.currency)}"
        + (
            f", refunded {money_text(payment.amount_refunded, payment.currency)}"
            if payment.amount_refunded
            else ""
        ),
    ]
    if payment.email:
        facts.append(payment.email)
    facts.append(f"payment {payment.pk}")
    card = f" · card ending {payment.card_last4}" if payment.card_last4 else ""
    title = f"{money_text(payment.amount_captured or payment.amount_held, payment.currency)}{card}"
    return Row(title=title, url=_admin(payment), facts=facts)


def _ticket_row(ticket: Ticket) -> Row:
    return Row(
        title=f"{ticket.get_topic_display()} · {ticket.reference}",
        url=_admin(ticket),
        facts=[
            f"{ticket.get_status_display()} {_utc(ticket.created_at)}",
            ticket.email or ticket.name or "no contact",
            ticket.station_id or "no charger named",
        ],
    )


def _person_row(user: Any) -> Row:
    return Row(
        title=user.get_full_name() or user.email or user.get_username(),
        url=_admin(user),
        facts=[user.email, f"joined {_utc(user.date_joined)}"],
    )


def _any_email(field_name: str, emails: tuple[str, ...]) -> Q:
    match = Q(pk__in=[])
    for email in emails:
        match |= Q(**{f"{field_name}__iexact": email})
    return match


def _payments(query: Query) -> QuerySet[Payment]:
    match = Q(pk__in=query.numbers) | _any_email("email", query.emails)
    if query.words:
        match |= Q(reference__in=query.words)
    if query.last4:
        by_card = Q(card_last4=query.last4)
        if query.day is not None:
            by_card &= Q(created_at__date__gte=query.day - timedelta(days=1))
            by_card &= Q(created_at__date__lte=query.day + timedelta(days=1))
        if query.amount is not None:
            by_card &= (
                Q(amount_held=query.amount)
                | Q(amount_captured=query.amount)
                | Q(amount_refunded=query.amount)
            )
        match |= by_card
    return Payment.objects.filter(match).order_by("-created_at")


def _allowed(user: Any, model: Any) -> bool:
    """The agent's own admin rule: a kind of record is listed only to who may view it in admin."""
    if user is None:
        return True
    meta = model._meta
    return bool(
        user.has_perm(f"{meta.app_label}.view_{meta.model_name}")
        or user.has_perm(f"{meta.app_label}.change_{meta.model_name}")
    )


def find(text: str, user: Any = None) -> Found:
    """Everything the search names, most recent first (at most RECENT of each kind), of the
    kinds `user` may view in admin (every kind when no user is given)."""
    query = parse(text)
    found = Found(query=query)
    if query.empty:
        return found
    found = _find(query)
    for attr, model in (
        ("chargers", Charger),
        ("sessions", ChargingSession),
        ("payments", Payment),
        ("tickets", Ticket),
        ("people", get_user_model()),
    ):
        if not _allowed(user, model):
            setattr(found, attr, [])
    return found


def _find(query: Query) -> Found:
    found = Found(query=query)
    by_station = Q(pk__in=[])
    for word in query.words:
        by_station |= Q(station_id__iexact=word)
    chargers = list(
        Charger.objects.filter(by_station)
        .select_related("property__organization")
        .prefetch_related("connectors")[:RECENT]
    )
    found.chargers = [_charger_row(c) for c in chargers]
    payments = list(_payments(query)[:RECENT])
    found.payments = [_payment_row(p) for p in payments]
    sessions = Q(pk__in=query.numbers) | Q(transaction_id__in=query.numbers)
    sessions |= Q(charger__in=chargers) | Q(pk__in=[p.session_id for p in payments if p.session_id])
    found.sessions = [
        _session_row(s)
        for s in ChargingSession.objects.filter(sessions)
        .select_related("charger")
        .order_by("-started_at")[:RECENT]
    ]
    tickets = Q(reference__in=query.words) | Q(station_id__in=[c.station_id for c in chargers])
    tickets |= _any_email("email", query.emails)
    found.tickets = [
        _ticket_row(t) for t in Ticket.objects.filter(tickets).order_by("-created_at")[:RECENT]
    ]
    if query.emails:
        people = get_user_model().objects.filter(_any_email("email", query.emails)).order_by("pk")
        found.people = [_person_row(u) for u in people[:RECENT]]
    return found

"""Reads for billing: the rate in force, session facts, payouts and ledger balances."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import F, Q, QuerySet, Sum

from backoffice.formatting import zone_or_utc
from backoffice.models import Property
from backoffice.tenancy import readable_organization_ids

from .models import (
    LedgerEntry,
    LedgerTransaction,
    Payment,
    Payout,
    Rate,
    SessionCharge,
    Subscription,
)
from .money import exact_sum


def rate_for_charger(charger, at: datetime) -> Rate | None:
    """Return the rate in force at `at` for the charger: its own rate wins over the property's.

    A rate is in force when valid_from <= at < valid_until (open-ended without valid_until);
    when several are, the one that started last wins.
    """
    if charger is None or not charger.property_id:
        return None
    in_force = (
        Rate.objects.select_related("property", "charger")
        .filter(property_id=charger.property_id, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
    )
    # One query: the charger's own rates sort before the property's (NULL charger last).
    return (
        in_force.filter(Q(charger_id=charger.pk) | Q(charger__isnull=True))
        .order_by(F("charger_id").asc(nulls_last=True), "-valid_from", "-id")
        .first()
    )


def rate_in_force(property_id: int, charger, at: datetime) -> Rate | None:
    """The rate a new price for this scope replaces: the charger's (its own, else the
    location's, `rate_for_charger`), or the location's own when `charger` is None."""
    if charger is not None:
        return rate_for_charger(charger, at)
    return (
        Rate.objects.select_related("property")
        .filter(property_id=property_id, charger__isnull=True, valid_from__lte=at)
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=at))
        .order_by("-valid_from", "-id")
        .first()
    )


def location_tax_mode(property_id: int) -> bool | None:
    """Whether the location's latest price includes tax (None: the location has no price yet).
    A new price keeps it unless the host changes it."""
    return (
        Rate.objects.filter(property_id=property_id)
        .order_by("-valid_from", "-id")
        .values_list("prices_include_tax", flat=True)
        .first()
    )


def rates_for_property(property_id: int) -> QuerySet:
    return (
        Rate.objects.select_related("property", "charger")
        .filter(property_id=property_id)
        .order_by("charger__station_id", "-valid_from")
    )


def rates_for(user) -> QuerySet:
    queryset = Rate.objects.select_related("property", "charger")
    ids = readable_organization_ids(user)
    if ids is not None:
        queryset = queryset.filter(property__organization_id__in=ids)
    return queryset


def subscription_for_session(session, *, email: str = "") -> Subscription | None:
    """Return the subscription whose plan covers this session (its token or payer email)."""
    prop_id = session.charger.property_id
    if not prop_id:
        return None
    holder = Q()
    if session.token_id:
        holder |= Q(token_id=session.token_id)
    if email:
        holder |= Q(email__iexact=email)
    if not holder:
        return None
    return (
        Subscription.objects.select_related("plan")
        .filter(holder, plan__property_id=prop_id, started_at__lte=session.started_at)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=session.started_at))
        .order_by("-started_at")
        .first()
    )


def included_kwh_used(
    subscription: Subscription,
    *,
    month_start: datetime,
    month_end: datetime,
    exclude_session_id: int | None,
) -> Decimal:
    used = (
        SessionCharge.objects.filter(
            subscription=subscription, started_at__gte=month_start, started_at__lt=month_end
        )
        .exclude(session_id=exclude_session_id)
        .aggregate(total=Sum("included_kwh_used"))["total"]
    )
    return exact_sum(used)


def account_balance(account: str) -> Decimal:
    return exact_sum(
        LedgerEntry.objects.filter(account=account).aggregate(total=Sum("amount"))["total"]
    )


def host_balance(organization_id: int, currency: str) -> Decimal:
    """Return what the platform owes the organization (credit balance of its host account)."""
    from .ledger import host_account

    return -account_balance(host_account(organization_id, currency))


def payouts_for(user) -> QuerySet:
    queryset = Payout.objects.select_related("organization")
    ids = readable_organization_ids(user)
    if ids is not None:
        queryset = queryset.filter(organization_id__in=ids)
    return queryset


def payments_for(user) -> QuerySet:
    queryset = Payment.objects.select_related("organization", "session", "session__charger")
    ids = readable_organization_ids(user)
    if ids is not None:
        queryset = queryset.filter(organization_id__in=ids)
    return queryset


def payout_breakdown(payout: Payout) -> dict:
    """Return the payout's movements grouped per session, plus the unattached ones."""
    items = (
        LedgerTransaction.objects.filter(payout=payout)
        .select_related("session", "session__charger", "refund")
        .order_by("occurred_at", "id")
    )
    sessions: dict = {}
    other = []
    for item in items:
        if item.session_id:
            row = sessions.setdefault(
                item.session_id,
                {
                    "session": item.session,
                    "gross": Decimal(0),
                    "processing_fee": Decimal(0),
                    "platform_fee": Decimal(0),
                    "refunds": Decimal(0),
                },
            )
            key = {"guest_charge": "gross", "refund": "refunds"}.get(item.kind, item.kind)
            if key in row:
                row[key] += item.amount
        else:
            other.append(item)
    rows = list(sessions.values())
    for row in rows:
        row["net"] = row["gross"] - row["processing_fee"] - row["platform_fee"] - row["refunds"]
    return {"sessions": rows, "other": other}


def payout_overview(organizations, now: datetime) -> list[dict]:
    """Per organization: its balance per currency (earned, not yet in a payout: the credit
    balance of its host ledger account), what is on its way to the bank (pending payouts),
    its payout schedule and the date of its next payout."""
    from .models import BillingSettings
    from .payout_schedule import SCHEDULE_TEXT, next_payout_at, period_end_for

    org_ids = [o.pk for o in organizations]
    terms = {
        row.organization_id: row
        for row in BillingSettings.objects.filter(organization_id__in=org_ids)
    }
    balances: dict[int, list[tuple[str, Decimal]]] = {pk: [] for pk in org_ids}
    accounts = Q()
    for pk in org_ids:
        accounts |= Q(account__startswith=f"host:{pk}:")
    rows = (
        (
            LedgerEntry.objects.filter(accounts)
            .values("account")
            .annotate(total=Sum("amount"))
            .order_by("account")
        )
        if org_ids
        else []
    )
    for row in rows:
        _, organization_id, currency = row["account"].split(":")
        balances[int(organization_id)].append((currency, -exact_sum(row["total"])))
    in_transit: dict[int, list[tuple[str, Decimal]]] = {pk: [] for pk in org_ids}
    pending = (
        Payout.objects.filter(organization_id__in=org_ids, status=Payout.Status.PENDING)
        .values("organization_id", "currency")
        .annotate(total=Sum("net"))
        .order_by("currency")
    )
    for row in pending:
        in_transit[row["organization_id"]].append((row["currency"], exact_sum(row["total"])))
    overview = []
    zones = organization_zones(org_ids)
    for organization in organizations:
        row = terms.get(organization.pk)
        period = row.payout_period if row else BillingSettings.Period.MONTHLY
        zone = zones[organization.pk]
        overview.append(
            {
                "organization": organization,
                "balances": balances[organization.pk],
                "in_transit": in_transit[organization.pk],
                "schedule": SCHEDULE_TEXT.get(period, period),
                "minimum": row.minimum_payout if row else Decimal(0),
                "next_payout": next_payout_at(
                    period,
                    now,
                    zone=zone,
                    due_at_last_boundary=_due_at(
                        organization.pk,
                        [currency for currency, _ in balances[organization.pk]],
                        period_end_for(period, now, zone),
                        row.minimum_payout if row else Decimal(0),
                    ),
                ).date(),  # a midnight in the organization's zone: its date there
            }
        )
    return overview


def _due_at(
    organization_id: int, currencies: list[str], boundary: datetime, minimum: Decimal
) -> bool:
    """Whether the payout run will pay at `boundary` that has passed: in some currency, no
    payout holds that period yet and the movements booked before it, in no payout, come to
    more than zero and at least the minimum (billing.services.payout_create's rule)."""
    from .ledger import host_account

    for currency in currencies:
        if Payout.objects.filter(
            organization_id=organization_id, currency=currency, period_end=boundary
        ).exists():
            continue
        owed = -exact_sum(
            LedgerEntry.objects.filter(
                account=host_account(organization_id, currency),
                transaction__payout__isnull=True,
                transaction__occurred_at__lt=boundary,
            )
            .exclude(transaction__kind=LedgerTransaction.Kind.PAYOUT)
            .aggregate(total=Sum("amount"))["total"]
        )
        if owed > 0 and owed >= minimum:
            return True
    return False


def organization_zones(organization_ids: Iterable[int]) -> dict[int, ZoneInfo]:
    """The time zone each organization's statements, scheduled reports and payout periods count
    days and months in (docs/billing.md "Statements"): its locations' zone when they all share
    one, else UTC (organizations have no zone of their own). One query."""
    ids = set(organization_ids)
    found: dict[int, set[str]] = {pk: set() for pk in ids}
    rows = (
        Property.objects.filter(organization_id__in=ids)
        .values_list("organization_id", "timezone")
        .distinct()
    )
    for organization_id, name in rows:
        found[organization_id].add(name)
    return {
        pk: zone_or_utc(next(iter(names))) if len(names) == 1 else ZoneInfo("UTC")
        for pk, names in found.items()
    }


def organization_zone(organization_id: int) -> ZoneInfo:
    """`organization_zones` of one organization."""
    return organization_zones([organization_id])[organization_id]

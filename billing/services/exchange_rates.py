"""Foreign-exchange reference rates: fetched from the ECB's daily file (EXCHANGE_RATES_URL,
through the outbound guard) and read back for a bill in another currency than the charge.
The arithmetic is the pure billing.exchange."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import httpx
from django.conf import settings
from django.db import transaction

from backoffice import outbound

from .. import exchange
from ..models import ExchangeRate

logger = logging.getLogger(__name__)


class RatesUnavailable(Exception):
    """The rates could not be fetched or read (in words, never the exception's text)."""


def exchange_rates_fetch() -> int:
    """Fetch the newest day of reference rates and keep it; return how many rates were kept."""
    url = settings.EXCHANGE_RATES_URL
    if not url:
        return 0
    try:
        with outbound.http_client(timeout=15) as http:
            response = http.get(url)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise RatesUnavailable(outbound.failure_words(exc, "the exchange-rate source")) from None
    try:
        day, rates = exchange.parse_ecb_daily(response.text)
    except exchange.NotRates as exc:
        raise RatesUnavailable(str(exc)) from None
    with transaction.atomic():
        for currency, per_euro in rates.items():
            ExchangeRate.objects.update_or_create(
                day=day, currency=currency, defaults={"per_euro": per_euro}
            )
    return len(rates)


@dataclass(frozen=True)
class Conversion:
    rate: Decimal  # units of the target per unit of the source
    day: date  # the reference day the rate is of
    amount: Decimal  # converted, rounded to the target's minor unit


def conversion(amount: Decimal, source: str, target: str, *, on: date) -> Conversion | None:
    """`amount` of `source` in `target` at the newest reference day on or before `on` that
    lists both; None when no such day is known (nobody is charged on a guess)."""
    wanted = {source, target} - {"EUR"}
    days = (
        ExchangeRate.objects.filter(day__lte=on, currency__in=wanted)
        .values_list("day", flat=True)
        .order_by("-day")
        .distinct()[:10]
    )
    for day in days:
        rows = dict(
            ExchangeRate.objects.filter(day=day, currency__in=wanted).values_list(
                "currency", "per_euro"
            )
        )
        rate = exchange.cross_rate(rows, source, target)
        if rate is not None:
            return Conversion(rate, day, exchange.convert(amount, rate, target))
    return None

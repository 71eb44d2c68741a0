"""Issue 51 item 8: the sessions API reads a finished session's stored price with the row instead
of pricing each one again (a rate query and more per session): the same cost, and a page of
sessions costs the same number of queries however many sessions it lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Rate
from billing.services import session_cost, session_price
from chargers.models import ChargingSession

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _sessions(charger, count: int, start: int = 0) -> list[ChargingSession]:
    made = []
    for i in range(start, start + count):
        session = ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=1000 + i,
            id_tag="04A1B2C3",
            started_at=T0 + timedelta(hours=i),
            stopped_at=T0 + timedelta(hours=i, minutes=40),
            meter_start_wh=1000 * i,
            meter_stop_wh=1000 * i + 7345,
            status="completed",
        )
        session_price(session_id=session.pk)
        made.append(session)
    return made


def _listing_queries(api_client) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as queries:
        body = api_client.get("/api/v1/sessions/?page_size=50").json()
    return len(queries), body


def test_the_listing_reads_stored_prices_in_constant_queries(api_client, host, charger, prop):
    Rate.objects.create(
        property=prop,
        valid_from=T0 - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
    )
    api_client.force_authenticate(host)
    first = _sessions(charger, 2)
    few, body = _listing_queries(api_client)
    by_id = {row["id"]: row["cost"] for row in body["results"]}
    for session in first:
        assert by_id[session.pk] == session_cost(session).as_dict()
    _sessions(charger, 6, start=2)
    many, body = _listing_queries(api_client)
    assert len(body["results"]) == 8
    assert many == few, (few, many)
    # 1.00 + 7.345 kWh × 0.35 (2.57075 -> 2.57) = 3.57, tax included in the prices.
    assert {row["cost"]["total"] for row in body["results"]} == {"3.57"}

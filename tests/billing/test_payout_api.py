"""Payouts and payments over the API: owners only, breakdown down to sessions, refunds."""

from datetime import timedelta
from decimal import Decimal

import pytest

from billing.services import payout_create
from tests.billing.helpers import T0, paid_session, unit_rate
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_owner_sees_payout_breakdown_and_refunds_over_the_api(api_client, host, prop, charger):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000)
    api_client.force_authenticate(host)
    refund = api_client.post(
        f"/api/v1/payments/{payment.pk}/refund/",
        {"amount": "2.50", "reason": "idle fee in error", "idempotency_key": "api-1"},
        format="json",
    )
    assert refund.status_code == 201, refund.content
    assert refund.json()["payment"]["amount_refunded"] == "2.50"
    again = api_client.post(
        f"/api/v1/payments/{payment.pk}/refund/",
        {"amount": "2.50", "reason": "idle fee in error", "idempotency_key": "api-1"},
        format="json",
    )
    assert again.json()["id"] == refund.json()["id"]
    too_much = api_client.post(
        f"/api/v1/payments/{payment.pk}/refund/", {"amount": "7.51", "reason": "x"}, format="json"
    )
    assert too_much.status_code == 400 and "At most 7.50 EUR" in str(too_much.json())
    payout = payout_create(
        organization_id=prop.organization_id, currency="EUR", period_end=T0 + timedelta(days=10)
    )
    listing = api_client.get("/api/v1/payouts/").json()["results"]
    assert [p["reference"] for p in listing] == [payout.reference]
    assert listing[0]["net"] == "7.50"
    breakdown = api_client.get(f"/api/v1/payouts/{payout.pk}/breakdown/").json()
    assert breakdown["sessions"] == [
        {
            "session_id": session.pk,
            "transaction_id": session.transaction_id,
            "station_id": "CP-TEST-1",
            "started_at": breakdown["sessions"][0]["started_at"],
            "gross": "10.00",
            "processing_fee": "0.00",
            "platform_fee": "0.00",
            "refunds": "2.50",
            "net": "7.50",
        }
    ]


def test_managers_and_outsiders_cannot_see_payouts_or_refund(api_client, prop, charger):
    unit_rate(prop)
    _session, payment = paid_session(charger, wh=10000)
    payout_create(
        organization_id=prop.organization_id, currency="EUR", period_end=T0 + timedelta(days=10)
    )
    manager = MembershipFactory(organization=prop.organization, role="manager").user
    api_client.force_authenticate(manager)
    assert api_client.get("/api/v1/payouts/").json()["results"] == []
    assert api_client.get("/api/v1/payments/").json()["results"] == []
    assert (
        api_client.post(
            f"/api/v1/payments/{payment.pk}/refund/", {"amount": "1", "reason": "x"}, format="json"
        ).status_code
        == 404
    )
    outsider = MembershipFactory(role="owner").user
    api_client.force_authenticate(outsider)
    assert api_client.get(f"/api/v1/payments/{payment.pk}/").status_code == 404
    assert payment.amount_refunded == Decimal("0")

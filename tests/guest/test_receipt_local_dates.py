"""A receipt's dates are the location's: a refund made at 23:30 UTC on 31 March is dated
1 April on a receipt for a charger in Tokyo (08:30 there), on the page as in the email."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from billing.models import Refund
from billing.services import refund_issue
from guest.models import GuestSession
from guest.services import receipt_email
from tests.billing.helpers import paid_session, unit_rate

pytestmark = pytest.mark.django_db


def test_a_refund_is_dated_on_the_locations_day(prop, charger):
    prop.timezone = "Asia/Tokyo"
    prop.save(update_fields=["timezone"])
    unit_rate(prop)
    session, payment = paid_session(charger, wh=10000, email="dana@example.com")
    gs = GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="dana@example.com",
        payment_id=payment.pk,
        charging_session=session,
        state=GuestSession.State.FINISHED,
    )
    refund_issue(
        payment=payment,
        amount=Decimal("1.00"),
        reason="Goodwill",
        source="host",
        idempotency_key="r",
    )
    Refund.objects.update(created_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC))

    page = Client().get(reverse("guest:receipt", args=[gs.key])).content.decode()
    assert "Refunded 1 Apr 2026: Goodwill" in page
    assert "Times in Asia/Tokyo" in page
    mail.outbox.clear()
    receipt_email(gs=gs)
    assert "Refunded 1 Apr 2026: -EUR 1.00 (Goodwill)" in mail.outbox[0].body

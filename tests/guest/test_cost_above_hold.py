"""A guest session that cost more than the hold on the card (docs/guest.md, "Settlement"): the
card is charged the hold, never more than the guest authorized; the host's session page says
what was not collected; nothing is tried on the card again."""

from decimal import Decimal

import pytest

from billing.models import LedgerTransaction, Payment, SandboxIntent
from billing.services import guest_payment_settle
from tests.billing.helpers import paid_session, unit_rate
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def test_a_session_above_its_hold_is_charged_the_hold_and_the_host_sees_the_rest(
    client, prop, charger
):
    unit_rate(prop)
    session, payment = paid_session(charger, wh=50000, hold=Decimal("30.00"))  # costs 50.00
    assert (payment.status, payment.amount_captured) == (Payment.Status.CAPTURED, Decimal("30.00"))
    intent = SandboxIntent.objects.get(pk=payment.reference)
    assert (intent.amount, intent.amount_received) == (3000, 3000)  # never above the hold
    assert LedgerTransaction.objects.get(kind="guest_charge").amount == Decimal("30.00")

    host = MembershipFactory(organization=prop.organization, role="owner").user
    client.force_login(host)
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert 'data-settlement="short"' in page
    assert "charged 30.00 EUR of 50.00 EUR" in page and "not collected" in page

    # Settling again (the sweep, the receipt page) charges nothing more.
    again = guest_payment_settle(payment=payment, session=session)
    assert again.amount_captured == Decimal("30.00")
    assert SandboxIntent.objects.get(pk=payment.reference).amount_received == 3000
    assert LedgerTransaction.objects.filter(kind="guest_charge").count() == 1

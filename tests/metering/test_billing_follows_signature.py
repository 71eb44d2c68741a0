"""Billing follows the signature (issue 39 item 3): a verified signed start and end are the
energy billed and the charge says so; otherwise the settlement is held (nothing captured),
support gets a ticket, and the host's policy decides (hold by default, or bill the measured
energy). A hold is lifted by the sweep once the readings verify (a key registered)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.gateways import get_gateway
from billing.models import BillingSettings, Payment, SessionCharge
from billing.services import (
    guest_payment_record,
    guest_payment_settle,
    session_price,
    sessions_price_missing,
)
from chargers.models import ChargingSession
from metering import services as metering
from support.models import Ticket
from tests.billing.helpers import unit_rate
from tests.metering.signing import Meter, signed_data_16, tamper

pytestmark = pytest.mark.django_db(transaction=True)

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=3)
T1 = T0 + timedelta(hours=1)


def sample(value: str, context: str) -> dict:
    return {"value": value, "format": "SignedData", "context": context, "unit": "Wh"}


def signed_session(charger, meter: Meter, *, end_text: str | None = None) -> ChargingSession:
    """A finished 1.6 session whose StopTransaction carried both signed readings (OCA 3.1.4)
    and whose measured registers say 1000 -> 9000 Wh; signed: 1.000 -> 9.500 kWh."""
    start = meter.ocmf("B", "1.000", T0, pagination=31)
    end = end_text or meter.ocmf("E", "9.500", T1, pagination=32)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=424242,
        id_tag="GUEST",
        started_at=T0,
        stopped_at=T1,
        meter_start_wh=1000,
        meter_stop_wh=9000,
        status="completed",
        received_stop_at=timezone.now(),
        transaction_data=[
            {
                "timestamp": T1.isoformat(),
                "sampledValue": [
                    sample(signed_data_16(meter, start), "Transaction.Begin"),
                    sample(signed_data_16(meter, end), "Transaction.End"),
                ],
            }
        ],
    )


def tampered(meter: Meter) -> str:
    return tamper(meter.ocmf("E", "9.500", T1, pagination=32), '"RV":9.5', '"RV":9.6')


def guest_payment(session: ChargingSession) -> Payment:
    charger = session.charger
    result = get_gateway().authorize(
        Decimal("50.00"), charger.property.currency, "pm_card_visa", f"hold-{session.pk}"
    )
    assert result.ok
    return guest_payment_record(
        session_id=session.pk,
        organization_id=charger.property.organization_id,
        amount_held=Decimal("50.00"),
        currency=charger.property.currency,
        reference=result.reference,
        email="guest@example.com",
    )


@pytest.fixture
def meter(charger, prop) -> Meter:
    unit_rate(prop)
    meter = Meter()
    metering.meter_key_put(
        charger=charger, meter_serial=meter.serial, public_key=meter.public_key_hex
    )
    return meter


def test_verified_signed_readings_are_the_energy_billed(charger, meter):
    session = signed_session(charger, meter)
    charge = session_price(session_id=session.pk)
    assert charge is not None
    assert charge.energy_wh == Decimal(8500)  # signed end - signed start, not 9000 - 1000
    assert (charge.energy_source, charge.signature_status, charge.held) == (
        "signed",
        "verified",
        False,
    )
    assert charge.total == Decimal("8.50")
    payment = guest_payment_settle(payment=guest_payment(session), session=session)
    assert payment.status == Payment.Status.CAPTURED and payment.amount_captured == Decimal("8.50")


def test_an_invalid_signature_holds_the_settlement_and_tells_support(charger, meter):
    session = signed_session(charger, meter, end_text=tampered(meter))
    payment = guest_payment_settle(payment=guest_payment(session), session=session)
    assert payment.status == Payment.Status.AUTHORIZED  # nothing captured
    charge = SessionCharge.objects.get(session=session)
    assert charge.held and charge.signature_status == "invalid_signature"
    assert charge.energy_source == "measured"
    assert "invalid signature" in charge.hold_reason
    ticket = Ticket.objects.get(session=session)
    assert ticket.details["flag"] == "signed_meter_values"
    assert ticket.organization_id == charger.property.organization_id
    # Priced again: still one ticket.
    session_price(session_id=session.pk)
    assert Ticket.objects.filter(session=session).count() == 1


def test_the_policy_bill_measured_bills_the_chargers_registers(charger, meter):
    BillingSettings.objects.create(
        organization=charger.property.organization,
        signature_policy=BillingSettings.SignaturePolicy.BILL_MEASURED,
    )
    session = signed_session(charger, meter, end_text=tampered(meter))
    payment = guest_payment_settle(payment=guest_payment(session), session=session)
    assert payment.status == Payment.Status.CAPTURED
    charge = SessionCharge.objects.get(session=session)
    assert (charge.held, charge.energy_source, charge.energy_wh) == (
        False,
        "measured",
        Decimal(8000),
    )
    assert charge.signature_status == "invalid_signature"
    assert not Ticket.objects.filter(session=session).exists()


@pytest.mark.parametrize(
    ("organization", "property_", "held"),
    [
        ("bill_measured", "hold", True),  # the property overrides its organization
        ("hold", "bill_measured", False),
        (None, "bill_measured", False),
        ("bill_measured", None, False),  # no policy of its own: the organization's
    ],
)
def test_a_property_policy_overrides_the_organizations(
    charger, meter, organization, property_, held
):
    from billing.models import PropertySignaturePolicy

    if organization:
        BillingSettings.objects.create(
            organization=charger.property.organization, signature_policy=organization
        )
    if property_:
        PropertySignaturePolicy.objects.create(
            property=charger.property, signature_policy=property_
        )
    session = signed_session(charger, meter, end_text=tampered(meter))
    charge = session_price(session_id=session.pk)
    assert charge is not None and charge.held is held


def test_a_hold_is_lifted_by_the_sweep_once_the_key_is_registered(charger, prop):
    unit_rate(prop)
    meter = Meter()
    session = signed_session(charger, meter)  # no key registered yet: unknown_key
    payment = guest_payment_settle(payment=guest_payment(session), session=session)
    assert payment.status == Payment.Status.AUTHORIZED
    assert SessionCharge.objects.get(session=session).signature_status == "unknown_key"
    metering.meter_key_put(
        charger=charger, meter_serial=meter.serial, public_key=meter.public_key_hex
    )
    sessions_price_missing()
    charge = SessionCharge.objects.get(session=session)
    assert (charge.held, charge.energy_source, charge.energy_wh) == (False, "signed", Decimal(8500))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert payment.amount_captured == Decimal("8.50")


def test_a_session_without_signed_values_on_a_charger_without_keys_is_billed_as_before(
    charger, prop
):
    unit_rate(prop)
    session = signed_session(charger, Meter())
    session.transaction_data = None
    session.save()
    charge = session_price(session_id=session.pk)
    assert charge is not None
    assert (charge.held, charge.energy_source, charge.signature_status) == (False, "measured", "")
    assert charge.energy_wh == Decimal(8000)


def test_a_charger_with_a_key_whose_session_has_no_signed_end_is_held(charger, meter):
    session = signed_session(charger, meter)
    session.transaction_data = None
    session.save()
    charge = session_price(session_id=session.pk)
    assert charge is not None and charge.held and charge.signature_status == "incomplete"


def test_support_waives_a_hold_and_the_measured_energy_is_captured(charger, meter, admin_client):
    session = signed_session(charger, meter, end_text=tampered(meter))
    payment = guest_payment_settle(payment=guest_payment(session), session=session)
    assert payment.status == Payment.Status.AUTHORIZED
    response = admin_client.post(
        "/admin/billing/sessioncharge/",
        {
            "action": "waive_signature_hold",
            "_selected_action": [SessionCharge.objects.get(session=session).pk],
        },
    )
    assert response.status_code == 302
    charge = SessionCharge.objects.get(session=session)
    assert not charge.held and charge.hold_waived_at is not None
    assert charge.hold_waived_by is not None and charge.hold_waived_by.is_staff
    assert (charge.energy_source, charge.energy_wh) == ("measured", Decimal(8000))
    payment.refresh_from_db()
    assert payment.status == Payment.Status.CAPTURED
    assert payment.amount_captured == Decimal("8.00")
    session_price(session_id=session.pk)  # priced again: the decision stands
    assert not SessionCharge.objects.get(session=session).held


def test_the_session_api_and_page_say_the_settlement_is_held(charger, meter, client):
    """The hold is visible from outside: the session API's `settlement` and the host's session
    page in plain words; once support waives it, both say so."""
    from tests.factories import MembershipFactory

    owner = MembershipFactory(organization=charger.property.organization, role="owner").user
    client.force_login(owner)
    good = signed_session(charger, meter)
    session_price(session_id=good.pk)
    assert client.get(f"/api/v1/sessions/{good.pk}/").json()["settlement"] == {
        "status": "settled",
        "reason": "",
        "text": "Billed.",
    }
    assert "data-settlement" not in client.get(f"/sessions/{good.pk}/").content.decode()

    good.delete()
    session = signed_session(charger, meter, end_text=tampered(meter))
    session_price(session_id=session.pk)
    settlement = client.get(f"/api/v1/sessions/{session.pk}/").json()["settlement"]
    assert settlement["status"] == "held" and "invalid signature" in settlement["reason"]
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    assert 'data-settlement="held"' in page
    assert "Nothing is charged until the signature checks out or support decides." in page

    from billing.services import settlement_hold_waive

    settlement_hold_waive(session_id=session.pk, user=owner)
    settlement = client.get(f"/api/v1/sessions/{session.pk}/").json()["settlement"]
    assert settlement["status"] == "waived"
    assert 'data-settlement="waived"' in client.get(f"/sessions/{session.pk}/").content.decode()


def test_a_session_with_nothing_charged_has_no_settlement(charger, client):
    from tests.factories import MembershipFactory

    owner = MembershipFactory(organization=charger.property.organization, role="owner").user
    client.force_login(owner)
    session = ChargingSession.objects.create(
        charger=charger, connector_id=1, transaction_id=5151, id_tag="X", started_at=T0
    )
    assert client.get(f"/api/v1/sessions/{session.pk}/").json()["settlement"] is None

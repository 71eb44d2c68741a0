"""The processor held the card (a saved card or a payment method confirmed server-side, as the
driver's one-tap start does) but its answer never came back: the guest is told card payments are
unavailable, and the hold nobody recorded is found by the guest session's key and released by
the sweep, not left on the card for a week."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.gateways import PROCESSOR_FAILED, GatewayError
from billing.models import SandboxIntent
from guest import services
from guest.models import GuestSession
from tests.guest.test_start_flow import APPROVE

pytestmark = pytest.mark.django_db(transaction=True)


class AnswerLost:
    """The sandbox gateway, except that the answer to creating a hold is lost after the hold
    was made, and that the processor is out of reach while `down`."""

    def __init__(self, real):
        self.real, self.down = real, False

    def __getattr__(self, name):
        if self.down:
            raise GatewayError(PROCESSOR_FAILED)
        return getattr(self.real, name)

    def hold_create(self, **kwargs):
        self.real.hold_create(**kwargs)
        raise GatewayError(PROCESSOR_FAILED)


@pytest.fixture
def processor(monkeypatch):
    from billing.gateways import get_gateway

    gateway = AnswerLost(get_gateway())
    for where in ("guest.payments.get_gateway", "billing.services.payments.get_gateway"):
        monkeypatch.setattr(where, lambda: gateway)
    return gateway


def test_a_hold_whose_answer_was_lost_is_released_by_the_sweep(guest_charger, rate, processor):
    with pytest.raises(services.StartRefused) as refused:
        services.guest_start(
            charger=guest_charger,
            connector_id=1,
            email="driver@example.com",
            payment_method=APPROVE,
            site_url="https://charge.example",
        )
    assert refused.value.code == "payments_unavailable"
    assert "If your card was held, the hold will be released shortly" in refused.value.message
    gs = GuestSession.objects.get()
    assert gs.state == GuestSession.State.FAILED and gs.payment_id is None
    intent = SandboxIntent.objects.get(metadata__guest_session=gs.key)
    assert intent.status == "requires_capture"  # held, and nothing here knows it

    # The processor's search lags about a minute: the sweep looks a minute after the failure.
    later = timezone.now() + timedelta(minutes=2)
    processor.down = True
    services.guest_expire_overdue(now=later)  # out of reach: asked again later
    intent.refresh_from_db()
    assert intent.status == "requires_capture"
    processor.down = False
    services.guest_expire_overdue(now=later)
    intent.refresh_from_db()
    # Before: still held, for the week the processor keeps an authorization.
    assert intent.status == "canceled"
    gs.refresh_from_db()
    assert "Nothing stays held on your card" in gs.failure_message

"""The processor fails (5xx, 429, a timeout) when a guest's hold must be released because the
start failed or the guest cancelled: the guest is told plainly, not shown a server error, and
the hold is released by the sweep once the processor answers, never left on the card."""

import pytest

from billing.gateways import PROCESSOR_FAILED, PaymentResult
from billing.models import Payment, SandboxIntent
from guest import services
from guest.models import GuestSession
from tests.guest.test_start_flow import APPROVE, FakeCharger

pytestmark = pytest.mark.django_db(transaction=True)


class ReleaseDown:
    """The sandbox gateway, except that the processor does not complete releases while down."""

    def __init__(self, real):
        self.real, self.down, self.calls = real, True, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def release(self, reference, idempotency_key):
        self.calls += 1
        if self.down:
            return PaymentResult(False, reference, PROCESSOR_FAILED)
        return self.real.release(reference, idempotency_key)


@pytest.fixture
def processor(monkeypatch):
    from billing.gateways import get_gateway

    gateway = ReleaseDown(get_gateway())
    monkeypatch.setattr("billing.services.payments.get_gateway", lambda: gateway)
    return gateway


def _start(charger, monkeypatch, answer="Accepted"):
    monkeypatch.setattr(services, "send_command_sync", FakeCharger(answer=answer))
    monkeypatch.setattr("guest.schedule.start_check", lambda *a, **k: None)
    return services.guest_start(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        payment_method=APPROVE,
        site_url="https://charge.example",
    )


def _held(gs):
    return SandboxIntent.objects.get(pk=gs.payment_reference).status == "requires_capture"


def test_a_refused_start_whose_release_fails_is_released_by_the_sweep(
    guest_charger, rate, monkeypatch, processor
):
    # Before: the release's GatewayError escaped guest_start (a server error for the guest) and
    # the failed guest session's hold stayed on the card: no sweep looked at it again.
    gs = _start(guest_charger, monkeypatch, answer="Rejected")
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.FAILED and _held(gs)
    assert "will be released" in gs.failure_message and "not charged" in gs.failure_message

    services.guest_expire_overdue()  # still down: asked again, nothing breaks
    assert _held(gs) and processor.calls == 2
    processor.down = False
    services.guest_expire_overdue()
    gs.refresh_from_db()
    assert not _held(gs)
    assert Payment.objects.get(pk=gs.payment_id).status == Payment.Status.RELEASED
    assert "The hold on your card was released" in gs.failure_message
    services.guest_expire_overdue()
    assert processor.calls == 3  # released once; nothing left to ask


def test_cancelling_while_the_processor_is_down_shows_the_session_not_an_error(
    client, guest_charger, rate, monkeypatch, processor
):
    gs = _start(guest_charger, monkeypatch)
    assert gs.state == GuestSession.State.STARTING
    client.raise_request_exception = False
    response = client.post(f"/s/session/{gs.key}/stop/", follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "will be released" in page and "Traceback" not in page
    processor.down = False
    services.guest_expire_overdue()
    assert not _held(gs)

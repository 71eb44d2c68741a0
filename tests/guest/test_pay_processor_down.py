"""The card processor does not answer while the guest is on the pay page or comes back from it:
the guest reads plainly what happened to their card and what to do, never a server error, and
the page works again once the processor answers."""

import pytest

from billing.gateways import PROCESSOR_FAILED, GatewayError
from guest import services
from guest.models import GuestSession

pytestmark = pytest.mark.django_db(transaction=True)


class HoldsUnreadable:
    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        return getattr(self.real, name)

    def hold_get(self, reference):
        raise GatewayError(PROCESSOR_FAILED)


@pytest.fixture
def pending(guest_charger, rate):
    return services.guest_start(
        charger=guest_charger, connector_id=1, email="guest@example.com", site_url="https://x"
    )


@pytest.mark.parametrize("step", ["pay", "pay-return"])
def test_the_pay_pages_say_what_happened_while_the_processor_is_down(
    client, pending, monkeypatch, step
):
    from guest import payments

    real = payments.get_gateway()
    monkeypatch.setattr(payments, "get_gateway", lambda: HoldsUnreadable(real))
    client.raise_request_exception = False
    url = f"/s/pay/{pending.key}/" + ("return/" if step == "pay-return" else "")
    response = client.get(url)
    # Before: Django's 500 "Server Error" page.
    assert response.status_code == 503 and response["Retry-After"]
    page = response.content.decode()
    assert "not answering" in page and "reload this page" in page.lower()
    assert "Traceback" not in page and "GatewayError" not in page
    assert GuestSession.objects.get(pk=pending.pk).state == GuestSession.State.PENDING

    monkeypatch.setattr(payments, "get_gateway", lambda: real)
    assert client.get(f"/s/pay/{pending.key}/").status_code == 200

"""Hostile input on a driver's pages: a port number of thousands of digits, and a card
return without a SetupIntent id on Stripe. A clear answer on the page, nothing stored, no 500."""

from __future__ import annotations

import pytest

from billing.gateways import StripeGateway
from billing.models import Payment
from drivers import services
from drivers.models import DriverProfile, SavedCard
from guest.models import GuestSession
from tests.billing.test_stripe_gateway import RecordedHTTP
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_one_tap_start import charger  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("connector", ["9" * 5000, "\u0661"], ids=["5000-digits", "arabic-one"])
def test_a_port_that_is_no_small_number_starts_nothing(
    client,
    charger,  # noqa: F811
    connector,
):
    sign_up(client, "tap@example.com")
    save_card(client)
    response = client.post("/driver/start/HB-1/", {"connector": connector})
    # int() of 5,000 digits raised ValueError: a 500.
    assert response.status_code == 302 and response["Location"] == "/s/HB-1"
    assert not GuestSession.objects.exists() and not Payment.objects.exists()
    assert charger.sent == []


class SetupIntentList(RecordedHTTP):
    """Stripe's answer to GET /v1/setup_intents/ (an empty id): a list, which has no id."""

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append({"method": method, "url": url})
        return (
            '{"object": "list", "data": [], "has_more": false, "url": "/v1/setup_intents"}',
            200,
            {},
        )


@pytest.mark.parametrize("query", ["", "?setup_intent=", "?setup_intent=pi_123"])
def test_a_card_return_without_a_setup_intent_id_asks_stripe_nothing(client, monkeypatch, query):
    sign_up(client, "card@example.com")
    DriverProfile.objects.update(customer_ref="cus_QxTestDriver01")
    http = SetupIntentList([])
    monkeypatch.setattr(
        services, "get_gateway", lambda: StripeGateway("sk_test_recorded", http_client=http)
    )
    response = client.get(f"/driver/cards/return/{query}")
    assert response.status_code == 302 and response["Location"] == "/driver/cards/"
    assert http.requests == [] and not SavedCard.objects.exists()
    page = client.get("/driver/cards/").content.decode()
    assert "The card was not saved. Please try again." in page

"""Finding a hold whose creation answer was lost: the Stripe gateway asks Stripe's Search API
for the PaymentIntents of the guest session's key (only the HTTP layer is replaced)."""

from urllib.parse import parse_qs, urlparse

import pytest

from billing.gateways import PROCESSOR_FAILED, GatewayError
from tests.billing.test_stripe_gateway import gateway


def test_holds_are_found_by_the_guest_session_key_in_their_metadata():
    gw, http = gateway(("pi_search", 200))
    found = gw.holds_find(metadata_key="guest_session", value="k1-Ab_9")
    assert [(i.reference, i.status) for i in found] == [("pi_3QxTestHold0001", "requires_capture")]
    request = http.requests[0]
    url = urlparse(request["url"])
    assert request["method"] == "get" and url.path == "/v1/payment_intents/search"
    assert parse_qs(url.query)["query"] == ["metadata['guest_session']:'k1-Ab_9'"]


def test_a_search_stripe_fails_is_a_gateway_error_in_our_words():
    gw, _ = gateway(*[("api_error", 500)] * 3)
    with pytest.raises(GatewayError) as failed:
        gw.holds_find(metadata_key="guest_session", value="k1")
    assert str(failed.value) == PROCESSOR_FAILED

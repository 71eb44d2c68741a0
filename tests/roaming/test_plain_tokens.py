"""roaming.plain's words for the tokens module, each tested from what writes it.

- PUT tokens: our eMSP role pushes each card to a CPO's Tokens Receiver through the outbox; a
  push that fails is the partner's last error "PUT tokens: <cause>". It had no words (the page
  said "PUT tokens failed: ...").
- POST tokens: the live check of a card (mod_tokens "POST {uid}/authorize", authorization's
  `msp_validate_live`) is never queued nor the partner's last error; a refusal of our
  credentials is the provider's `live_error`, which the partner page says through
  `plain.live_error_words` with the POST tokens words and without "sent again" (nothing is).
  tests/roaming/test_partner_live_error.py drives it through a real live check.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from roaming import emsp, services
from roaming.models import Delivery
from roaming.plain import error_words, live_error_words
from tests.factories import MembershipFactory, OrganizationFactory, TokenFactory
from tests.roaming.cpo_stub import CpoStub
from tests.roaming.test_emsp_tokens import cpo_partner, with_identity


@pytest.fixture
def down_cpo(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stub listens on loopback
    stub = CpoStub()
    stub.down = True  # every request: HTTP 503
    yield stub
    stub.close()


@pytest.mark.django_db
def test_a_card_push_that_fails_is_said_in_words_on_the_partner_page(down_cpo):
    org = OrganizationFactory()
    with_identity(org)
    partner = cpo_partner(
        org,
        name="Brussels Charging",
        endpoints={
            "tokens": {"RECEIVER": f"{down_cpo.base}/2.2.1/tokens"},
            "credentials": {"RECEIVER": f"{down_cpo.base}/2.2.1/credentials"},
        },
    )
    card = TokenFactory(organization=org, uid="04CAFE0042")
    emsp.token_push_queue(token_id=card.pk)
    services.deliveries_send(partner_id=partner.pk)

    partner.refresh_from_db()
    assert partner.last_error.startswith("PUT tokens: ")  # what the outbox wrote
    assert Delivery.objects.get(partner=partner, object_key=f"token:{card.pk}").attempts == 1
    words = (
        "Sending one of our cards (token) failed: its server failed (HTTP 503). It waits and is "
        "sent again automatically."
    )
    # Before: "PUT tokens failed: its server failed (HTTP 503). ..."
    assert error_words(partner.last_error) == words

    client = Client()
    client.force_login(MembershipFactory(organization=org).user)
    html = client.get(reverse("partners:msp-ocpi-partner", args=[partner.pk])).content.decode()
    assert words in html
    assert "PUT tokens failed" not in html


@pytest.mark.parametrize(
    "live_error, words",
    [
        (
            "The provider refused our credentials (HTTP 401): it said nothing about the card. "
            "Check or renew the credentials of this provider.",
            "Checking a card live with it (real-time authorization) failed: it refused our "
            "credentials (HTTP 401): it may have unregistered us; connect to it again.",
        ),
        (
            "The provider refused our credentials (HTTP 403): it said nothing about the card.",
            "Checking a card live with it (real-time authorization) failed: it refused our "
            "credentials (HTTP 403): it may have unregistered us; connect to it again.",
        ),
        # Text without a status (written by hand in the admin): words, never the text.
        (
            "Traceback: ConnectError at 0x7f",
            "Checking a card live with it (real-time authorization) failed: it refused our "
            "credentials.",
        ),
        ("", ""),
    ],
)
def test_a_live_check_refusal_is_said_with_the_post_tokens_words_and_no_retry(live_error, words):
    assert live_error_words(live_error) == words
    assert "sent again" not in live_error_words(live_error)


def test_every_push_the_outbox_makes_has_words():
    """Each (method, module) a push is queued with has its words (none says "PUT tokens")."""
    queued = [
        ("PATCH", "locations"),
        ("PUT", "locations"),
        ("PUT", "tariffs"),
        ("DELETE", "tariffs"),
        ("PUT", "sessions"),
        ("POST", "cdrs"),
        ("POST", "commands"),
        ("PATCH", "payments"),
        ("POST", "payments"),
        ("PUT", "tokens"),
    ]
    for method, module in queued:
        said = error_words(f"{method} {module}: HTTP 503")
        assert not said.startswith(f"{method} {module}"), said
        assert said.endswith("It waits and is sent again automatically."), said

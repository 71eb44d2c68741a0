"""A driver reaches only their own cards, subscriptions, sessions and receipts; every driver
write route refuses another driver's object (404) and changes nothing."""

import pytest
from django.test import Client

from billing.models import SandboxPaymentMethod, Subscription
from drivers.models import ClaimedSession, DriverProfile, SavedCard
from guest.models import GuestSession
from tests.drivers.conftest import save_card, sign_up
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db

# Every driver write with the other driver's object in the URL (route name → URL builder).
FOREIGN_WRITES = {
    "drivers:card-default": lambda o: f"/driver/cards/{o['card'].pk}/default/",
    "drivers:card-remove": lambda o: f"/driver/cards/{o['card'].pk}/remove/",
    "drivers:subscription-cancel": lambda o: (
        f"/driver/subscriptions/{o['subscription'].pk}/cancel/"
    ),
}
FOREIGN_READS = {
    "drivers:session-receipt": lambda o: f"/driver/sessions/{o['session'].pk}/receipt/",
}


@pytest.fixture
def two_drivers(prop, plan):
    charger = ChargerFactory(property=prop, station_id="ISO-1")
    drivers = {}
    for email in ("alice@example.com", "bob@example.com"):
        client = Client()
        gs = GuestSession.objects.create(
            charger=charger,
            connector_id=1,
            email=email,
            card_last4="4242",
            state=GuestSession.State.FAILED,
            failure_message="x",
        )
        sign_up(client, email)
        save_card(client)
        client.post(f"/driver/plans/{plan.pk}/subscribe/")
        client.post("/driver/sessions/claim/")
        profile = DriverProfile.objects.get(user__email=email)
        drivers[email.split("@")[0]] = {
            "client": client,
            "profile": profile,
            "card": SavedCard.objects.get(profile=profile),
            "subscription": Subscription.objects.get(customer_ref=profile.customer_ref),
            "session": gs,
        }
    return drivers["alice"], drivers["bob"]


def _state():
    return (
        list(SavedCard.objects.order_by("pk").values_list("pk", "is_default")),
        list(Subscription.objects.order_by("pk").values_list("pk", "status")),
        SandboxPaymentMethod.objects.count(),
        ClaimedSession.objects.count(),
    )


@pytest.mark.parametrize("name", sorted(FOREIGN_WRITES))
def test_another_drivers_object_in_a_write_is_404_and_changes_nothing(two_drivers, name):
    alice, bob = two_drivers
    before = _state()
    assert alice["client"].post(FOREIGN_WRITES[name](bob)).status_code == 404
    assert _state() == before


@pytest.mark.parametrize("name", sorted(FOREIGN_READS))
def test_another_drivers_receipt_is_404(two_drivers, name):
    alice, bob = two_drivers
    assert alice["client"].get(FOREIGN_READS[name](bob)).status_code == 404
    assert alice["client"].get(FOREIGN_READS[name](alice)).status_code == 200


def test_pages_list_only_the_drivers_own_rows(two_drivers):
    alice, bob = two_drivers
    cards = alice["client"].get("/driver/cards/").content.decode()
    assert cards.count("data-card=") == 1
    subs = alice["client"].get("/driver/subscriptions/").content.decode()
    assert f'data-subscription="{alice["subscription"].pk}"' in subs
    assert f'data-subscription="{bob["subscription"].pk}"' not in subs
    sessions = alice["client"].get("/driver/sessions/").content.decode()
    assert f"/driver/sessions/{alice['session'].pk}/receipt/" in sessions
    assert f"/driver/sessions/{bob['session'].pk}/receipt/" not in sessions


def test_a_setup_intent_of_another_driver_cannot_be_recorded(two_drivers):
    alice, bob = two_drivers
    from billing.models import SandboxSetupIntent

    bobs_setup = SandboxSetupIntent.objects.filter(
        customer_id=bob["profile"].customer_ref, status="succeeded"
    ).first()
    before = _state()
    alice["client"].get(f"/driver/cards/return/?setup_intent={bobs_setup.pk}")
    assert _state() == before


def test_anonymous_and_hosts_are_sent_to_the_driver_sign_in(client, host, two_drivers):
    alice, _ = two_drivers
    for url in ["/driver/cards/", "/driver/subscriptions/", "/driver/sessions/", "/driver/delete/"]:
        assert client.get(url)["Location"].startswith("/driver/account/login/")
    client.force_login(host)
    assert client.get("/driver/cards/")["Location"].startswith("/driver/account/login/")
    assert client.post(f"/driver/cards/{alice['card'].pk}/remove/").status_code == 302
    assert SavedCard.objects.filter(pk=alice["card"].pk).exists()

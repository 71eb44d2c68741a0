"""NL access point over OCPI 2.2.1 push (issue 56, item 2), checked from outside with an
access-point stub written from the OCPI text (tests/roaming/nap_stub.py) on a real port: a feed
switched on through the API gets the publicly accessible locations (the five AFIR fields, our
party id) and their ad hoc Tariff, every EVSE status change and price change, through the
roaming outbox, which keeps what the access point did not accept until it is back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate
from roaming import services, tasks
from roaming.models import AccessPointFeed, Delivery, EvseProfile
from tests.conftest import free_port
from tests.factories import ChargerFactory, OrganizationFactory, PropertyFactory
from tests.roaming.conftest import located, online
from tests.roaming.nap_stub import NapStub
from tests.roaming.test_api import api_for

PARTY = ("NL", "EVB")


def public_site(org, name):
    """A location with roaming off whose charger guests pay by QR: AFIR-public."""
    prop = PropertyFactory(organization=org, name=name, roaming_enabled=False)
    located(prop, energy_mix={"is_green_energy": True, "supplier_name": "Vattenfall"})
    charger = online(
        ChargerFactory(property=prop, station_id=f"{name.upper()}-1", access_mode="guest"),
        {1: "Available"},
    )
    EvseProfile.objects.create(charger=charger, max_amperage=16)
    rate = Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.39"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # tax on top: OCPI 2.2.1's price is the price as set
    )
    return prop, charger, rate


def set_status(charger, status):
    charger.connectors.filter(connector_id=1).update(status=status, updated_at=timezone.now())
    # What the status signal's receiver queues (roaming.receivers.connector_status_changed).
    tasks.evse_status_push_task([[charger.pk, 1]])


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.OCPI_COUNTRY_CODE, settings.OCPI_PARTY_ID = PARTY
    nap = NapStub(token="dot-nl-token", port=free_port())
    yield nap
    nap.close()


@pytest.mark.django_db(transaction=True)
def test_a_feed_switched_on_gets_every_change_with_the_afir_fields_through_an_outage(stub):
    org, other = OrganizationFactory(), OrganizationFactory()
    prop, charger, rate = public_site(org, "Gouda")
    public_site(other, "Delft")  # another operator's: never in this feed
    api = api_for(org)
    key = (*PARTY, str(prop.pk))
    uid = f"{charger.station_id}*1"

    put = api.put(
        f"/api/v1/organizations/{org.pk}/access-points/NL/",
        {
            "enabled": True,
            "protocol": "ocpi-2.2.1",
            "endpoint_url": stub.url,
            "token": "dot-nl-token",
        },
        format="json",
    )

    assert put.status_code == 200, put.content
    # The full sync on switching on: the location with the five fields, and its ad hoc price.
    assert list(stub.locations) == [key] and stub.missing == []
    location = stub.locations[key]
    assert (location["country_code"], location["party_id"]) == PARTY
    assert location["energy_mix"]["is_green_energy"] is True
    connector = location["evses"][0]["connectors"][0]
    (tariff_key,) = stub.tariffs
    tariff = stub.tariffs[tariff_key]
    assert tariff_key == (*PARTY, str(rate.pk)) and connector["tariff_ids"] == [str(rate.pk)]
    assert tariff["type"] == "AD_HOC_PAYMENT" and tariff["party_id"] == "EVB"
    assert stub.evse_status(PARTY, str(prop.pk), uid) == "AVAILABLE"

    # A status change is PATCHed.
    set_status(charger, "Charging")
    assert stub.evse_status(PARTY, str(prop.pk), uid) == "CHARGING"
    assert stub.received[-1][0] == "PATCH"

    # The access point is down: the change waits, the host sees it and why.
    stub.refusing = True
    set_status(charger, "Faulted")
    feed = api.get(f"/api/v1/organizations/{org.pk}/access-points/").json()[0]
    assert feed["waiting"] == 1 and feed["freshness_seconds"] is not None
    assert "its server failed (HTTP 503)" in feed["last_error"]
    assert stub.evse_status(PARTY, str(prop.pk), uid) == "CHARGING"

    # It comes back (and our server restarted meanwhile: the outbox is in the database); once
    # the back-off is over, the sweep delivers what waited.
    stub.refusing = False
    Delivery.objects.filter(status=Delivery.Status.PENDING).update(next_attempt_at=timezone.now())
    tasks.deliveries_sweep_task()
    assert stub.evse_status(PARTY, str(prop.pk), uid) == "OUTOFORDER"
    feed = api.get(f"/api/v1/organizations/{org.pk}/access-points/").json()[0]
    assert (feed["waiting"], feed["freshness_seconds"]) == (0, 0)
    assert feed["last_delivery_at"] is not None

    # A price change: a full PUT of the Tariff (2.2.1 Tariffs have no PATCH).
    rate.energy_price_per_kwh = Decimal("0.55")
    rate.save()
    components = stub.tariffs[tariff_key]["elements"][0]["price_components"]
    assert {"type": "ENERGY", "price": 0.55, "vat": 21, "step_size": 1} in components

    # The access point moves to OCPI 2.3.0: everything is sent again in 2.3.0.
    moved = api.put(
        f"/api/v1/organizations/{org.pk}/access-points/NL/",
        {"protocol": "ocpi-2.3.0"},
        format="json",
    )
    assert moved.status_code == 200, moved.content
    assert stub.tariffs[tariff_key]["tax_included"] == "NO"  # 2.3.0 TaxIncluded
    assert stub.locations[key]["evses"][0]["parking_restrictions"] == []

    # A new price replacing it: the new Tariff is PUT, the old one DELETEd once deleted.
    newer = Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(hours=1),
        energy_price_per_kwh=Decimal("0.49"),
        tax_percent=Decimal("21"),
    )
    rate.delete()
    assert list(stub.tariffs) == [(*PARTY, str(newer.pk))]
    assert stub.locations[key]["evses"][0]["connectors"][0]["tariff_ids"] == [str(newer.pk)]
    deleted = f"ocpi/2.2.1/tariffs/NL/EVB/{tariff_key[2]}"
    assert ("DELETE", deleted) in [(method, path) for method, path, _ in stub.received]

    # Without its energy mix the location is held back: its EVSE is REMOVED, never sent
    # incomplete.
    services.location_data_save(property_id=prop.pk, data={"energy_mix": None})
    assert stub.evse_status(PARTY, str(prop.pk), uid) == "REMOVED"
    assert stub.missing == []
    assert all(str(prop.pk) in path or "tariffs" in path for _, path, _ in stub.received)
    assert AccessPointFeed.objects.count() == 1

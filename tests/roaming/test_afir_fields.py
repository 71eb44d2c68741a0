"""AFIR fields and the hold-back (issue 56, item 4): a publicly accessible location (guests can
pay by QR; roaming not needed) missing a mandatory field is never given to an access point, and
the host sees why on the location's roaming data page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate
from roaming import access_points, selectors
from roaming.models import EvseProfile, LocationProfile, Partner
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def nap(operator, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    feed, _ = access_points.feed_save(
        organization=operator["org"],
        country="NL",
        data={
            "enabled": True,
            "protocol": "ocpi-2.2.1",
            "endpoint_url": "http://127.0.0.1:9/ocpi",
            "token": "t",
        },
    )
    return feed.partner


def guest_price(prop):
    return Rate.objects.create(
        property=prop,
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.45"),
        tax_percent=Decimal("21"),
    )


def form_data(prop, charger, **extra):
    return {
        "loc-address": "Markt 1",
        "loc-city": "Gouda",
        "loc-postal_code": "2801",
        "loc-country": "NLD",
        "loc-latitude": "52.011",
        "loc-longitude": "4.710",
        "loc-open_24_7": "on",
        f"cp{charger.pk}-standard": "IEC_62196_T2",
        f"cp{charger.pk}-format": "SOCKET",
        f"cp{charger.pk}-power_type": "AC_3_PHASE",
        f"cp{charger.pk}-max_voltage": "230",
        f"cp{charger.pk}-max_amperage": "16",
        **extra,
    }


def test_a_public_location_without_its_energy_mix_is_held_back_and_the_host_sees_why(
    client, operator, nap, partner
):
    # "Staff only" has roaming off: not a roaming partner's, but its charger is public (a
    # guest can pay by QR), so AFIR wants it at the access point.
    prop, charger = operator["closed"], operator["cp_closed"]
    owner = UserFactory()
    MembershipFactory(organization=operator["org"], user=owner, role="owner")
    client.force_login(owner)
    now = timezone.now()

    assert selectors.location_get(nap, str(prop.pk), now=now, version="2.2.1") is None
    page = client.get(f"/roaming/locations/{prop.pk}/").content.decode()
    assert "Held back" in page and "its energy mix" in page and "a price for guests" in page
    assert "the connector data (maximum power, who may charge) of CLOSED-1" in page

    saved = client.post(f"/roaming/locations/{prop.pk}/", form_data(prop, charger))
    assert saved.status_code == 302
    guest_price(prop)
    still = client.get(f"/roaming/locations/{prop.pk}/").content.decode()
    assert "its energy mix" in still and "a price for guests" not in still
    assert selectors.location_get(nap, str(prop.pk), now=now, version="2.2.1") is None

    client.post(
        f"/roaming/locations/{prop.pk}/",
        form_data(prop, charger, **{"loc-green_energy": "yes", "loc-energy_supplier": "Eneco"}),
    )
    done = client.get(f"/roaming/locations/{prop.pk}/").content.decode()
    assert "Complete" in done and "Held back" not in done

    location = selectors.location_get(nap, str(prop.pk), now=timezone.now(), version="2.2.1")
    assert location is not None
    assert location["energy_mix"] == {"is_green_energy": True, "supplier_name": "Eneco"}
    assert location["opening_times"] == {"twentyfourseven": True}
    (evse,) = location["evses"]
    # No restriction ticked: an empty list, said explicitly; the power from 230 V x 16 A x 3.
    assert evse["parking_restrictions"] == []
    assert evse["connectors"][0]["max_electric_power"] == 11040
    assert evse["connectors"][0]["tariff_ids"] == [str(Rate.objects.get(property=prop).pk)]
    assert (location["country_code"], location["party_id"]) == ("NL", "EVB")
    # A roaming partner does not get it: roaming is off there.
    assert selectors.location_get(partner, str(prop.pk), now=now, version="2.2.1") is None


def test_private_chargers_are_never_in_a_feed_and_guest_only_ones_are(operator, nap):
    prop = operator["public"]
    LocationProfile.objects.filter(property=prop).update(energy_mix={"is_green_energy": False})
    for key in ("cp_public", "cp_private", "cp_guest"):
        EvseProfile.objects.create(charger=operator[key])
    guest_price(prop)

    location = selectors.location_get(nap, str(prop.pk), now=timezone.now(), version="2.2.1")

    uids = sorted(e["uid"] for e in location["evses"])
    assert [u.split("*")[0] for u in uids] == ["GUEST-1", "PUB-1", "PUB-1"]
    assert nap.role == Partner.Role.NAP


def test_the_api_takes_and_checks_the_energy_mix(operator):
    from tests.roaming.test_api import api_for

    api = api_for(operator["org"])
    url = f"/api/v1/properties/{operator['public'].pk}/"
    bad = api.patch(url, {"roaming_data": {"energy_mix": {"green": 1}}}, format="json")
    good = api.patch(
        url,
        {"roaming_data": {"energy_mix": {"is_green_energy": True, "energy_product_name": "Wind"}}},
        format="json",
    )

    assert bad.status_code == 400, bad.content
    assert good.status_code == 200, good.content
    assert good.json()["roaming_data"]["energy_mix"] == {
        "is_green_energy": True,
        "energy_product_name": "Wind",
    }


def test_needs_attention_lists_held_back_locations_and_a_feed_behind_to_its_own_hosts(
    client, operator, nap
):
    from roaming.models import Delivery
    from tests.factories import OrganizationFactory

    owner, stranger = UserFactory(), UserFactory()
    MembershipFactory(organization=operator["org"], user=owner, role="owner")
    MembershipFactory(organization=OrganizationFactory(), user=stranger, role="owner")
    waiting = Delivery.objects.create(
        partner=nap,
        module="locations",
        object_key="evse:1/X",
        method="PATCH",
        path="/NL/EVB/1/X",
        body={"status": "AVAILABLE"},
        next_attempt_at=timezone.now(),
    )
    Delivery.objects.filter(pk=waiting.pk).update(
        created_at=timezone.now() - timedelta(seconds=300)
    )

    client.force_login(owner)
    page = client.get("/").content.decode()
    client.force_login(stranger)
    other = client.get("/").content.decode()

    assert "Held back from access points" in page and "Staff only" in page
    assert "its energy mix" in page
    assert "Access point NL behind" in page and "the oldest for 3" in page
    assert "Held back from access points" not in other and "Access point NL" not in other

"""Tariffs sender: our rates as OCPI tariffs, referenced by the connectors that use them."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import Rate
from tests.roaming.conftest import auth


def _rate(prop, **fields):
    values = {
        "valid_from": timezone.now() - timedelta(days=1),
        "connection_fee": Decimal("0.50"),
        "energy_price_per_kwh": Decimal("0.3500"),
        "time_price_per_hour": Decimal("1.20"),
        "idle_fee_per_minute": Decimal("0.10"),
        "idle_grace_minutes": 15,
        "idle_fee_cap": Decimal("12"),
        "tax_percent": Decimal("21"),
        "prices_include_tax": False,  # a location from before the choice: tax on top
        **fields,
    }
    return Rate.objects.create(property=prop, **values)


def test_a_rate_becomes_a_tariff_with_every_dimension_and_vat(client, operator, partner):
    rate = _rate(operator["public"])

    body = client.get("/ocpi/2.2.1/tariffs", HTTP_AUTHORIZATION=auth()).json()

    assert body["status_code"] == 1000
    (tariff,) = body["data"]
    assert (tariff["id"], tariff["currency"], tariff["country_code"], tariff["party_id"]) == (
        str(rate.pk),
        "EUR",
        "NL",
        "EVB",
    )
    components = {c["type"]: c for c in tariff["elements"][0]["price_components"]}
    assert components["FLAT"] == {"type": "FLAT", "price": 0.5, "vat": 21, "step_size": 1}
    assert components["ENERGY"]["price"] == 0.35
    assert components["TIME"]["price"] == 1.2
    # 0.10 per minute = 6.00 per hour of parking, billed per minute.
    assert components["PARKING_TIME"] == {
        "type": "PARKING_TIME",
        "price": 6,
        "vat": 21,
        "step_size": 60,
    }
    text = tariff["tariff_alt_text"][0]["text"]
    assert "first 15 min free" in text and "at most 12 EUR" in text


def test_connectors_name_the_tariff_in_force_and_other_properties_rates_are_not_shown(
    client, operator, partner
):
    rate = _rate(operator["public"])
    _rate(operator["closed"])  # not a published location
    _rate(
        operator["public"],
        valid_from=timezone.now() - timedelta(days=9),
        valid_until=timezone.now() - timedelta(days=2),
    )

    tariffs = client.get("/ocpi/2.2.1/tariffs", HTTP_AUTHORIZATION=auth()).json()["data"]
    location = client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth()).json()["data"][0]

    assert [t["id"] for t in tariffs] == [str(rate.pk)]
    assert {tuple(e["connectors"][0]["tariff_ids"]) for e in location["evses"]} == {(str(rate.pk),)}

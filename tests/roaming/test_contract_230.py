"""Contract, OCPI 2.3.0: what we send matches the 2.3.0 property tables and the JSON types of the
2.3.0 text's examples; both versions are written from the same facts (roaming.versions)."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

import pytest
from django.utils import timezone

from billing.models import Rate
from roaming import mapping, ocpi, services
from roaming.models import ParkingEvse, ParkingPlace
from roaming.versions import v221, v230
from tests.roaming import spec
from tests.roaming.conftest import auth

V230 = spec.V230
PARTY = mapping.Party("NL", "EVB")


def _get(client, path):
    url = f"/ocpi/2.3.0/{path}" if path else "/ocpi/2.3.0"
    response = client.get(url, HTTP_AUTHORIZATION=auth())
    assert response.status_code == 200, response.content
    return response.json()["data"]


@pytest.mark.django_db
def test_our_2_3_0_location_with_parking_places_follows_the_text(client, operator, partner):
    Rate.objects.create(
        property=operator["public"],
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.30"),
    )
    place = ParkingPlace.objects.create(
        property=operator["public"],
        physical_reference="P1",
        vehicle_types=["PERSONAL_VEHICLE", "DISABLED"],
        restricted_to_type=True,
        parking_space_width=360,
        standards=["PAS 1899"],
    )
    ParkingEvse.objects.create(parking=place, charger=operator["cp_public"], evse_position="LEFT")
    profile = operator["public"].ocpi_profile
    profile.help_phone = "+31 30 1234567"
    profile.save()

    (location,) = _get(client, "locations")

    spec.check_object(location, "mod_locations.asciidoc", "mod_locations_location_object", V230)
    spec.same_types(location, spec.example("location_example.json", V230))
    (parking,) = location["parking_places"]
    spec.check_object(parking, "mod_locations.asciidoc", "mod_locations_parking_object", V230)
    assert parking == {
        "id": str(place.pk),
        "physical_reference": "P1",
        "vehicle_types": ["PERSONAL_VEHICLE", "DISABLED"],
        "parking_space_width": 360,
        "restricted_to_type": True,
        "reservation_required": False,
        "standards": ["PAS 1899"],
    }
    assert location["help_phone"] == "+31 30 1234567"
    for evse in location["evses"]:
        spec.check_object(evse, "mod_locations.asciidoc", "mod_locations_evse_object", V230)
        assert evse["parking"] == [{"parking_id": str(place.pk), "evse_position": "LEFT"}]
        assert evse["accepted_service_providers"] == ["MSP DE*EMS"]
        for link in evse["parking"]:
            spec.check_object(
                link, "mod_locations.asciidoc", "mod_locations_evseparking_class", V230
            )
        for connector in evse["connectors"]:
            spec.check_object(
                connector, "mod_locations.asciidoc", "mod_locations_connector_object", V230
            )
    # The same location in 2.2.1: none of the 2.3.0 fields, everything else the same.
    old = client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth()).json()["data"][0]
    spec.check_object(old, "mod_locations.asciidoc", "mod_locations_location_object")
    for name in ("parking_places", "help_phone"):
        location.pop(name)
    for evse in location["evses"]:
        evse.pop("parking")
        evse.pop("accepted_service_providers")
    assert old == location


@pytest.mark.django_db
def test_our_2_3_0_tariff_says_tax_is_added_on_top_and_what_a_terminal_holds(
    client, operator, partner
):
    Rate.objects.create(
        property=operator["public"],
        valid_from=timezone.now() - timedelta(days=1),
        connection_fee=Decimal("1"),
        energy_price_per_kwh=Decimal("0.25"),
        time_price_per_hour=Decimal("2"),
        idle_fee_per_minute=Decimal("0.05"),
        tax_percent=Decimal("19"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )

    (tariff,) = _get(client, "tariffs")

    spec.check_object(tariff, "mod_tariffs.asciidoc", "mod_tariffs_tariff_object", V230)
    spec.same_types(tariff, spec.example("tariff_13_simple_3hour_5parking.json", V230))
    spec.same_types(tariff, spec.example("tariff_19_simple_north_american_exclusive.json", V230))
    assert tariff["tax_included"] == "NO"
    # The guest hold's ceiling: 60 kWh, 4 h, 30 min idle at these prices, +19%, rounded up.
    expected = (
        Decimal("1") + 60 * Decimal("0.25") + 4 * Decimal("2") + 30 * Decimal("0.05")
    ) * Decimal("1.19")
    rounded_up = expected.quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    assert Decimal(str(tariff["preauthorize_amount"])) == rounded_up == Decimal("30.35")
    components = {c["type"]: c for c in tariff["elements"][0]["price_components"]}
    assert components["ENERGY"] == {"type": "ENERGY", "price": 0.25, "vat": 19, "step_size": 1}
    assert tariff["tariff_alt_text"][0]["text"].endswith("prices excl. 19% VAT")
    old = client.get("/ocpi/2.2.1/tariffs", HTTP_AUTHORIZATION=auth()).json()["data"][0]
    spec.check_object(old, "mod_tariffs.asciidoc", "mod_tariffs_tariff_object")
    assert old["elements"] == tariff["elements"]


def _rate(prices: mapping.TariffPrices) -> mapping.RateFacts:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return mapping.RateFacts(
        id="7",
        currency="EUR",
        prices=prices,
        idle_grace_minutes=0,
        valid_from=moment,
        valid_until=None,
        last_updated=moment,
    )


def test_both_versions_take_their_prices_from_one_input_whatever_the_tax_mode():
    """Item 3's seam: a location whose prices include tax gives both versions the right amounts
    from the same TariffPrices (2.2.1 excl. VAT with `vat`, 2.3.0 as stated, tax_included)."""
    on_top = mapping.TariffPrices.tax_on_top(
        tax_percent=Decimal("21"),
        connection_fee=Decimal("0"),
        energy_per_kwh=Decimal("0.2479"),
        time_per_hour=Decimal("0"),
        idle_per_minute=Decimal("0"),
    )
    included = mapping.TariffPrices(
        tax_included=True,
        tax_percent=Decimal("21"),
        connection_fee=mapping.StatedPrice(Decimal("0"), Decimal("0")),
        energy_per_kwh=mapping.StatedPrice(Decimal("0.2479"), Decimal("0.30")),
        time_per_hour=mapping.StatedPrice(Decimal("0"), Decimal("0")),
        idle_per_minute=mapping.StatedPrice(Decimal("0"), Decimal("0")),
    )

    def energy(tariff):
        return tariff["elements"][0]["price_components"][0]["price"]

    assert (
        energy(v221.tariff(_rate(on_top), party=PARTY)),
        energy(v230.tariff(_rate(on_top), party=PARTY)),
    ) == (0.2479, 0.2479)
    assert v230.tariff(_rate(on_top), party=PARTY)["tax_included"] == "NO"
    new = v230.tariff(_rate(included), party=PARTY)
    assert (energy(v221.tariff(_rate(included), party=PARTY)), energy(new)) == (0.2479, 0.3)
    assert new["tax_included"] == "YES" and new["tariff_alt_text"][0]["text"].endswith(
        "incl. 21% VAT"
    )
    untaxed = mapping.TariffPrices.tax_on_top(
        tax_percent=Decimal("0"),
        connection_fee=Decimal("0"),
        energy_per_kwh=Decimal("0.3"),
        time_per_hour=Decimal("0"),
        idle_per_minute=Decimal("0"),
    )
    assert v230.tariff(_rate(untaxed), party=PARTY)["tax_included"] == "N/A"


def test_2_3_0_prices_and_the_spec_examples_shape():
    price = v230.price(Decimal("4.00"), Decimal("0.40"), Decimal("10"))
    assert price == {"before_taxes": 4, "taxes": [{"name": "VAT", "percentage": 10, "amount": 0.4}]}
    spec.check_object(price, "types.asciidoc", "types_price_class", V230)
    spec.check_object(price["taxes"][0], "types.asciidoc", "types_tax_amount_class", V230)
    spec.same_types(price, spec.example("cdr_example.json", V230)["total_cost"])
    assert v230.price(Decimal("4"), None, None) == {"before_taxes": 4}
    assert v221.price(Decimal("4"), Decimal("0.4"), Decimal("10")) == {
        "excl_vat": 4,
        "incl_vat": 4.4,
    }


def test_a_2_2_1_cdr_becomes_the_same_cdr_in_2_3_0_for_a_partner_that_moved():
    old = {
        "id": "CDR-1",
        "total_cost": {"excl_vat": 4.5, "incl_vat": 5.45},
        "total_energy_cost": {"excl_vat": 3.5},
        "tariffs": [
            {
                "id": "7",
                "elements": [
                    {
                        "price_components": [
                            {"type": "ENERGY", "price": 0.35, "vat": 21, "step_size": 1}
                        ]
                    }
                ],
            }
        ],
    }
    new = v230.from_221("cdrs", old)
    assert new["total_cost"] == {
        "before_taxes": 4.5,
        "taxes": [{"name": "VAT", "percentage": 21, "amount": 0.95}],
    }
    assert new["total_energy_cost"] == {"before_taxes": 3.5}
    assert new["tariffs"][0]["tax_included"] == "NO"
    assert old["total_cost"] == {"excl_vat": 4.5, "incl_vat": 5.45}  # the stored one is kept
    assert v230.from_221("locations", {"id": "1"}) == {"id": "1"}


@pytest.mark.django_db
def test_our_2_3_0_versions_and_credentials_have_the_shape_of_the_text(client, partner):
    versions = client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth()).json()["data"]
    spec.same_types(versions, spec.example("versions_info_example.json", V230))
    details = _get(client, "")
    spec.same_types(details, spec.example("version_details_example.json", V230))
    credentials = _get(client, "credentials")
    spec.check_object(credentials, "credentials.asciidoc", "credentials_credentials_object", V230)
    for role in credentials["roles"]:
        spec.check_object(role, "credentials.asciidoc", "credentials_credentials_role_class", V230)
        assert role["role"] in ("CPO",)
    assert services.our_credentials(
        token="t", versions_url="u", version=ocpi.V230
    ) == credentials | {
        "token": "t",
        "url": "u",
    }


def test_the_specs_session_and_cdr_examples_are_the_shapes_we_write():
    session = mapping.SessionFacts(
        id="1",
        started_at=datetime(2026, 1, 1, 10, tzinfo=UTC),
        stopped_at=datetime(2026, 1, 1, 11, tzinfo=UTC),
        token=mapping.CdrTokenFacts("DE", "EMS", "U1", "RFID", "DE-EMS-1"),
        auth_method="WHITELIST",
        location_id="3",
        evse_uid="CP*1",
        cost=mapping.CostFacts(
            currency="EUR",
            subtotal=Decimal("4.50"),
            total=Decimal("5.45"),
            fixed=Decimal("1.00"),
            energy=Decimal("3.50"),
            time=None,
            parking=None,
            energy_wh=Decimal("10000"),
            charging_seconds=3600,
            idle_seconds=0,
            tax_percent=Decimal("21"),
        ),
        active=False,
        last_updated=datetime(2026, 1, 1, 11, tzinfo=UTC),
    )
    data = v230.session(session, party=PARTY)
    spec.check_object(data, "mod_sessions.asciidoc", "mod_sessions_session_object", V230)
    spec.same_types(data, spec.example("session_example_2_short_finished.json", V230))
    cdr = v230.cdr(
        session,
        cdr_id="CDR-1",
        location={"id": "3"},
        rate=None,
        signed=None,
        party=PARTY,
        created=datetime(2026, 1, 1, 12, tzinfo=UTC),
        invoice_reference_id="EVB-2026-T000001",
    )
    spec.check_object(cdr, "mod_cdrs.asciidoc", "mod_cdrs_cdr_object", V230)
    spec.same_types(cdr, spec.example("cdr_example.json", V230))
    assert cdr["invoice_reference_id"] == "EVB-2026-T000001"
    assert v221.cdr(
        session,
        cdr_id="CDR-1",
        location={"id": "3"},
        rate=None,
        signed=None,
        party=PARTY,
        created=datetime(2026, 1, 1, 12, tzinfo=UTC),
    )["total_cost"] == {"excl_vat": 4.5, "incl_vat": 5.45}

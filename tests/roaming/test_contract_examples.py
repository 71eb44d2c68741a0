"""Contract: what we send matches the OCPI 2.2.1 object tables and the spec's JSON examples."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import Rate
from roaming import mapping, ocpi
from tests.roaming import spec
from tests.roaming.conftest import auth


def test_our_location_evse_and_connector_objects_follow_the_spec(client, operator, partner):
    Rate.objects.create(
        property=operator["public"],
        valid_from=timezone.now() - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.30"),
    )
    location = client.get("/ocpi/2.2.1/locations", HTTP_AUTHORIZATION=auth()).json()["data"][0]

    spec.check_object(location, "mod_locations.asciidoc", "mod_locations_location_object")
    spec.same_types(location, spec.example("location_example.json"))
    for evse in location["evses"]:
        spec.check_object(evse, "mod_locations.asciidoc", "mod_locations_evse_object")
        for connector in evse["connectors"]:
            spec.check_object(connector, "mod_locations.asciidoc", "mod_locations_connector_object")


def test_our_tariff_follows_the_spec(client, operator, partner):
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
    tariff = client.get("/ocpi/2.2.1/tariffs", HTTP_AUTHORIZATION=auth()).json()["data"][0]

    spec.check_object(tariff, "mod_tariffs.asciidoc", "mod_tariffs_tariff_object")
    spec.same_types(tariff, spec.example("tariff_13_simple_3hour_5parking.json"))
    spec.same_types(tariff, spec.example("tariff_4_complex.json"))
    for component in tariff["elements"][0]["price_components"]:
        spec.check_object(component, "mod_tariffs.asciidoc", "mod_tariffs_pricecomponent_class")


def test_status_patch_has_the_shape_of_the_spec_example():
    evse = mapping.EvseFacts(
        uid="CP*1",
        evse_id="NL*EVB*ECP1",
        status="CHARGING",
        spec=mapping.ConnectorSpec("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 16),
        tariff_ids=(),
        last_updated=ocpi.parse_datetime("2019-06-24T12:39:09Z"),
    )
    assert mapping.evse_status_patch(evse) == spec.example("location_patch_example_status.json")


def test_our_versions_and_credentials_have_the_shape_of_the_examples(client, partner):
    versions = client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth()).json()["data"]
    spec.same_types(versions, spec.example("versions_info_example.json"))
    details = client.get("/ocpi/2.2.1", HTTP_AUTHORIZATION=auth()).json()["data"]
    spec.same_types(details, spec.example("version_details_example.json"))
    assert {"credentials", "locations", "tariffs"} <= {
        e["identifier"] for e in details["endpoints"]
    }
    credentials = client.get("/ocpi/2.2.1/credentials", HTTP_AUTHORIZATION=auth()).json()["data"]
    spec.check_object(credentials, "credentials.asciidoc", "credentials_credentials_object")
    spec.same_types(credentials, spec.example("credentials_example.json"))
    for role in credentials["roles"]:
        spec.check_object(role, "credentials.asciidoc", "credentials_credentials_role_class")

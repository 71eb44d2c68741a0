"""The OCPP version a charger connected with is stored and shown: API, portal Overview, admin."""

import pytest

from chargers.models import Charger

pytestmark = pytest.mark.django_db


@pytest.fixture
def charger201(charger):
    Charger.objects.filter(pk=charger.pk).update(ocpp_version="2.0.1")
    charger.refresh_from_db()
    return charger


def test_api_shows_the_version_read_only(api_client, host, charger201):
    api_client.force_authenticate(host)
    url = f"/api/v1/chargers/{charger201.station_id}/"
    assert api_client.get(url).json()["ocpp_version"] == "2.0.1"
    assert api_client.patch(url, {"ocpp_version": "1.6"}, format="json").status_code == 200
    charger201.refresh_from_db()
    assert charger201.ocpp_version == "2.0.1"


def test_portal_overview_shows_the_protocol(client, host, charger201):
    client.force_login(host)
    page = client.get(f"/chargers/{charger201.station_id}/").content.decode()
    assert "OCPP 2.0.1" in page


def test_admin_lists_the_protocol(admin_client, charger201):
    page = admin_client.get("/admin/chargers/charger/").content.decode()
    assert "2.0.1" in page


def test_admin_shows_the_201_records(admin_client, charger201):
    from chargers.models import ChargerEvent, DeviceVariable, TransactionEvent

    DeviceVariable.objects.create(
        charger=charger201,
        component="OCPPCommCtrl",
        variable="HeartbeatInterval",
        value="300",
        standardized=True,
    )
    ChargerEvent.objects.create(
        charger=charger201,
        event_id=1,
        timestamp="2026-11-20T10:00:00Z",
        trigger="Delta",
        component="Connector",
        variable="AvailabilityState",
        actual_value="Occupied",
        data={},
    )
    TransactionEvent.objects.create(
        charger=charger201,
        ocpp_transaction_id="TX-ADMIN",
        seq_no=0,
        event_type="Started",
        timestamp="2026-11-20T10:00:00Z",
        payload={},
    )
    assert (
        "HeartbeatInterval" in admin_client.get("/admin/chargers/devicevariable/").content.decode()
    )
    assert "AvailabilityState" in admin_client.get("/admin/chargers/chargerevent/").content.decode()
    assert "TX-ADMIN" in admin_client.get("/admin/chargers/transactionevent/").content.decode()


def test_api_lists_the_device_model_of_own_chargers_only(api_client, host, charger201):
    from chargers.models import DeviceVariable
    from tests.factories import ChargerFactory

    DeviceVariable.objects.create(
        charger=charger201,
        component="OCPPCommCtrl",
        variable="HeartbeatInterval",
        value="300",
        mutability="ReadWrite",
        standardized=True,
    )
    other = ChargerFactory(station_id="OTHER-ORG-1")
    api_client.force_authenticate(host)
    rows = api_client.get(f"/api/v1/chargers/{charger201.station_id}/device-model/").json()
    assert [(r["component"], r["variable"], r["value"], r["standardized"]) for r in rows] == [
        ("OCPPCommCtrl", "HeartbeatInterval", "300", True)
    ]
    assert api_client.get(f"/api/v1/chargers/{other.station_id}/device-model/").status_code == 404


def test_api_sessions_show_the_chargers_transaction_id(api_client, host, charger201):
    from django.utils import timezone

    from chargers.models import ChargingSession

    ChargingSession.objects.create(
        charger=charger201,
        connector_id=1,
        transaction_id=77,
        id_tag="X",
        started_at=timezone.now(),
        meter_start_wh=0,
        ocpp_transaction_id="cs-tx-77",
    )
    api_client.force_authenticate(host)
    rows = api_client.get("/api/v1/sessions/", {"station_id": charger201.station_id}).json()[
        "results"
    ]
    assert rows[0]["ocpp_transaction_id"] == "cs-tx-77" and rows[0]["transaction_id"] == 77

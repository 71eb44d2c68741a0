"""Issue 46 item 3: a meter whose OCMF names no serial has its key registered by connector
(1.6) or EVSE (2.0.1), and its sessions verify with it; a key read from the charger's
configuration (`MeterPublicKey[ConnectorID]`, OCA note 3.3.1) verifies nothing until a person
confirms it matches the key printed on the meter."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from chargers.models import Charger, ChargingSession, TransactionEvent
from metering import ocmf, services
from metering.models import MeterKey
from metering.selectors import session_signature
from tests.factories import ChargerFactory, MembershipFactory
from tests.metering.signing import Meter, signed_data_16, signed_meter_value_201, tamper

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
URL = "/api/v1/chargers/{}/meter-keys/"


def _signed(value: str, context: str) -> dict:
    return {
        "value": value,
        "format": "SignedData",
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
    }


def session_16(charger, meter: Meter, *, connector: int = 1, tx: int = 1, end_text=None):
    """A finished 1.6 session whose signed start and end came in StopTransaction's data."""
    start = meter.ocmf("B", "1.000", T0, pagination=11)
    end = end_text or meter.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12)
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=connector,
        transaction_id=tx,
        id_tag=f"04A1B2C{tx}",
        started_at=T0,
        stopped_at=T0 + timedelta(hours=1),
        meter_start_wh=1000,
        meter_stop_wh=9000,
        status="completed",
        transaction_data=[
            {
                "timestamp": "2026-11-20T10:00:00Z",
                "sampledValue": [_signed(signed_data_16(meter, start), "Transaction.Begin")],
            },
            {
                "timestamp": "2026-11-20T11:00:00Z",
                "sampledValue": [_signed(signed_data_16(meter, end), "Transaction.End")],
            },
        ],
    )


def session_201(charger, meter: Meter, *, evse: int = 1):
    """A finished 2.0.1 session on an EVSE whose Ended event carries the signed start and end."""
    start = meter.ocmf("B", "1.000", T0, pagination=11)
    end = meter.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=evse,
        transaction_id=7,
        ocpp_transaction_id="tx-201",
        id_tag="04A1B2C3",
        started_at=T0,
        stopped_at=T0 + timedelta(hours=1),
        meter_start_wh=1000,
        meter_stop_wh=9500,
        status="completed",
    )
    sampled = [
        {
            "value": 1000,
            "context": "Transaction.Begin",
            "signedMeterValue": signed_meter_value_201(meter, start, with_key=False),
        },
        {
            "value": 9500,
            "context": "Transaction.End",
            "signedMeterValue": signed_meter_value_201(meter, end, with_key=False),
        },
    ]
    TransactionEvent.objects.create(
        charger=charger,
        session=session,
        ocpp_transaction_id="tx-201",
        seq_no=3,
        event_type="Ended",
        timestamp=T0 + timedelta(hours=1),
        payload={
            "eventType": "Ended",
            "meterValue": [{"timestamp": "2026-11-20T11:00:00Z", "sampledValue": sampled}],
        },
    )
    return session


@pytest.fixture
def meter():
    return Meter(serial="")  # a meter whose OCMF names no serial (MS empty)


def test_a_key_registered_by_connector_verifies_a_serialless_meters_session(
    api_client, host, charger, meter
):
    session = session_16(charger, meter)
    services.session_signed_ingest(session_id=session.pk)
    assert session_signature(session).status == "unknown_key"

    api_client.force_authenticate(host)
    response = api_client.put(
        URL.format(charger.station_id),
        {"connector_id": 1, "public_key": meter.public_key_hex},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["meter_serial"], body["connector_id"], body["evse_id"]) == ("", 1, None)
    assert (body["source"], body["confirmed"]) == ("person", True)
    listed = api_client.get(URL.format(charger.station_id)).json()
    assert [(k["connector_id"], k["public_key"]) for k in listed] == [(1, meter.public_key_hex)]

    summary = session_signature(session)  # the PUT checked the charger's sessions again
    assert summary.status == "verified", summary.reason
    assert summary.energy_wh == 8500
    session.refresh_from_db()
    assert session.signed_energy_wh == 8500


def test_the_connector_key_serves_only_its_connector_and_identity_fields_are_still_checked(
    api_client, host, charger, meter
):
    services.meter_key_put(charger=charger, connector_id=1, public_key=meter.public_key_hex)
    other_port = session_16(charger, meter, connector=2, tx=2)
    services.session_signed_ingest(session_id=other_port.pk)
    summary = session_signature(other_port)
    assert summary.status == "unknown_key"
    assert "connector 2" in summary.start.reason

    # The end names a serial although the start does not: the key of connector 1 does not
    # serve a meter that names itself, and start and end must come from the same meter.
    named = Meter(serial="EMH-1")
    named.private_key = meter.private_key
    mixed = session_16(
        charger,
        meter,
        tx=3,
        end_text=named.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12),
    )
    services.session_signed_ingest(session_id=mixed.pk)
    assert session_signature(mixed).status != "verified"

    # A tampered register still fails its signature with the connector's key.
    end = meter.ocmf("E", "9.500", T0 + timedelta(hours=1), pagination=12)
    tampered = session_16(charger, meter, tx=4, end_text=tamper(end, "9.5", "19.5"))
    services.session_signed_ingest(session_id=tampered.pk)
    assert session_signature(tampered).status == "invalid_signature"


def test_a_2_0_1_meter_is_registered_by_evse(api_client, host, prop, meter):
    charger = ChargerFactory(
        property=prop,
        station_id="CP-201",
        ocpp_version=Charger.OcppVersion.V201,
    )
    session = session_201(charger, meter, evse=2)
    api_client.force_authenticate(host)
    wrong = api_client.put(
        URL.format(charger.station_id),
        {"connector_id": 2, "public_key": meter.public_key_hex},
        format="json",
    )
    assert wrong.status_code == 400
    assert "evse_id" in wrong.json()["non_field_errors"][0]
    response = api_client.put(
        URL.format(charger.station_id),
        {"evse_id": 2, "public_key": meter.public_key_hex},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["evse_id"] == 2
    services.session_signed_ingest(session_id=session.pk)
    assert session_signature(session).status == "verified"
    deleted = api_client.delete(URL.format(charger.station_id) + "evse/2/")
    assert deleted.status_code == 204
    assert not MeterKey.objects.filter(charger=charger).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"meter_serial": "EMH-1", "connector_id": 1},
        {"connector_id": 1, "evse_id": 1},
        {"evse_id": 1},  # a 1.6 charger has connectors
    ],
)
def test_a_meter_named_by_none_or_several_or_the_wrong_word_is_a_400(
    api_client, host, charger, meter, body
):
    api_client.force_authenticate(host)
    response = api_client.put(
        URL.format(charger.station_id), {**body, "public_key": meter.public_key_hex}, format="json"
    )
    assert response.status_code == 400
    assert not MeterKey.objects.exists()


def test_a_key_read_from_the_charger_verifies_nothing_until_a_person_confirms_it(
    api_client, host, charger, meter
):
    session = session_16(charger, meter)
    key = services.meter_key_prefill(charger=charger, port=1, public_key=meter.public_key_hex)
    assert key is not None and key.source == "charger" and not key.confirmed
    services.session_signed_ingest(session_id=session.pk)
    summary = session_signature(session)
    assert summary.status == "unknown_key"
    assert "not confirmed" in summary.start.reason

    api_client.force_authenticate(host)
    listed = api_client.get(URL.format(charger.station_id)).json()
    assert [(k["connector_id"], k["source"], k["confirmed"]) for k in listed] == [
        (1, "charger", False)
    ]
    # A printed key that differs confirms nothing.
    other = Meter(serial="")
    refused = api_client.post(
        URL.format(charger.station_id) + "connector/1/confirm/",
        {"public_key": other.public_key_hex},
        format="json",
    )
    assert refused.status_code == 400
    assert session_signature(session).status == "unknown_key"

    confirmed = api_client.post(
        URL.format(charger.station_id) + "connector/1/confirm/",
        {"public_key": meter.public_key_pem},
        format="json",
    )
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["confirmed"] is True
    assert session_signature(session).status == "verified"
    # The charger reporting again does not undo a person's confirmation.
    again = services.meter_key_prefill(charger=charger, port=1, public_key=other.public_key_hex)
    assert again is not None and again.confirmed and bytes(again.public_key) == meter.public_key_der


def test_a_read_only_member_cannot_confirm(api_client, charger, meter):
    services.meter_key_prefill(charger=charger, port=1, public_key=meter.public_key_hex)
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    api_client.force_authenticate(viewer)
    response = api_client.post(URL.format(charger.station_id) + "connector/1/confirm/")
    assert response.status_code == 403
    assert not MeterKey.objects.get().confirmed


def test_staff_confirm_in_the_admin(charger, meter, django_user_model):
    session = session_16(charger, meter)
    services.session_signed_ingest(session_id=session.pk)
    key = services.meter_key_prefill(charger=charger, port=1, public_key=meter.public_key_hex)
    staff = django_user_model.objects.create_superuser("staff@example.com", "staff@example.com")
    client = Client()
    client.force_login(staff)
    page = client.get("/admin/metering/meterkey/").content.decode()
    assert "connector 1" in page and key.fingerprint in page  # the list shows which key
    shown = client.post(
        "/admin/metering/meterkey/",
        {"action": "confirm_keys", "_selected_action": [key.pk]},
    )
    # First the keys themselves, to compare with the meters' labels: nothing confirmed yet.
    assert shown.status_code == 200
    assert (
        meter.public_key_hex in shown.content.decode() and key.fingerprint in shown.content.decode()
    )
    key.refresh_from_db()
    assert not key.confirmed
    response = client.post("/admin/metering/meterkey/", _confirm_post(shown))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.confirmed and key.confirmed_by == staff
    assert session_signature(session).status == "verified"


def _confirm_post(page) -> dict[str, list[str]]:
    """What the confirmation page's button sends: its hidden fields and the button."""
    data: dict[str, list[str]] = {"apply": ["yes"]}
    for name, value in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode()
    ):
        data.setdefault(name, []).append(value)
    return data


def test_the_admin_does_not_confirm_a_key_that_changed_after_it_was_shown(
    charger, meter, django_user_model
):
    key = services.meter_key_prefill(charger=charger, port=1, public_key=meter.public_key_hex)
    staff = django_user_model.objects.create_superuser("staff@example.com", "staff@example.com")
    client = Client()
    client.force_login(staff)
    shown = client.post(
        "/admin/metering/meterkey/", {"action": "confirm_keys", "_selected_action": [key.pk]}
    )
    other = Meter(serial="")
    # The charger reports another key for the same meter while the page is open.
    services.meter_key_prefill(charger=charger, port=1, public_key=other.public_key_hex)
    response = client.post("/admin/metering/meterkey/", _confirm_post(shown), follow=True)
    key.refresh_from_db()
    assert bytes(key.public_key) == other.public_key_der and not key.confirmed
    said = response.content.decode()
    assert "Not confirmed: connector 1 on " in said
    assert "is not the one the confirmation page showed" in said


def test_the_configuration_keys_of_both_versions_are_read():
    assert ocmf.meter_public_key_names([2, 1, 0]) == ["MeterPublicKey1", "MeterPublicKey2"]
    assert ocmf.configured_meter_keys_16(
        [
            {"key": "MeterPublicKey1", "readonly": True, "value": "oca:base16:asn1:3059"},
            {"key": "MeterPublicKey2", "readonly": True},
            {"key": "MeterPublicKey0", "readonly": True, "value": "x"},
            {"key": "MeterValuesSampledData", "value": "Energy.Active.Import.Register"},
            "junk",
        ]
    ) == {1: "oca:base16:asn1:3059"}
    assert ocmf.configured_meter_keys_201(
        [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "KEY-2",
                "component": {"name": "FiscalMetering", "evse": {"id": 2}},
                "variable": {"name": "PublicKey"},
            },
            {
                "attributeStatus": "UnknownVariable",
                "component": {"name": "FiscalMetering", "evse": {"id": 1}},
                "variable": {"name": "PublicKey"},
            },
        ]
    ) == {2: "KEY-2"}


def test_another_organizations_charger_is_not_found_and_a_viewer_cannot_ask_it(api_client, charger):
    services.meter_key_prefill(charger=charger, port=1, public_key=Meter(serial="").public_key_hex)
    outsider = MembershipFactory(role="owner").user
    api_client.force_authenticate(outsider)
    base = URL.format(charger.station_id)
    assert api_client.post(base + "connector/1/confirm/").status_code == 404
    assert api_client.post(base + "read-from-charger/").status_code == 404
    assert api_client.delete(base + "connector/1/").status_code == 404
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    api_client.force_authenticate(viewer)
    assert api_client.post(base + "read-from-charger/").status_code == 403
    assert api_client.delete(base + "connector/1/").status_code == 403
    assert MeterKey.objects.filter(confirmed_at__isnull=True).count() == 1

"""Vendor fault codes → ChargeX MREC codes: the seeded table, vendor mappings, and the codes in
the uptime API, the NEVI export and the Uptime tab."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from reliability.faults import mrec_for
from reliability.models import FaultCode, FaultCodeMapping, PortEvent

pytestmark = pytest.mark.django_db


def test_the_sourced_mrec_codes_are_seeded_and_mapped_from_ocpp_error_codes():
    codes = dict(FaultCode.objects.values_list("code", "name"))
    # All 26 (reliability 0004, 0005; the five on a secondary source alone in 0010).
    assert sorted(codes) == [f"CX{n:03d}" for n in range(1, 27)]
    assert [codes[c] for c in ("CX001", "CX002", "CX003", "CX004", "CX005", "CX006")] == [
        "ConnectorLockFailure",
        "GroundFailure",
        "HighTemperature",
        "OverCurrentFailure",
        "OverVoltage",
        "UnderVoltage",
    ]
    assert (codes["CX008"], codes["CX015"], codes["CX026"]) == (
        "EmergencyStop",
        "PowerLoss",
        "CutCable",
    )
    assert FaultCode.objects.get(code="CX006").description.startswith("Input voltage")
    assert not FaultCode.objects.filter(description="").exists()  # every seeded code explained
    assert mrec_for("GroundFailure") == "CX002"
    assert mrec_for("UnderVoltage") == "CX006"
    assert mrec_for("NoError") == "" and mrec_for("OtherError") == ""


def test_a_charger_sending_the_mrec_code_as_its_vendor_code_is_mapped():
    """As EVerest does: errorCode OtherError, vendorId https://chargex.inl.gov, vendorErrorCode
    the MREC code."""
    assert mrec_for("OtherError", "CX015") == "CX015"
    assert mrec_for("GroundFailure", "CX002") == "CX002"
    assert mrec_for("OtherError", "CX007") == "CX007"  # seeded in 0010
    assert mrec_for("OtherError", "CX027") == ""  # no such code: nothing guessed


def test_simultaneous_faults_in_one_notification_give_each_code():
    """MREC: simultaneous faults in one StatusNotification, their codes separated by semicolons
    (EVgo's variant: commas), the N-th vendorId with the N-th code."""
    assert mrec_for("OtherError", "CX002;CX003") == "CX002;CX003"
    assert mrec_for("OtherError", "CX015,CX002,CX015") == "CX015;CX002"
    assert mrec_for("OtherError", "CX002; E99") == "CX002"  # an unknown code adds nothing
    FaultCodeMapping.objects.create(
        fault_code=FaultCode.objects.get(code="CX004"), vendor="acme", vendor_error_code="E7"
    )
    assert mrec_for("OtherError", "CX002;E7", vendor="https://chargex.inl.gov;ACME") == (
        "CX002;CX004"
    )


def test_the_most_specific_vendor_mapping_wins():
    lock = FaultCode.objects.get(code="CX001")
    ground = FaultCode.objects.get(code="CX002")
    FaultCodeMapping.objects.create(
        fault_code=lock, error_code="OtherError", vendor_error_code="E12"
    )
    FaultCodeMapping.objects.create(
        fault_code=ground, error_code="", vendor="ACME", vendor_error_code="E12"
    )
    assert mrec_for("OtherError", "E12") == "CX001"
    assert mrec_for("OtherError", "E12", vendor="Acme") == "CX002"
    assert mrec_for("OtherError", "E13", vendor="Acme") == ""


@pytest.fixture
def grounded(charger):
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    for at, state, error in (
        (start, "Available", "NoError"),
        (start + timedelta(minutes=5), "Faulted", "GroundFailure"),
        (start + timedelta(minutes=7), "Available", "NoError"),
    ):
        PortEvent.objects.create(
            charger=charger, connector_id=1, kind="status", at=at, status=state, error_code=error
        )
    return start, now


def test_a_vendor_ground_failure_shows_as_cx002(api_client, client, host, charger, grounded):
    start, end = grounded
    api_client.force_authenticate(host)
    period = {"start": start.isoformat(), "end": end.isoformat()}
    data = api_client.get("/api/v1/uptime/", {"station_id": "CP-TEST-1", **period}).data
    (outage,) = data["ports"][0]["outages"]
    assert (outage["error_code"], outage["mrec_code"]) == ("GroundFailure", "CX002")
    client.force_login(host)
    page = client.get("/chargers/CP-TEST-1/uptime/").content.decode()
    assert '<span class="mono">CX002</span> GroundFailure' in page


def test_the_nevi_export_carries_the_mrec_codes_of_unsuccessful_sessions(api_client, host, charger):
    from chargers.models import ChargingSession

    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=7,
        id_tag="04A1",
        id_tag_status="Accepted",
        started_at=start + timedelta(minutes=1),
        stopped_at=start + timedelta(minutes=10),
        meter_start_wh=100,
        meter_stop_wh=100,
    )
    for at, state, error in (
        (start, "Preparing", "NoError"),
        (start + timedelta(minutes=2), "Faulted", "GroundFailure"),
    ):
        PortEvent.objects.create(
            charger=charger, connector_id=1, kind="status", at=at, status=state, error_code=error
        )
    api_client.force_authenticate(host)
    response = api_client.get(
        "/api/v1/uptime/nevi.csv", {"start": start.isoformat(), "end": now.isoformat()}
    )
    (row,) = [r for r in csv.DictReader(io.StringIO(response.content.decode()))]
    assert row["unsuccessful_sessions"] == "1"
    assert row["unsuccessful_session_error_codes"] == "GroundFailure"
    assert row["unsuccessful_session_mrec_codes"] == "CX002"

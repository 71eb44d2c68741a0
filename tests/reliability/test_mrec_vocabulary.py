"""The whole ChargeX MREC vocabulary (issue 58 item 2): all 26 codes with responsibility, class
and source (the five resting on a secondary source say so), and EVerest's CXnnn as it sends them
(1.6 StatusNotification vendorErrorCode, 2.0.1 NotifyEvent techCode) shown on the port with name,
responsibility, class and source: the charger's page, the support admin, the uptime page and API,
and the assistant's facts. The table is /work/shared/reference/fault-codes.md."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from chargers.models import Charger, Connector
from reliability.faults import FaultTable, port_faults, responsibility_words
from reliability.models import FaultCode, PortEvent
from reliability.services import alerts
from tests.ocpp_client import OcppTestClient

# fault-codes.md, row by row: (code, name, responsibility, class).
TABLE = [
    ("CX001", "ConnectorLockFailure", "U, V", "safety, security"),
    ("CX002", "GroundFailure", "S, V", "safety, maintenance"),
    ("CX003", "HighTemperature", "S", "safety"),
    ("CX004", "OverCurrentFailure", "S, V", "safety"),
    ("CX005", "OverVoltage", "S, V", "safety"),
    ("CX006", "UnderVoltage", "S, V", "safety"),
    ("CX007", "WeakSignal", "C, S", "authorization"),
    ("CX008", "EmergencyStop", "U, S", "safety"),
    ("CX009", "AuthorizationTimeout", "U, C, S, V", "security, authorization"),
    ("CX010", "InvalidVehicleMode", "U, V", "safety"),
    ("CX011", "CableCheckFailure", "S, V", "safety, maintenance"),
    ("CX012", "PreChargeFailure", "S, V", "safety"),
    ("CX013", "NoInternet", "C, S", "authorization"),
    ("CX014", "PilotFault", "S, V", "maintenance"),
    ("CX015", "PowerLoss", "S", "safety, maintenance"),
    ("CX016", "EVContactorFault", "V", "safety"),
    ("CX017", "EVSEContactorFault", "S", "safety"),
    ("CX018", "CableOverTempDerate", "S", "safety"),
    ("CX019", "CableOverTempStop", "S, V", "safety"),
    ("CX020", "PartialInsertion", "U, S, V", "safety"),
    ("CX021", "CapacitanceFault", "S, V", "safety"),
    ("CX022", "ResistanceFault", "S, V", "safety"),
    ("CX023", "ProximityFault", "S, V", "safety, maintenance"),
    ("CX024", "ConnectorVoltageHigh", "S", "safety"),
    ("CX025", "BrokenLatch", "C, S", "safety, security"),
    ("CX026", "CutCable", "C, S", "safety, maintenance"),
]
SECONDARY = {"CX007", "CX012", "CX013", "CX016", "CX021"}


def iso(moment) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- the table ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_all_26_codes_have_name_responsibility_class_and_source():
    rows = {f.code: f for f in FaultCode.objects.all()}
    assert sorted(rows) == [f"CX{n:03d}" for n in range(1, 27)]
    for code, name, responsibility, fault_class in TABLE:
        row = rows[code]
        assert (row.name, row.responsibility, row.fault_class) == (
            name,
            responsibility,
            fault_class,
        )
        assert row.source, code
        assert row.secondary_source == (code in SECONDARY), code


@pytest.mark.django_db
def test_a_code_on_a_secondary_source_says_so_and_names_it():
    table = FaultTable()
    for code in SECONDARY:
        fault = table.faults[code]
        assert fault.secondary and "kwwhat" in fault.source and "secondary source" in fault.source
    for code in ("CX001", "CX006"):  # read on INL's own page
        assert "INL" in table.faults[code].source and not table.faults[code].secondary
    for code in ("CX008", "CX026"):  # cross-checked against EVerest
        assert "EVerest" in table.faults[code].source and not table.faults[code].secondary


@pytest.mark.django_db
def test_everest_codes_map_to_themselves_and_weak_signal_to_cx007():
    table = FaultTable()
    for code, *_ in TABLE:
        assert table.code("OtherError", code) == code  # 1.6 vendorErrorCode
        assert table.code("", code) == code  # 2.0.1 techCode
    assert table.code("WeakSignal") == "CX007"


def test_responsibility_letters_in_words():
    assert responsibility_words("U, C, S, V") == (
        "EV user, charging station operator, charging station, vehicle"
    )
    assert responsibility_words("") == ""


# -- EVerest's codes on the port ------------------------------------------------------------------


async def connected(station_id="CP-TEST-1", **kwargs) -> OcppTestClient:
    client = OcppTestClient(station_id, **kwargs)
    ok, subprotocol = await client.connect()
    assert ok, subprotocol
    return client


async def connector_stored(charger, connector_id: int, vendor_error_code: str) -> None:
    """The 1.6 connector state is written batched on PostgreSQL: wait until it is there."""
    import asyncio
    import time

    from tests.bounds import GENEROUS_S

    deadline = time.monotonic() + GENEROUS_S  # a busy machine writes it late
    while time.monotonic() < deadline:
        if await Connector.objects.filter(
            charger=charger, connector_id=connector_id, vendor_error_code=vendor_error_code
        ).aexists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the connector's state was not stored")


def assert_shows_cx016(page: str) -> None:
    """The charger's page shows the code on its port with name, who may cause it, class and
    its source, said to be secondary."""
    start = page.index('data-code="CX016"')
    shown = page[start : page.index("</li>", start)]
    assert "CX016" in shown and "EVContactorFault" in shown
    assert "may be caused by: vehicle" in shown and "class: safety" in shown
    assert "Source: appspace/kwwhat" in shown and "secondary source" in shown


@pytest.mark.django_db(transaction=True)
async def test_a_16_status_notification_with_cx016_shows_on_the_port(charger, host, client):
    ocpp = await connected()
    payload = {
        "connectorId": 1,
        "errorCode": "OtherError",
        "status": "Faulted",
        "vendorId": "https://chargex.inl.gov",
        "vendorErrorCode": "CX016",
        "timestamp": iso(timezone.now()),
    }
    assert await ocpp.result("StatusNotification", payload) == {}
    await connector_stored(charger, 1, "CX016")
    await ocpp.close()

    faults = await sync_to_async(port_faults)(charger)
    assert [f["code"] for f in faults[1]] == ["CX016"]
    await sync_to_async(client.force_login)(host)
    response = await sync_to_async(client.get)("/chargers/CP-TEST-1/")
    assert response.status_code == 200
    assert_shows_cx016(response.content.decode())

    # Cleared by NoError: the port shows no code any more.
    ocpp = await connected()
    payload.update(errorCode="NoError", status="Available", timestamp=iso(timezone.now()))
    del payload["vendorErrorCode"]
    assert await ocpp.result("StatusNotification", payload) == {}
    await connector_stored(charger, 1, "")
    await ocpp.close()
    page = (await sync_to_async(client.get)("/chargers/CP-TEST-1/")).content.decode()
    assert 'data-code="CX016"' not in page


def problem_event(event_id: int, at, *, value: str, cleared: bool | None = None) -> dict:
    """EVerest's NotifyEvent for an MREC error (docs/reliability.md, "Fault codes")."""
    data = {
        "eventId": event_id,
        "timestamp": iso(at),
        "trigger": "Delta",
        "actualValue": value,
        "techCode": "CX016",
        "techInfo": "Vehicle contactor welded",
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": "EVSE", "evse": {"id": 1}},
        "variable": {"name": "Problem"},
    }
    if cleared is not None:
        data["cleared"] = cleared
    return data


@pytest.mark.django_db(transaction=True)
async def test_a_201_notify_event_with_tech_code_cx016_shows_on_the_port(charger, host, client):
    await Charger.objects.filter(pk=charger.pk).aupdate(ocpp_version="2.0.1")
    await Connector.objects.acreate(charger=charger, connector_id=1, status="Faulted")
    ocpp = await connected(subprotocols=["ocpp2.0.1"])
    t0 = timezone.now() - timedelta(seconds=60)
    notify = {"generatedAt": iso(t0), "seqNo": 0, "eventData": [problem_event(1, t0, value="true")]}
    assert await ocpp.result("NotifyEvent", notify) == {}
    await sync_to_async(client.force_login)(host)
    page = (await sync_to_async(client.get)("/chargers/CP-TEST-1/")).content.decode()
    assert_shows_cx016(page)

    t1 = t0 + timedelta(seconds=30)
    cleared = {"generatedAt": iso(t1), "seqNo": 1}
    cleared["eventData"] = [problem_event(2, t1, value="false", cleared=True)]
    assert await ocpp.result("NotifyEvent", cleared) == {}
    await ocpp.close()
    page = (await sync_to_async(client.get)("/chargers/CP-TEST-1/")).content.decode()
    assert 'data-code="CX016"' not in page


# -- the other places it shows --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_support_admin_shows_the_ports_code_with_its_source(admin_client, charger):
    Connector.objects.create(
        charger=charger,
        connector_id=1,
        status="Faulted",
        error_code="OtherError",
        vendor_error_code="CX021",
    )
    page = admin_client.get(f"/admin/chargers/charger/{charger.pk}/change/").content.decode()
    assert (
        "CX021 CapacitanceFault (may be caused by: charging station, vehicle; class: safety;"
        in page
    )
    assert "Source: appspace/kwwhat" in page and "secondary source" in page


@pytest.mark.django_db
def test_the_uptime_api_and_page_name_the_code_and_its_source(api_client, client, host, charger):
    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=1)
    for at, state, error, vendor in (
        (start, "Available", "NoError", ""),
        (start + timedelta(minutes=5), "Faulted", "OtherError", "CX016"),
        (start + timedelta(minutes=7), "Available", "NoError", ""),
    ):
        PortEvent.objects.create(
            charger=charger,
            connector_id=1,
            kind="status",
            at=at,
            status=state,
            error_code=error,
            vendor_error_code=vendor,
        )
    api_client.force_authenticate(host)
    period = {"station_id": "CP-TEST-1", "start": start.isoformat(), "end": now.isoformat()}
    (outage,) = api_client.get("/api/v1/uptime/", period).data["ports"][0]["outages"]
    assert outage["mrec_code"] == "CX016"
    (mrec,) = outage["mrec"]
    assert (mrec["name"], mrec["responsibility"], mrec["class"]) == (
        "EVContactorFault",
        "V",
        "safety",
    )
    assert mrec["responsible"] == "vehicle" and mrec["secondary_source"] is True
    assert "kwwhat" in mrec["source"]
    client.force_login(host)
    page = client.get("/chargers/CP-TEST-1/uptime/").content.decode()
    assert "EVContactorFault" in page and "(secondary source)" in page
    assert "May be caused by: vehicle. Class: safety. Source: appspace/kwwhat" in page


@pytest.mark.django_db
def test_the_assistant_facts_name_an_open_code_and_its_source(charger):
    Connector.objects.create(
        charger=charger, connector_id=2, status="Charging", error_code="HighTemperature"
    )
    facts = [f for f in alerts.charger_facts(charger) if f.startswith("Fault code open")]
    assert facts == [
        "Fault code open on port 2: CX003 HighTemperature (ChargeX MREC), may be caused by: "
        "charging station; class: safety; Source: INL's ChargeX MREC page "
        "(inl.gov/chargex/mrec); responsibility and class: appspace/kwwhat "
        "seeds/chargex_mrec_codes.csv, transcribed from the ChargeX MREC report "
        "(kwwhat PR #156)."
    ]


@pytest.mark.django_db(transaction=True)
async def test_an_availability_event_with_tech_code_puts_the_code_on_the_outage(charger):
    await Charger.objects.filter(pk=charger.pk).aupdate(ocpp_version="2.0.1")
    ocpp = await connected(subprotocols=["ocpp2.0.1"])
    t0 = timezone.now() - timedelta(seconds=120)
    event = problem_event(1, t0, value="Faulted")
    event["variable"] = {"name": "AvailabilityState"}
    event["component"] = {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}
    assert (
        await ocpp.result("NotifyEvent", {"generatedAt": iso(t0), "seqNo": 0, "eventData": [event]})
        == {}
    )
    await ocpp.close()
    recorded = await PortEvent.objects.aget(charger=charger, kind="status")
    assert (recorded.status, recorded.vendor_error_code) == ("Faulted", "CX016")


@pytest.mark.django_db
def test_the_assistant_tells_a_host_the_open_code_with_its_secondary_source(host, charger):
    from support.assistant.diagnosis import Viewer, diagnose
    from support.assistant.topics import Topic

    Connector.objects.create(
        charger=charger,
        connector_id=1,
        status="Faulted",
        error_code="OtherError",
        vendor_error_code="CX016",
    )
    diagnosis = diagnose(
        Topic.CHARGER_OFFLINE, viewer=Viewer.for_user(host), station_id="CP-TEST-1"
    )
    (fact,) = [f for f in diagnosis.facts if f.startswith("Fault code open")]
    assert fact.startswith(
        "Fault code open on port 1: CX016 EVContactorFault (ChargeX MREC), may be caused by: "
        "vehicle; class: safety; Source: appspace/kwwhat"
    )
    assert fact.endswith("alone (a secondary source).")

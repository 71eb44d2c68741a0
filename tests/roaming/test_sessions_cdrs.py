"""Sessions and CDRs sender: a partner's customer charges over OCPP; the partner gets the session
while it runs and a CDR with our billing's cost when it ends, also after being down."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate, SessionCharge
from chargers.models import ChargingSession
from roaming import tasks
from roaming.models import Cdr, Delivery
from tests.ocpp_client import OcppTestClient
from tests.roaming import spec
from tests.roaming.conftest import auth, connected_partner
from tests.roaming.emsp_stub import EmspStub

pytestmark = pytest.mark.django_db(transaction=True)

SIGNED = "T0NNRnx7IkZWIjoiMS4wIn18eyJTRCI6IjMwNDUifQ=="


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


@pytest.fixture
def emsp(operator, stub, client):
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    token = {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "RFID0001",
        "type": "RFID",
        "contract_id": "DE-EMS-C0001",
        "issuer": "Stub",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2024-01-01T00:00:00Z",
    }
    response = client.put(
        "/ocpi/2.2.1/tokens/DE/EMS/RFID0001",
        json.dumps(token),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth(),
    )
    assert response.status_code == 201
    Rate.objects.create(
        property=operator["public"],
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        idle_fee_cap=Decimal("10.00"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    return partner


async def _charge(station_id="PUB-1", *, before_stop=None):
    """A charger's session: 12 kWh from 08:00, full at 09:00, unplugged at 09:40, signed meter data."""
    charger = OcppTestClient(station_id)
    assert (await charger.connect())[0]
    start = await charger.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "RFID0001",
            "meterStart": 10000,
            "timestamp": "2026-11-20T08:00:00Z",
        },
    )
    assert start["idTagInfo"]["status"] == "Accepted"
    tx = start["transactionId"]
    await charger.result(
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging",
            "timestamp": "2026-11-20T08:00:05Z",
        },
    )
    await charger.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": "2026-11-20T08:30:00Z",
                    "sampledValue": [{"value": "16000", "unit": "Wh"}],
                }
            ],
        },
    )
    await charger.result(
        "StatusNotification",
        {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "SuspendedEV",
            "timestamp": "2026-11-20T09:00:00Z",
        },
    )
    if before_stop:
        await before_stop()
    await charger.result(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 22000,
            "timestamp": "2026-11-20T09:40:00Z",
            "reason": "EVDisconnected",
            "transactionData": [
                {
                    "timestamp": "2026-11-20T09:40:00Z",
                    "sampledValue": [
                        {"value": SIGNED, "format": "SignedData", "context": "Transaction.End"}
                    ],
                }
            ],
        },
    )
    await charger.close()


async def test_the_partner_gets_the_session_then_a_cdr_with_our_cost(operator, stub, emsp):
    await _charge()

    puts = stub.requests_to("sessions", "PUT")
    session = await ChargingSession.objects.aget(id_tag="RFID0001")
    assert [p["path"] for p in puts] == [f"/ocpi/emsp/2.2.1/sessions/NL/EVB/{session.pk}"] * 2
    assert (puts[0]["body"]["status"], puts[1]["body"]["status"]) == ("ACTIVE", "COMPLETED")
    assert puts[1]["body"]["kwh"] == 12 and puts[1]["body"]["evse_uid"] == "PUB-1*1"
    assert puts[0]["body"]["cdr_token"] == {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "RFID0001",
        "type": "RFID",
        "contract_id": "DE-EMS-C0001",
    }
    (post,) = stub.requests_to("cdrs", "POST")
    cdr = post["body"]
    charge = await SessionCharge.objects.aget(session=session)
    # Our own bill of the session: 1.00 + 12 kWh x 0.35 + (40 - 15) min x 0.10 = 7.70, +21% = 9.32.
    assert (
        (Decimal(str(cdr["total_cost"]["excl_vat"])), Decimal(str(cdr["total_cost"]["incl_vat"])))
        == (charge.subtotal, charge.total)
        == (Decimal("7.70"), Decimal("9.32"))
    )
    lines = {line["kind"]: Decimal(line["amount"]) for line in charge.lines}
    assert Decimal(str(cdr["total_fixed_cost"]["excl_vat"])) == lines["connection_fee"]
    assert Decimal(str(cdr["total_energy_cost"]["excl_vat"])) == lines["energy"]
    assert Decimal(str(cdr["total_parking_cost"]["excl_vat"])) == lines["idle_fee"]
    assert (
        cdr["total_energy"] == 12
        and cdr["auth_method"] == "WHITELIST"
        and cdr["session_id"] == str(session.pk)
    )
    assert cdr["signed_data"]["signed_values"] == [
        {
            "nature": "End",
            "plain_data": "2026-11-20T09:40:00Z  Transaction.End",
            "signed_data": SIGNED,
        }
    ]
    assert [p["dimensions"][0]["type"] for p in cdr["charging_periods"]] == [
        "ENERGY",
        "PARKING_TIME",
    ]
    assert cdr["tariffs"][0]["id"] == cdr["charging_periods"][0]["tariff_id"]
    # Its last_updated is the moment it was stored, which GET /cdrs's date_from and date_to
    # compare (to the second), and what the list answers.
    stored = await Cdr.objects.aget(session=session)
    assert cdr["last_updated"] == stored.data["last_updated"]
    assert cdr["last_updated"] == stored.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    spec.check_object(cdr, "mod_cdrs.asciidoc", "mod_cdrs_cdr_object")
    spec.check_object(cdr["cdr_location"], "mod_cdrs.asciidoc", "mod_cdrs_cdr_location_class")
    spec.same_types(cdr, spec.example("cdr_example.json"))
    spec.check_object(puts[1]["body"], "mod_sessions.asciidoc", "mod_sessions_session_object")
    spec.same_types(puts[1]["body"], spec.example("session_example_2_short_finished.json"))


async def test_a_partner_down_during_the_session_gets_the_cdr_when_it_is_back(operator, stub, emsp):
    async def go_down():
        stub.down = True

    await _charge(before_stop=go_down)

    assert stub.requests_to("cdrs") == []
    waiting = [
        d async for d in Delivery.objects.filter(module__in=["sessions", "cdrs"], status="pending")
    ]
    assert {d.module for d in waiting} == {"sessions", "cdrs"}
    assert await Cdr.objects.acount() == 1
    stub.down = False
    await Delivery.objects.filter(status="pending").aupdate(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    await _sweep()

    (post,) = stub.requests_to("cdrs", "POST")
    assert post["body"]["total_cost"]["incl_vat"] == 9.32
    # In order: the session's final state before its CDR.
    order = [r["path"].split("/")[4] for r in stub.received if r["method"] in ("PUT", "POST")]
    assert order[-2:] == ["sessions", "cdrs"]


async def _sweep():
    from asgiref.sync import sync_to_async

    await sync_to_async(tasks.deliveries_sweep_task.delay)()


async def test_a_lost_session_finished_signal_is_made_up_by_the_sweep(operator, stub, emsp):
    from asgiref.sync import sync_to_async

    from chargers.signals import session_finished
    from roaming import receivers

    session_finished.disconnect(dispatch_uid="roaming.session_finished")
    try:
        await _charge()
    finally:
        session_finished.connect(
            receivers.session_finished, dispatch_uid="roaming.session_finished"
        )
    assert stub.requests_to("cdrs") == []

    await sync_to_async(tasks.sessions_sweep_task.delay)()
    await sync_to_async(tasks.sessions_sweep_task.delay)()

    assert len(stub.requests_to("cdrs", "POST")) == 1


async def test_partners_pull_their_sessions_and_cdrs_with_paging(operator, stub, emsp):
    from asgiref.sync import sync_to_async
    from django.test import Client

    await _charge()
    other = await sync_to_async(connected_partner)(
        operator["org"], token="other-partner", country_code="FR", party_id="OTH"
    )
    assert other.pk

    def get(url, token=None):
        headers = {"HTTP_AUTHORIZATION": auth(token) if token else auth()}
        return Client().get(url, **headers)

    cdrs = await sync_to_async(get)("/ocpi/2.2.1/cdrs?limit=1")
    assert cdrs["X-Total-Count"] == "1" and cdrs.json()["data"][0]["id"].startswith("CDR-")
    sessions = await sync_to_async(get)("/ocpi/2.2.1/sessions")
    assert [s["status"] for s in sessions.json()["data"]] == ["COMPLETED"]
    # Another partner sees none of them.
    assert (await sync_to_async(get)("/ocpi/2.2.1/cdrs", "other-partner")).json()["data"] == []
    assert (await sync_to_async(get)("/ocpi/2.2.1/sessions", "other-partner")).json()["data"] == []


async def _closed_on_our_estimate() -> tuple[OcppTestClient, int, ChargingSession]:
    """A roaming session of 6 kWh so far whose StopTransaction is lost: the connector went
    Available and we close it at its last reading (an estimate), so the partner gets its CDR.
    Returns the charger (still connected), its transaction id and the session."""
    from asgiref.sync import sync_to_async

    from chargers.devices import stale

    charger = OcppTestClient("PUB-1")
    assert (await charger.connect())[0]
    start = await charger.result(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "RFID0001",
            "meterStart": 10000,
            "timestamp": "2026-11-20T08:00:00Z",
        },
    )
    tx = start["transactionId"]
    reading = {
        "timestamp": "2026-11-20T08:30:00Z",
        "sampledValue": [{"value": "16000", "unit": "Wh"}],
    }
    await charger.result(
        "MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [reading]}
    )
    session = await ChargingSession.objects.aget(id_tag="RFID0001")
    assert await sync_to_async(stale.close_without_stop)(session.pk)
    return charger, tx, session


async def test_a_cdr_on_an_estimated_stop_is_credited_and_replaced_when_the_chargers_stop_comes(
    operator, stub, emsp
):
    """mod_cdrs "Credit CDRs": a CDR is never changed. The StopTransaction is lost (the connector
    went Available), so we close the session at its last reading (6 kWh, an estimate) and the
    partner gets that CDR; the charger's own stop comes later (12 kWh): the partner gets a Credit
    CDR of the first (its total_cost negated), then a new CDR that bills what our session says."""
    from asgiref.sync import sync_to_async
    from django.test import Client

    from roaming import sessions

    charger, tx, session = await _closed_on_our_estimate()
    (first,) = [p["body"] for p in stub.requests_to("cdrs", "POST")]
    assert first["id"] == f"CDR-{session.pk}" and first["total_energy"] == 6

    await charger.result(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 22000,
            "timestamp": "2026-11-20T09:40:00Z",
            "reason": "Local",
        },
    )
    await charger.close()

    posts = [p["body"] for p in stub.requests_to("cdrs", "POST")]
    assert [p["id"] for p in posts] == [
        f"CDR-{session.pk}",
        f"CDR-{session.pk}-C",
        f"CDR-{session.pk}-2",
    ]
    credit, second = posts[1], posts[2]
    assert credit["credit"] is True and credit["credit_reference_id"] == first["id"]
    assert credit["total_cost"] == {k: -v for k, v in first["total_cost"].items()}
    unchanged = set(first) - {"id", "total_cost", "last_updated"}
    assert {k: credit[k] for k in unchanged} == {k: first[k] for k in unchanged}
    spec.check_object(credit, "mod_cdrs.asciidoc", "mod_cdrs_cdr_object")
    charge = await SessionCharge.objects.aget(session=session)
    assert "credit" not in second and second["total_energy"] == 12
    assert second["end_date_time"] == "2026-11-20T09:40:00Z"
    assert Decimal(str(second["total_cost"]["incl_vat"])) == charge.total
    spec.check_object(second, "mod_cdrs.asciidoc", "mod_cdrs_cdr_object")

    # Said once: the same signal again, or the sweep, sends nothing more.
    await sync_to_async(sessions.cdr_create)(session_id=session.pk)
    await sync_to_async(sessions.sessions_sweep)()
    await sync_to_async(tasks.deliveries_send_task)(emsp.pk)
    assert len(stub.requests_to("cdrs", "POST")) == 3
    standing = await sync_to_async(lambda: Cdr.objects.current().get(session=session).cdr_id)()
    assert standing == f"CDR-{session.pk}-2"
    # A partner pulling its CDRs gets all three, in the order they were made.
    pulled = await sync_to_async(
        lambda: Client().get("/ocpi/2.2.1/cdrs", HTTP_AUTHORIZATION=auth()).json()["data"]
    )()
    assert [c["id"] for c in pulled] == [p["id"] for p in posts]


async def test_a_chargers_stop_that_bills_what_the_estimate_billed_sends_no_credit(
    operator, stub, emsp
):

    charger, tx, session = await _closed_on_our_estimate()
    # The charger's own stop: at that reading, with that reading.
    await charger.result(
        "StopTransaction",
        {
            "transactionId": tx,
            "meterStop": 16000,
            "timestamp": "2026-11-20T08:30:00Z",
            "reason": "Local",
        },
    )
    await charger.close()
    assert [p["body"]["id"] for p in stub.requests_to("cdrs", "POST")] == [f"CDR-{session.pk}"]
    cdr = await Cdr.objects.aget(session=session)
    assert cdr.estimated is False  # settled: the sweep does not look at it again


async def test_support_credits_and_replaces_an_estimated_cdr_the_sweep_no_longer_takes(
    operator, stub, emsp, admin_client
):
    """The sweep corrects the last week's CDRs on an estimated stop. One whose charger's stop came
    a month ago without a correction (a CDR made before credits existed) stays as it was until
    support chooses it in Django admin (Roaming > CDRs): then the partner gets the Credit CDR and
    the new CDR, and a second pass sends nothing more."""
    from asgiref.sync import sync_to_async

    from roaming import sessions

    charger, _tx, session = await _closed_on_our_estimate()
    await charger.close()
    month_ago = timezone.now() - timedelta(days=30)
    await ChargingSession.objects.filter(pk=session.pk).aupdate(
        stop_reason="Local",
        meter_stop_wh=22000,
        stopped_at=datetime(2026, 11, 20, 9, 40, tzinfo=UTC),
        received_stop_at=month_ago,
    )
    first = await Cdr.objects.aget(session=session)
    assert first.estimated
    await sync_to_async(sessions.sessions_sweep)()
    assert await Cdr.objects.filter(session=session).acount() == 1  # older than the sweep's week

    def act():
        return admin_client.post(
            "/admin/roaming/cdr/",
            {"action": "credit_and_replace", "_selected_action": [first.pk]},
            follow=True,
        )

    answer = await sync_to_async(act)()
    assert answer.status_code == 200
    said = [str(m) for m in answer.context["messages"]]
    assert said[0].startswith("1 CDR(s) credited and replaced by the charger's own stop; 0 ")
    posts = [p["body"] for p in stub.requests_to("cdrs", "POST")]
    assert [p["id"] for p in posts] == [
        f"CDR-{session.pk}",
        f"CDR-{session.pk}-C",
        f"CDR-{session.pk}-2",
    ]
    assert posts[1]["credit_reference_id"] == first.cdr_id and posts[2]["total_energy"] == 12
    # Chosen again (or the new CDR chosen): nothing more is sent.
    await sync_to_async(act)()
    assert len(stub.requests_to("cdrs", "POST")) == 3

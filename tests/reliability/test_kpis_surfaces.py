"""The success KPIs of a planted day (tests/reliability/test_kpis.py, hand counted) stored as
the charger, authorization and command rows they come from, read back through every surface:
the API, the Uptime pages, the NEVI and CEC exports and the assistant's facts; another
organization gets 404; the selector's queries do not grow with chargers or sessions."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from authorization.models import AuthorizationDecision, normalize_uid
from chargers.models import ChargingSession, Command, Connector, MeterValue, TransactionEvent
from reliability import kpi_selectors
from reliability.services.alerts import success_facts
from tests.factories import ChargerFactory, MembershipFactory
from tests.reliability.test_kpis import DAY, planted_day

pytestmark = pytest.mark.django_db

PERIOD = {"start": DAY.isoformat(), "end": (DAY + timedelta(days=1)).isoformat()}


def _store_session(charger, record, transaction_id: int) -> None:
    stopped = record.stopped_at
    row = ChargingSession.objects.create(
        charger=charger,
        connector_id=record.connector,
        transaction_id=transaction_id,
        id_tag=record.id_tag,
        started_at=record.started_at,
        stopped_at=stopped,
        meter_start_wh=Decimal(0),
        meter_stop_wh=record.energy_wh if stopped else None,
        stop_reason=record.stop_reason if stopped else "",
        status="completed" if stopped else "active",
    )
    if record.first_energy_at is None:
        return
    # Each way a charger says power flows: a power reading, a 2.0.1 Charging event, a register.
    if record.id_tag == "APP-B":
        MeterValue.objects.create(
            charger=charger,
            session=row,
            connector_id=record.connector,
            timestamp=record.first_energy_at,
            measurand="Power.Active.Import",
            unit="W",
            value=Decimal(7200),
        )
    elif record.id_tag == "NL-XYZ-1":
        TransactionEvent.objects.create(
            charger=charger,
            session=row,
            ocpp_transaction_id=f"tx-{transaction_id}",
            seq_no=1,
            event_type="Updated",
            trigger_reason="ChargingStateChanged",
            timestamp=record.first_energy_at,
            payload={"transactionInfo": {"chargingState": "Charging"}},
        )
    else:
        MeterValue.objects.create(
            charger=charger,
            session=row,
            connector_id=record.connector,
            timestamp=record.first_energy_at,
            unit="kWh",
            value=Decimal("0.2"),
        )
    # A register still at the start an instant before: not energy yet.
    MeterValue.objects.create(
        charger=charger,
        session=row,
        connector_id=record.connector,
        timestamp=record.first_energy_at - timedelta(seconds=5),
        unit="Wh",
        value=Decimal(0),
    )


@pytest.fixture
def planted(charger):
    for port in (1, 2):
        Connector.objects.get_or_create(charger=charger, connector_id=port)
    sessions, authorizes, remotes = planted_day()
    for n, record in enumerate(sessions, start=1):
        _store_session(charger, record, 9000 + n)
    for auth in authorizes:
        decision = AuthorizationDecision.objects.create(
            uid=auth.uid,
            uid_normalized=normalize_uid(auth.uid),
            organization=charger.property.organization,
            station_id=charger.station_id,
            connector_id=None,
            context="local",
            status="Accepted" if auth.accepted else "Invalid",
            reason="accepted" if auth.accepted else "unknown_token",
            step=1,
            message="",
        )
        AuthorizationDecision.objects.filter(pk=decision.pk).update(created_at=auth.at)
    for remote in remotes:
        command = Command.objects.create(
            charger=charger,
            action="RemoteStartTransaction",
            payload={"connectorId": remote.connector, "idTag": remote.id_tag},
            status="answered",
            response={"status": remote.answer},
            source=remote.source,
        )
        Command.objects.filter(pk=command.pk).update(created_at=remote.at)
    return charger


def _hand_count(figures: dict) -> None:
    assert figures["charge_attempts"] == 13
    assert (figures["power_delivered"], figures["completions"]) == (8, 7)
    assert (figures["orphan_authorizes"], figures["orphan_remote_starts"]) == (2, 2)
    assert figures["session_success_percent"] == 53.85
    assert figures["charge_start_success_percent"] == 61.54
    assert figures["charge_end_success_percent"] == 87.5
    assert (figures["start_time_p50_s"], figures["start_time_p90_s"]) == (32.5, 43.0)
    assert figures["start_time_p95_s"] == 46.5
    assert (figures["visits"], figures["first_attempt_successes"]) == (11, 5)
    modes = {m: (v["charge_attempts"], v["completions"]) for m, v in figures["by_mode"].items()}
    assert modes == {
        "card": (6, 3),
        "app": (1, 1),
        "guest": (4, 1),
        "autocharge": (1, 1),
        "roaming": (1, 1),
    }


def test_the_api_gives_the_hand_count_per_fleet_property_and_port(api_client, host, planted):
    api_client.force_authenticate(host)
    response = api_client.get("/api/v1/uptime/kpis/", PERIOD)
    assert response.status_code == 200, response.data
    (fleet,) = response.data["fleets"]
    assert fleet["organization_id"] == planted.property.organization_id
    _hand_count(fleet)
    (place,) = response.data["properties"]
    assert place["property_id"] == planted.property_id
    _hand_count(place)
    ports = {p["connector_id"]: p for p in response.data["ports"]}
    assert sorted(ports) == [0, 1, 2]
    assert (ports[1]["charge_attempts"], ports[1]["completions"]) == (6, 4)
    assert (ports[2]["charge_attempts"], ports[2]["completions"]) == (5, 3)
    assert ports[0]["orphan_authorizes"] == 2
    assert response.data["rules"]["visit_driver_s"] == 1800
    one = api_client.get("/api/v1/uptime/kpis/", {**PERIOD, "station_id": planted.station_id})
    _hand_count(one.data["fleets"][0])


def test_the_visit_windows_are_settings(api_client, host, planted, settings):
    settings.RELIABILITY_KPI_VISIT_DRIVER_S = 3600
    settings.RELIABILITY_KPI_VISIT_ANONYMOUS_S = 600
    api_client.force_authenticate(host)
    response = api_client.get("/api/v1/uptime/kpis/", PERIOD)
    assert response.data["fleets"][0]["visits"] == 9
    assert response.data["rules"]["visit_anonymous_s"] == 600


def test_bad_dates_are_a_400_naming_the_field(api_client, host, planted):
    api_client.force_authenticate(host)
    for params, field in (
        ({"start": "2026-02-30"}, "start"),
        ({"end": "9999-01-01"}, "end"),
        ({"start": "2026-03-02", "end": "2026-03-01"}, "end"),
        ({"property": "one"}, "property"),
    ):
        response = api_client.get("/api/v1/uptime/kpis/", params)
        assert response.status_code == 400 and field in response.data, (params, response.data)


def test_another_organization_gets_404_and_none_of_the_figures(api_client, planted):
    outsider = MembershipFactory().user
    ChargerFactory(property__organization=MembershipFactory(user=outsider).organization)
    api_client.force_authenticate(outsider)
    for params in ({"station_id": planted.station_id}, {"property": planted.property_id}):
        response = api_client.get("/api/v1/uptime/kpis/", {**PERIOD, **params})
        assert response.status_code == 404
    mine = api_client.get("/api/v1/uptime/kpis/", PERIOD)
    assert mine.status_code == 200
    assert mine.data["ports"] == [] and mine.data["fleets"] == []


def test_the_uptime_pages_show_the_hand_count(client, host, planted):
    client.force_login(host)
    month = f"?month={DAY:%Y-%m}"
    tab = client.get(f"/chargers/{planted.station_id}/uptime/{month}").content.decode()
    assert 'data-kpi="port-1"' in tab and 'data-kpi="port-2"' in tab
    port1 = tab.split('data-kpi="port-1"')[1].split("</tr>")[0]
    assert "66.67 %" in port1 and "(4 of 6)" in port1
    fleet = client.get(f"/uptime/{month}").content.decode()
    row = fleet.split(f'data-kpi="fleet-{planted.property.organization_id}"')[1].split("</tr>")[0]
    assert "53.85 %" in row and "(7 of 13)" in row and "61.54 %" in row and "87.50 %" in row
    assert "32.5 / 43.0 / 46.5 s" in row and "45.45 %" in row and "11 visits" in row
    assert (
        "card 3/6" in row and "guest QR 1/4" in row and "Plug &amp; Charge / autocharge 1/1" in row
    )
    assert f'data-kpi="property-{planted.property_id}"' in fleet


def test_the_pages_of_another_organization_show_nothing_of_it(client, planted):
    outsider = MembershipFactory().user
    client.force_login(outsider)
    assert client.get(f"/chargers/{planted.station_id}/uptime/").status_code == 404
    fleet = client.get(f"/uptime/?month={DAY:%Y-%m}").content.decode()
    assert "data-kpi=" not in fleet and "No charge attempt in this period." in fleet


def test_the_exports_carry_each_ports_figures(api_client, host, planted):
    api_client.force_authenticate(host)
    for url in ("/api/v1/uptime/nevi.csv", "/api/v1/uptime/cec.csv"):
        response = api_client.get(url, PERIOD)
        assert response.status_code == 200
        rows = {
            r["connector_id"]: r for r in csv.DictReader(io.StringIO(response.content.decode()))
        }
        assert (rows["1"]["charge_attempts"], rows["1"]["completions"]) == ("6", "4")
        assert rows["1"]["session_success_percent"] == "66.67"
        assert (rows["2"]["charge_attempts"], rows["2"]["charge_end_success_percent"]) == (
            "5",
            "75.0",
        )
        assert rows["2"]["orphan_remote_starts"] == "1"
        # port 1: 50, 35, 40, 15 s
        assert rows["1"]["start_time_p50_s"] == "37.5"


def test_the_assistant_says_each_ports_figures(planted):
    facts = success_facts(planted, DAY, DAY + timedelta(days=1))
    port1 = next(f for f in facts if f.startswith("Port 1 "))
    assert "4 of 6 charge attempts completed (session success 66.67 %" in port1
    assert "1 Authorize(s) and 1 remote start(s)" not in port1  # its orphan is a remote start
    assert "0 Authorize(s) and 1 remote start(s) never started" in port1
    assert "median start time 37.5 s" in port1
    assert any(f.startswith("Authorizes naming no port") for f in facts)


def _busy(chargers: int, each: int, first_transaction: int) -> list:
    """`chargers` chargers with `each` completed sessions and an orphan Authorize apiece."""
    made = []
    n = first_transaction
    for _ in range(chargers):
        charger = ChargerFactory()
        made.append(charger)
        for i in range(each):
            n += 1
            started = DAY + timedelta(minutes=10 * i)
            session = ChargingSession.objects.create(
                charger=charger,
                connector_id=1,
                transaction_id=n,
                id_tag=f"T{n}",
                started_at=started,
                stopped_at=started + timedelta(minutes=5),
                meter_start_wh=Decimal(0),
                meter_stop_wh=Decimal(100),
                stop_reason="Local",
                status="completed",
            )
            MeterValue.objects.create(
                charger=charger,
                session=session,
                connector_id=1,
                timestamp=started + timedelta(seconds=20),
                value=Decimal(50),
                unit="Wh",
            )
        lost = AuthorizationDecision.objects.create(
            uid="LOST",
            uid_normalized="LOST",
            station_id=charger.station_id,
            context="local",
            status="Accepted",
            reason="accepted",
            step=1,
            message="",
        )
        AuthorizationDecision.objects.filter(pk=lost.pk).update(
            created_at=DAY + timedelta(hours=23)
        )
    return made


def test_the_selector_reads_a_fixed_number_of_queries(settings):
    end = DAY + timedelta(days=1)
    small = _busy(2, 2, 50_000)
    with CaptureQueriesContext(connection) as few:
        kpi_selectors.board(small, DAY, end)
    large = small + _busy(6, 5, 60_000)
    with CaptureQueriesContext(connection) as many:
        board = kpi_selectors.board(large, DAY, end)
    assert len(many) == len(few) == 9  # count, ports, then 7 a slice
    assert board.fleets and sum(t.as_json()["completions"] for t in board.fleets.values()) == 34
    # Smaller batches: more slices, the same handful of queries each, the same figures.
    settings.RELIABILITY_KPI_BATCH_SESSIONS = 10
    with CaptureQueriesContext(connection) as sliced:
        again = kpi_selectors.board(large, DAY, end)
    assert len(sliced) == 2 + 7 * 4
    assert {k: t.as_json() for k, t in again.fleets.items()} == {
        k: t.as_json() for k, t in board.fleets.items()
    }


def test_the_support_assistant_tells_the_host_and_no_one_else(host, planted):
    from support.assistant.diagnosis import Viewer, diagnose
    from support.assistant.topics import Topic

    def facts(user) -> list[str]:
        return diagnose(
            Topic.CHARGER_OFFLINE,
            viewer=Viewer.for_user(user),
            station_id=planted.station_id,
            now=DAY + timedelta(days=1),
        ).facts

    told = facts(host)
    assert any(f.startswith("Port 1 this month: 4 of 6 charge attempts completed") for f in told)
    assert any(f.startswith("Port 2 this month: 3 of 5 charge attempts completed") for f in told)
    outsider = MembershipFactory().user
    assert not any("charge attempts" in f for f in facts(outsider))

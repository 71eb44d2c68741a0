"""Issue 45 item 4: one charger's impossible reading never stops power allocation elsewhere.

Readings are bounded at the door (chargers.ocpp.readings): a value no charger can report is
answered as usual, kept as sent (Logs, MeterValue.raw_value) without a number, left out of power
and energy, and noted on the charger. Every periodic power sweep isolates each property."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.messagelog.log import writer
from chargers.models import Charger, ChargingSession, MeterValue, OcppMessage
from chargers.ocpp.readings import implausible_in, plausible, reading_value
from power import enforcement, services
from power.models import ConnectorAllocation, SiteBudget
from tests.factories import ChargerFactory, PropertyFactory
from tests.ocpp_client import OcppTestClient

A = Decimal


def test_a_reading_no_charger_can_report_is_stored_without_a_number():
    assert reading_value("Current.Import", "A", "100000000") is None
    assert reading_value("Current.Import", "A", "16.2") == A("16.2")
    assert reading_value("Power.Active.Import", "kW", "22") == A(22)
    assert reading_value("Power.Active.Import", "kW", "900000") is None
    assert reading_value("Power.Active.Import", "W", "900000") == A(900000)
    assert reading_value("SoC", "Percent", "180") is None
    # Energy registers are bounded by their column only (a register grows for years).
    assert reading_value("Energy.Active.Import.Register", "Wh", "100000000") == A(100000000)
    assert plausible("Voltage", "V", A(230)) and not plausible("Voltage", "kV", A(400))


def test_the_impossible_readings_of_both_versions_are_named():
    v16 = {
        "connectorId": 1,
        "meterValue": [
            {
                "timestamp": "2026-11-20T10:00:00Z",
                "sampledValue": [
                    {"value": "100000000", "measurand": "Current.Import", "unit": "A"},
                    {"value": "16", "measurand": "Current.Import", "unit": "A"},
                ],
            }
        ],
    }
    v201 = {
        "meterValue": [
            {
                "timestamp": "2026-11-20T10:00:00Z",
                "sampledValue": [
                    {"value": 1e8, "measurand": "Current.Import", "unitOfMeasure": {"unit": "A"}}
                ],
            }
        ]
    }
    assert implausible_in(v16) == ["Current.Import 100000000 A"]
    assert implausible_in(v201) == ["Current.Import 100000000.0 A"]
    assert implausible_in({"transactionData": "nonsense"}) == []


def _site(*, limit: int = 32):
    prop = PropertyFactory()
    SiteBudget.objects.create(property=prop, limit_a=A(limit), phases=3)
    charger = ChargerFactory(property=prop)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=charger.pk * 10 + 1,
        id_tag="TAG",
        started_at=timezone.now() - timedelta(minutes=5),
        meter_start_wh=0,
    )
    return prop, session


@pytest.mark.django_db
def test_an_impossible_reading_stored_earlier_is_left_out_and_other_sites_allocate():
    """A row written before the door was bounded (or by any other path) overflowed the
    allocation's measured_a and stopped the sweep at the first site."""
    bad_prop, bad = _site()
    good_prop, good = _site()
    assert bad_prop.organization_id != good_prop.organization_id
    MeterValue.objects.create(
        charger=bad.charger,
        session=bad,
        connector_id=1,
        timestamp=timezone.now(),
        measurand="Current.Import",
        phase="L1",
        unit="A",
        value=A(100000000),
        raw_value="100000000",
    )
    assert services.measured_current(bad.pk, phases=3, voltage=230) is None
    assert services.recompute_due(refresh=timedelta(seconds=10)) == 2
    assert ConnectorAllocation.objects.get(session=good).limit_a == A(32)
    row = ConnectorAllocation.objects.get(session=bad)
    assert row.limit_a == A(32) and row.measured_a is None


@pytest.mark.django_db
def test_one_site_failing_never_stops_the_recompute_sweep_for_the_others(monkeypatch):
    first, _ = _site()
    second, session = _site()
    demands_for = services.demands_for

    def failing(property_id, site):
        if property_id == first.pk:
            raise RuntimeError("a broken site")
        return demands_for(property_id, site)

    monkeypatch.setattr(services, "demands_for", failing)
    assert services.recompute_due(refresh=timedelta(seconds=10)) == 1
    assert ConnectorAllocation.objects.get(session=session).limit_a == A(32)


@pytest.mark.django_db
def test_one_site_failing_never_stops_the_enforcement_sweep_for_the_others(monkeypatch):
    first, _ = _site()
    second, _ = _site()
    passed = []

    def site_pass(property_id, now=None):
        if property_id == first.pk:
            raise RuntimeError("a broken site")
        passed.append(property_id)
        return 1

    monkeypatch.setattr(enforcement, "site_pass", site_pass)
    assert enforcement.enforce_all() == 1
    assert passed == [second.pk]


@pytest.mark.django_db(transaction=True)
async def test_a_charger_reporting_100000000_a_is_answered_and_noted_and_its_site_allocates(
    charger, token
):
    client = OcppTestClient("CP-TEST-1")
    assert (await client.connect())[0]
    tx = (
        await client.result(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": "04A1B2C3",
                "meterStart": 1000,
                "timestamp": "2026-11-20T10:00:00Z",
            },
        )
    )["transactionId"]
    answer = await client.result(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {
                    "timestamp": "2026-11-20T10:10:00Z",
                    "sampledValue": [
                        {"value": "100000000", "measurand": "Current.Import", "unit": "A"},
                        {"value": "4500", "unit": "Wh"},
                    ],
                }
            ],
        },
    )
    assert answer == {}
    await writer.flush()
    await client.close()
    row = await MeterValue.objects.aget(measurand="Current.Import")
    assert row.value is None and row.raw_value == "100000000"
    assert (await MeterValue.objects.aget(measurand="Energy.Active.Import.Register")).value == 4500
    noted = await Charger.objects.aget(pk=charger.pk)
    assert noted.implausible_readings == 1
    assert noted.implausible_reading == "Current.Import 100000000 A"
    assert await OcppMessage.objects.filter(action="MeterValues", direction="in").aexists()

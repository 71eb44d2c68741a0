"""Part 2 block I: the running cost in an Updated's answer and in CostUpdated (I02), the final cost
in the Ended's answer (I03), the tariff text in the Authorize answer (I01), all from billing's one
pricing function (billing.services.session_cost: the session page's and the guest receipt's)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from billing import pricing
from billing.models import Rate, SessionCharge
from billing.services import rate_terms, session_cost
from chargers.models import ChargingSession, Command, DeviceVariable
from guest.models import GuestSession
from guest.receipts import receipt_context
from tests.bounds import GENEROUS_S

from .conftest import connect201, tx_event

pytestmark = pytest.mark.django_db(transaction=True)

T0, T1, T2 = "2026-11-20T10:00:00Z", "2026-11-20T10:30:00Z", "2026-11-20T11:00:00Z"


def _rate(prop, *, include: bool) -> Rate:
    return Rate.objects.create(
        property=prop,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.37"),
        time_price_per_hour=Decimal("0.50"),
        tax_percent=Decimal("19"),
        prices_include_tax=include,
    )


def _device_model(charger, **values: str) -> None:
    """TariffCostCtrlr variables as a NotifyReport stores them: name_instance=value."""
    for key, value in values.items():
        variable, instance = key.split("_")
        DeviceVariable.objects.create(
            charger=charger,
            component="TariffCostCtrlr",
            variable=variable,
            variable_instance=instance,
            value=value,
        )


async def _cost_now(session_pk: int):
    session = await ChargingSession.objects.select_related("charger__property").aget(pk=session_pk)
    return await sync_to_async(session_cost)(session)


async def _run_session(client, *, cost_updates: bool) -> tuple[dict, dict, dict]:
    """Started, Updated, Ended; answers a CostUpdated where one comes. Returns the Updated's
    answer, the CostUpdated's payload ({} when none came) and the Ended's answer."""
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, timestamp=T0, trigger="CablePluggedIn", wh=1000),
    )
    updated = await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", wh=6000),
    )
    cost_updated: dict = {}
    if cost_updates:
        call = await client.receive(timeout=GENEROUS_S)
        assert call[0] == 2 and call[2] == "CostUpdated", call
        cost_updated = call[3]
        await client.send([3, call[1], {}])
    else:
        # Nothing else is on the wire: no CostUpdated to a charger that does not show cost.
        assert await client.communicator.receive_nothing(timeout=1)
    ended = await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            2,
            timestamp=T2,
            trigger="EVDeparted",
            wh=11000,
            stopped_reason="EVDisconnected",
        ),
    )
    return updated, cost_updated, ended


@pytest.mark.parametrize("include", [False, True], ids=["tax-added", "tax-included"])
async def test_I02_FR_01_I03_FR_02_running_and_final_cost_come_from_billing_in_both_tax_modes(
    charger, prop, include, settings
):
    settings.OCPP_COST_UPDATE_INTERVAL = 0  # every Updated may prompt one
    await sync_to_async(_rate)(prop, include=include)
    await sync_to_async(_device_model)(charger, Enabled_Cost="true", Currency_="EUR")
    client = await connect201()
    updated, cost_updated, ended = await _run_session(client, cost_updates=True)
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")

    # The running total at the Updated: 1.00 + 5 kWh x 0.37 + 0.5 h x 0.50, tax per the mode.
    running = pricing.session_cost(
        await sync_to_async(lambda: rate_terms(Rate.objects.select_related("property").get()))(),
        pricing.SessionFacts(
            started_at=session.started_at,
            stopped_at=None,
            meter_start_wh=Decimal(1000),
            meter_stop_wh=None,
            samples=(
                pricing.Sample(
                    datetime(2026, 11, 20, 10, 30, tzinfo=UTC),
                    pricing.ENERGY_REGISTER,
                    Decimal(6000),
                ),
            ),
        ),
    )
    net = Decimal("1.00") + Decimal("1.85") + Decimal("0.25")
    expected_running = net if include else (net * Decimal("1.19")).quantize(Decimal("0.01"))
    assert running.total == expected_running
    assert Decimal(str(updated["totalCost"])) == running.total
    assert cost_updated["transactionId"] == "TX-1"
    assert Decimal(str(cost_updated["totalCost"])) == running.total

    # The final total is the receipt's and billing's stored charge, tax included.
    final = await _cost_now(session.pk)
    assert final.final and final.total > running.total
    assert Decimal(str(ended["totalCost"])) == final.total
    charge = await SessionCharge.objects.aget(session=session)
    assert charge.total == final.total
    gs = await GuestSession.objects.acreate(
        charger=charger,
        connector_id=1,
        email="guest@example.com",
        state=GuestSession.State.FINISHED,
        charging_session=session,
    )
    gs = await GuestSession.objects.select_related("charger__property", "token").aget(pk=gs.pk)
    receipt = await sync_to_async(receipt_context)(gs)
    assert receipt["cost"].total == Decimal(str(ended["totalCost"]))
    assert await Command.objects.filter(charger=charger, action="CostUpdated").acount() == 1
    await client.close()


async def test_a_late_updated_after_the_ended_gets_no_running_cost(charger, prop, settings):
    """An Updated queued while offline and delivered after the Ended: the Ended's answer carried
    the final cost; a running total for a finished session would mislead the screen."""
    settings.OCPP_COST_UPDATE_INTERVAL = 0
    await sync_to_async(_rate)(prop, include=False)
    await sync_to_async(_device_model)(charger, Enabled_Cost="true", Currency_="EUR")
    client = await connect201()
    _, _, ended = await _run_session(client, cost_updates=True)
    assert "totalCost" in ended
    late = await client.result(
        "TransactionEvent",
        tx_event("Updated", 3, timestamp=T1, trigger="MeterValuePeriodic", wh=7000, offline=True),
    )
    assert "totalCost" not in late
    assert await client.communicator.receive_nothing(timeout=1)  # and no CostUpdated
    await client.close()


@pytest.mark.parametrize(
    "model",
    [{}, {"Enabled_Cost": "false", "Available_Cost": "true"}],
    ids=["no-device-model", "cost-disabled"],
)
async def test_I02_I03_no_cost_to_a_charger_that_shows_none(charger, prop, model, settings):
    settings.OCPP_COST_UPDATE_INTERVAL = 0
    await sync_to_async(_rate)(prop, include=False)
    await sync_to_async(_device_model)(charger, **model)
    client = await connect201()
    updated, _none, ended = await _run_session(client, cost_updates=False)
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    if model:  # it said it shows no cost: none computed, running or final (I02/I03 presuppose it)
        assert "totalCost" not in updated and "totalCost" not in ended
    else:  # unreported: the answers carry it (I03.FR.02); a charger that cannot show it ignores it
        assert Decimal(str(updated["totalCost"])) > 0
        assert Decimal(str(ended["totalCost"])) == (await _cost_now(session.pk)).total
    assert not await Command.objects.filter(action="CostUpdated").aexists()
    await client.close()


async def test_I03_FR_04_a_session_without_a_rate_gets_no_cost(charger, settings):
    settings.OCPP_COST_UPDATE_INTERVAL = 0
    await sync_to_async(_device_model)(charger, Enabled_Cost="true")
    client = await connect201()
    updated, _none, ended = await _run_session(client, cost_updates=False)
    # No rate: the cost is not known, and an omitted totalCost does not say "free" (I03.FR.04).
    assert "totalCost" not in updated and "totalCost" not in ended
    await client.close()


async def test_I03_FR_04_a_rate_that_charges_nothing_is_a_free_session(charger, prop, settings):
    settings.OCPP_COST_UPDATE_INTERVAL = 0
    await Rate.objects.acreate(
        property=prop, valid_from=datetime(2026, 1, 1, tzinfo=UTC), energy_price_per_kwh=0
    )
    client = await connect201()
    updated, _none, ended = await _run_session(client, cost_updates=False)
    assert updated["totalCost"] == 0 and ended["totalCost"] == 0  # I03.FR.04: 0.00 is free
    await client.close()


async def test_a_charger_in_another_currency_gets_no_number(charger, prop, settings):
    settings.OCPP_COST_UPDATE_INTERVAL = 0
    await sync_to_async(_rate)(prop, include=False)
    await sync_to_async(_device_model)(charger, Enabled_Cost="true", Currency_="USD")
    client = await connect201()
    updated, _none, ended = await _run_session(client, cost_updates=False)
    assert "totalCost" not in updated and "totalCost" not in ended
    await client.close()


@pytest.mark.parametrize("shows", [True, False])
async def test_I01_FR_02_the_tariff_text_goes_to_a_charger_that_shows_tariffs(
    charger, prop, token, shows
):
    await sync_to_async(_rate)(prop, include=True)
    await sync_to_async(_device_model)(charger, Enabled_Tariff="true" if shows else "false")
    client = await connect201()
    answer = await client.result(
        "Authorize", {"idToken": {"idToken": "04A1B2C3", "type": "ISO14443"}}
    )
    assert answer["idTokenInfo"]["status"] == "Accepted"
    if shows:
        assert answer["idTokenInfo"]["personalMessage"] == {
            "format": "UTF8",
            "content": "0.37 EUR/kWh, 1.00 EUR per session, 0.50 EUR/h charging; incl. 19% tax",
        }
    else:
        assert "personalMessage" not in answer["idTokenInfo"]
    await client.close()


def _stay_guest(charger, prop):
    """A stay guest's session as the stay code starts one (guest.stays): the stay includes
    charging (the default StayPolicy), the guest's token names the reservation."""
    from datetime import timedelta

    from django.utils import timezone

    from authorization.models import Token
    from stays.models import Reservation

    now = timezone.now()
    reservation = Reservation.objects.create(
        property=prop,
        guest_name="Anna Smith",
        guest_email="anna@example.com",
        check_in=now - timedelta(days=1),
        check_out=now + timedelta(days=2),
    )
    token = Token.objects.create(
        uid="STAY0001",
        type=Token.Type.GUEST,
        organization=prop.organization,
        reservation=reservation,
    )
    return GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email="",
        token=token,
        id_tag=token.uid,
        state=GuestSession.State.STARTING,
    )


async def test_a_stay_that_includes_charging_shows_what_the_receipt_says(charger, prop, settings):
    settings.OCPP_COST_UPDATE_INTERVAL = 0
    await sync_to_async(_rate)(prop, include=False)
    gs = await sync_to_async(_stay_guest)(charger, prop)
    client = await connect201()
    await client.result(
        "TransactionEvent",
        tx_event("Started", 0, timestamp=T0, id_token="STAY0001", wh=1000),
    )
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    await GuestSession.objects.filter(pk=gs.pk).aupdate(charging_session=session)
    updated = await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", wh=6000),
    )
    ended = await client.result(
        "TransactionEvent",
        tx_event(
            "Ended",
            2,
            timestamp=T2,
            trigger="EVDeparted",
            wh=11000,
            stopped_reason="EVDisconnected",
        ),
    )
    # The rate would charge for it; the guest pays nothing, as the receipt says.
    assert (await _cost_now(session.pk)).total > 0
    assert updated["totalCost"] == 0 and ended["totalCost"] == 0
    await GuestSession.objects.filter(pk=gs.pk).aupdate(state=GuestSession.State.FINISHED)
    gs = await GuestSession.objects.select_related("charger__property", "token").aget(pk=gs.pk)
    receipt = await sync_to_async(receipt_context)(gs)
    assert receipt["stay"] is not None and receipt["cost"] is None
    await client.close()


@pytest.mark.parametrize(
    "values, cost, tariff",
    [
        ({}, None, None),
        ({("Available", "Cost"): "true"}, True, None),
        ({("Available", "Cost"): "true", ("Enabled", "Cost"): "false"}, False, None),
        ({("Enabled", "Cost"): "true", ("Available", "Cost"): "false"}, False, None),
        ({("Enabled", "Tariff"): "TRUE"}, None, True),
        # Appendix 3's TariffCostCtrl has no instances: one Enabled/Available for both.
        ({("Enabled", ""): "true"}, True, True),
        ({("Enabled", ""): "true", ("Enabled", "Cost"): "false"}, False, True),
    ],
)
def test_what_a_device_model_says_the_charger_shows(values, cost, tariff):
    from chargers.devices.device_model import shows

    assert shows(values, "Cost") is cost and shows(values, "Tariff") is tariff


def test_the_tariff_text_lists_only_what_the_rate_charges():
    terms = pricing.RateTerms(
        currency="eur",
        energy_price_per_kwh=Decimal("0.305"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        idle_fee_cap=Decimal("10"),
        tax_percent=Decimal("20.0"),
    )
    assert pricing.tariff_text(terms) == (
        "0.305 EUR/kWh, idle 0.10 EUR/min after 15 min (max 10.00 EUR); plus 20% tax"
    )


async def test_I02_FR_01_cost_updated_goes_out_at_most_once_per_interval(charger, prop, settings):
    settings.OCPP_COST_UPDATE_INTERVAL = 3600
    await sync_to_async(_rate)(prop, include=False)
    await sync_to_async(_device_model)(charger, Available_Cost="true")
    client = await connect201()
    updated, cost_updated, _ended = await _run_session(client, cost_updates=True)
    assert cost_updated["totalCost"] == updated["totalCost"]
    started = await client.result(
        "TransactionEvent",
        tx_event("Started", 0, "TX-3", timestamp=T0, wh=0, trigger="CablePluggedIn"),
    )
    # A Started's answer carries none (I02 and I03 name Updated and Ended).
    assert "totalCost" not in started
    first = await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, "TX-3", timestamp=T1, trigger="MeterValuePeriodic", wh=2000),
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CostUpdated" and call[3]["transactionId"] == "TX-3"
    assert call[3]["totalCost"] == first["totalCost"]
    await client.send([3, call[1], {}])
    again = await client.result(
        "TransactionEvent",
        tx_event("Updated", 2, "TX-3", timestamp=T2, trigger="MeterValuePeriodic", wh=4000),
    )
    assert again["totalCost"] > first["totalCost"]  # the answer carries every running total
    assert await client.communicator.receive_nothing(timeout=1)  # no second CostUpdated yet
    await client.close()


TEXT = "0.37 EUR/kWh, 1.00 EUR per session, 0.50 EUR/h charging; incl. 19% tax"


@pytest.mark.parametrize(
    "model, shown",
    [({"Enabled_Tariff": "true"}, True), ({"Available_Tariff": "false"}, False), ({}, False)],
    ids=["shows-tariffs", "tariff-not-available", "unreported"],
)
async def test_I01_FR_02_the_started_event_of_a_card_carries_the_sessions_tariff(
    charger, prop, token, model, shown
):
    """A Started that names an accepted card (the charger authorized it itself, no Authorize
    came first) carries the tariff the session is billed with, only to a charger that shows
    tariffs; an unreported device model is not a charger that shows them (I01.FR.02)."""
    await sync_to_async(_rate)(prop, include=True)
    await sync_to_async(_device_model)(charger, **model)
    client = await connect201()
    started = await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=1000)
    )
    assert started["idTokenInfo"]["status"] == "Accepted"
    if shown:
        assert started["idTokenInfo"]["personalMessage"] == {"format": "UTF8", "content": TEXT}
    else:
        assert "personalMessage" not in started["idTokenInfo"]
    await client.close()


async def test_I01_a_transaction_authorized_by_an_updated_event_gets_its_tariff(
    charger, prop, token, settings
):
    """The shape of conformance case TC_I_01: the transaction's first event is an Updated with
    triggerReason Authorized and the card; its answer carries the tariff, the periodic Updated
    events the running cost, and the Ended no personal message (nothing left to choose)."""
    settings.OCPP_COST_UPDATE_INTERVAL = 3600
    await sync_to_async(_rate)(prop, include=True)
    await sync_to_async(_device_model)(charger, Enabled_Tariff="true", Enabled_Cost="true")
    client = await connect201()
    authorized = await client.result(
        "TransactionEvent", tx_event("Updated", 0, timestamp=T0, id_token="04A1B2C3")
    )
    assert authorized["idTokenInfo"] == {
        "status": "Accepted",
        "personalMessage": {"format": "UTF8", "content": TEXT},
    }
    periodic = await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", wh=5000),
    )
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CostUpdated" and call[3]["totalCost"] == periodic["totalCost"]
    await client.send([3, call[1], {}])
    ended = await client.result(
        "TransactionEvent",
        tx_event("Ended", 2, timestamp=T2, id_token="04A1B2C3", wh=9000, trigger="StopAuthorized"),
    )
    assert "personalMessage" not in ended["idTokenInfo"]
    assert Decimal(str(ended["totalCost"])) > Decimal(str(periodic["totalCost"]))
    await client.close()


async def test_I06_FR_01_a_rate_changed_during_the_session_changes_neither_price_nor_text(
    charger, prop, token, settings
):
    """I06.FR.01: the CSMS checks for updated tariff information at each Updated. A session is
    billed with the price version of its start (billing.price_shown), so a rate changed during
    it is no update for it: no updatedPersonalMessage (I06.FR.02 does not apply), and the
    running total stays priced with the rate the driver was shown."""
    from django.utils import timezone

    settings.OCPP_COST_UPDATE_INTERVAL = 3600
    await sync_to_async(_rate)(prop, include=True)
    await sync_to_async(_device_model)(charger, Enabled_Tariff="true", Enabled_Cost="true")
    client = await connect201()
    started = await client.result(
        "TransactionEvent", tx_event("Started", 0, timestamp=T0, id_token="04A1B2C3", wh=1000)
    )
    assert started["idTokenInfo"]["personalMessage"]["content"] == TEXT
    session = await ChargingSession.objects.aget(charger=charger, ocpp_transaction_id="TX-1")
    before = await _cost_now(session.pk)
    await Rate.objects.acreate(
        property=prop, valid_from=timezone.now(), energy_price_per_kwh=Decimal("0.99")
    )
    updated = await client.result(
        "TransactionEvent",
        tx_event("Updated", 1, timestamp=T1, trigger="MeterValuePeriodic", wh=6000),
    )
    assert "updatedPersonalMessage" not in updated
    after = await _cost_now(session.pk)
    energy = next(line for line in after.lines if line["kind"] == "energy")
    assert energy["unit_price"] == Decimal("0.37")  # the price version of the start, not 0.99
    assert Decimal(str(updated["totalCost"])) == after.total != before.total
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CostUpdated" and call[3]["totalCost"] == updated["totalCost"]
    await client.send([3, call[1], {}])
    await client.close()

"""Issue 17: the session page shows only this session's decisions, a meter chart with a kWh and a
kW axis that refreshes while charging (the meter fragment), the price so far and the cost page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from authorization.models import AuthorizationDecision
from chargers.models import ChargingSession, MeterValue

pytestmark = pytest.mark.django_db


def _decision(site, *, at, uid=None, context="local", connector=None, reason="accepted_local"):
    d = AuthorizationDecision.objects.create(
        uid=uid or site.session.id_tag,
        uid_normalized=uid or site.session.id_tag,
        organization=site.org,
        station_id=site.charger.station_id,
        context=context,
        status="Accepted",
        reason=reason,
        step=13,
        message=f"decision {reason}",
        connector_id=connector,
    )
    AuthorizationDecision.objects.filter(pk=d.pk).update(created_at=at)
    return d.pk


def test_only_this_sessions_decisions_are_listed(client, site):
    now = timezone.now()
    first = site.session
    ChargingSession.objects.filter(pk=first.pk).update(
        received_start_at=now - timedelta(minutes=8), received_stop_at=now - timedelta(minutes=6)
    )
    second = ChargingSession.objects.create(
        charger=site.charger,
        connector_id=1,
        transaction_id=first.transaction_id + 1,
        id_tag=first.id_tag,
        started_at=now - timedelta(minutes=3),
        meter_start_wh=0,
        status="active",
    )
    ChargingSession.objects.filter(pk=second.pk).update(
        received_start_at=now - timedelta(minutes=3)
    )
    earlier = _decision(
        site, at=now - timedelta(minutes=8, seconds=5)
    )  # the first session's Authorize
    own = _decision(site, at=now - timedelta(minutes=3, seconds=4))
    own_start = _decision(
        site, at=now - timedelta(minutes=3), context="start_transaction", connector=1
    )
    other_port = _decision(
        site, at=now - timedelta(minutes=3), context="start_transaction", connector=2
    )
    other_card = _decision(site, at=now - timedelta(minutes=3), uid="SOMEONE")
    client.force_login(site.viewer)
    shown = [
        d.pk
        for d in client.get(reverse("chargers:session-detail", args=[second.pk])).context[
            "decisions"
        ]
    ]
    assert shown == [own, own_start]
    assert earlier not in shown and other_port not in shown and other_card not in shown
    shown_first = [
        d.pk
        for d in client.get(reverse("chargers:session-detail", args=[first.pk])).context[
            "decisions"
        ]
    ]
    assert earlier in shown_first and own not in shown_first


def test_chart_has_a_kwh_axis_and_a_kw_axis_in_the_property_zone(client, site):
    site.prop.timezone = "Asia/Tokyo"  # +9 h, no daylight saving
    site.prop.save()
    client.force_login(site.owner)
    response = client.get(reverse("chargers:session-detail", args=[site.session.pk]))
    body = response.content.decode()
    assert 'class="axis-left"' in body and 'class="axis-right"' in body
    assert ">kWh</text>" in body and ">kW</text>" in body
    chart = response.context["chart"]
    energy, power = chart.series
    assert (energy.unit, power.unit) == ("kWh", "kW")
    assert (
        6 <= energy.max_value <= 10 and 7 <= power.max_value <= 10
    )  # 6 kWh and 7 kW, each its own scale
    first_meter = (
        MeterValue.objects.filter(session=site.session).order_by("timestamp").first().timestamp
    )
    tokyo = timezone.localtime(first_meter, timezone=__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
    assert chart.x_ticks[0][1] == tokyo.strftime("%H:%M")
    assert reverse("billing:session-cost", args=[site.session.pk]) in body


def test_meter_fragment_is_live_while_charging_and_carries_the_price(client, site):
    from billing.models import Rate

    Rate.objects.create(
        property=site.prop,
        charger=None,
        valid_from=timezone.now() - timedelta(days=2),
        energy_price_per_kwh=Decimal("0.50"),
        connection_fee=Decimal("0"),
    )
    now = timezone.now()
    active = ChargingSession.objects.create(
        charger=site.charger,
        connector_id=1,
        transaction_id=424242,
        id_tag=site.token.uid,
        token=site.token,
        started_at=now - timedelta(minutes=20),
        meter_start_wh=0,
        status="active",
    )
    MeterValue.objects.create(
        charger=site.charger,
        session=active,
        connector_id=1,
        timestamp=now - timedelta(minutes=10),
        unit="Wh",
        value=Decimal(2000),
    )
    client.force_login(site.viewer)
    page = client.get(reverse("chargers:session-detail", args=[active.pk])).content.decode()
    assert 'data-live="1"' in page and "chargers/session.js" in page
    url = reverse("chargers:session-meter", args=[active.pk])
    first = client.get(url)
    assert first["Cache-Control"] == "no-store"
    assert "2.000 kWh" in first.content.decode() and "so far" in first.content.decode()
    # A new reading arrives: the next poll shows it, with its power, and the price follows.
    MeterValue.objects.create(
        charger=site.charger,
        session=active,
        connector_id=1,
        timestamp=now - timedelta(minutes=1),
        unit="Wh",
        value=Decimal(4000),
    )
    MeterValue.objects.create(
        charger=site.charger,
        session=active,
        connector_id=1,
        timestamp=now - timedelta(minutes=1),
        unit="kW",
        measurand="Power.Active.Import",
        value=Decimal("11"),
    )
    second = client.get(url)
    body = second.content.decode()
    assert "4.000 kWh" in body and "11.0 kW now" in body
    assert (
        second.context["price"]["currency"] == site.prop.currency
        and second.context["price"]["total"] > 0
    )
    assert 'class="session-price"' in body
    # Once stopped the fragment stops asking for refreshes.
    ChargingSession.objects.filter(pk=active.pk).update(
        status="completed", stopped_at=now, meter_stop_wh=4000
    )
    assert 'data-live=""' in client.get(url).content.decode()


def test_meter_fragment_is_tenant_scoped(client, site, other):
    client.force_login(other.owner)
    assert client.get(reverse("chargers:session-meter", args=[site.session.pk])).status_code == 404
    client.logout()
    assert client.get(reverse("chargers:session-meter", args=[site.session.pk])).status_code == 302

"""Locations access settings, charger settings, the dashboard and password reset."""

import pytest
from django.core import mail
from django.urls import reverse

from chargers.models import Charger

pytestmark = pytest.mark.django_db


def test_location_access_settings_and_restricted_groups(client, site):
    client.force_login(site.manager)
    url = reverse("chargers:location-detail", args=[site.prop.pk])
    response = client.post(
        url, {"guest_charging_enabled": "on", "restricted_token_groups": [site.group.pk]}
    )
    assert response.status_code == 302
    site.prop.refresh_from_db()
    assert not site.prop.roaming_enabled and site.prop.guest_charging_enabled
    assert list(site.prop.restricted_token_groups.all()) == [site.group]
    body = client.get(url).content.decode()
    assert f"/billing/properties/{site.prop.pk}/rates/" in body and site.charger.station_id in body


def test_location_form_rejects_another_organizations_group(client, site, other):
    client.force_login(site.owner)
    url = reverse("chargers:location-detail", args=[site.prop.pk])
    response = client.post(
        url, {"roaming_enabled": "on", "restricted_token_groups": [other.group.pk]}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_charger_settings_change_access_mode(client, site):
    client.force_login(site.owner)
    response = client.post(
        reverse("chargers:charger-settings", args=[site.charger.station_id]),
        {
            "name": "Entrance",
            "access_mode": "private",
            "roaming_enabled": "unknown",
            "guest_charging_enabled": "false",
        },
    )
    assert response.status_code == 302
    charger = Charger.objects.get(pk=site.charger.pk)
    assert charger.access_mode == "private" and charger.guest_charging_enabled is False
    assert charger.roaming_enabled is None


def test_command_form_explains_missing_choices(client, site):
    client.force_login(site.owner)
    response = client.post(
        reverse("chargers:charger-command", args=[site.charger.station_id]),
        {"action": "RemoteStartTransaction"},
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Choose the token to start the session for." in body
    assert "Choose the connector to start." in body


def test_command_form_offers_own_cards_by_uid_and_label(client, site, other):
    client.force_login(site.owner)
    body = client.get(reverse("chargers:charger-detail", args=[site.charger.station_id]))
    html = body.content.decode()
    assert f">{site.token.uid} Reception</option>" in html
    assert other.token.uid not in html and site.msp_token.uid not in html


def test_command_to_an_offline_charger_says_so(client, site, transactional_db):
    client.force_login(site.owner)
    response = client.post(
        reverse("chargers:charger-command", args=[site.charger.station_id]),
        {"action": "ClearCache"},
        follow=True,
    )
    assert "was not sent: the charger is offline" in response.content.decode()


def test_dashboard_counts_and_energy(client, site, other):
    client.force_login(site.viewer)
    context = client.get(reverse("backoffice:dashboard")).context
    assert context["chargers_total"] == 1
    assert context["offline"] == 1 and len(context["faulted"]) == 1
    assert context["energy_30d"] == 7.0
    assert len(context["chart"].bars) == 30


def test_password_reset_sends_a_link(client, site, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(reverse("password_reset"), {"email": site.owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body


def test_login_page_and_wrong_password(client, site):
    response = client.post(reverse("login"), {"username": site.owner.username, "password": "nope"})
    assert response.status_code == 200
    assert 'value="owner@A.test"' in response.content.decode()


def test_dashboard_energy_today_and_30_days_are_the_charts_days(client, site, other):
    """Today's and the 30 days' energy are added up from the chart's local days: a session at
    00:30 in the viewer's zone (still yesterday in UTC) is today's, one 40 days ago is in neither,
    and another organization's session in neither."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.utils import timezone

    from backoffice.middleware import VIEWER_ZONE_KEY
    from chargers.models import ChargingSession

    zone = ZoneInfo("Pacific/Auckland")  # always ahead of UTC: local midnight is yesterday there
    local_midnight = timezone.localtime(timezone.now(), zone).replace(
        hour=0, minute=30, second=0, microsecond=0
    )
    today = local_midnight.date()
    already_today = (
        sum(  # the fixture's own session (7 kWh), when it fell on today there
            s.energy_wh
            for s in ChargingSession.objects.filter(charger=site.charger)
            if timezone.localtime(s.started_at, zone).date() == today
        )
        / 1000
    )

    def session(charger, n, started, wh):
        ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=700 + n,
            id_tag="E",
            started_at=started,
            stopped_at=started + timedelta(minutes=5),
            meter_start_wh=1000,
            meter_stop_wh=1000 + wh,
            status="completed",
        )

    session(site.charger, 1, local_midnight, 1500)
    session(site.charger, 2, local_midnight - timedelta(days=10), 2000)
    session(site.charger, 3, local_midnight - timedelta(days=40), 4000)
    session(other.charger, 4, local_midnight, 8000)
    client.force_login(site.viewer)
    session_store = client.session
    session_store[VIEWER_ZONE_KEY] = "Pacific/Auckland"
    session_store.save()
    context = client.get(reverse("backoffice:dashboard")).context
    assert context["zone_name"] == "Pacific/Auckland"
    assert context["energy_today"] == pytest.approx(1.5 + float(already_today))
    assert context["energy_30d"] == 7.0 + 1.5 + 2.0

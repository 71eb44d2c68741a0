"""The landing page /s/<station_id> and the entry form /s/: which prompt shows, for which state."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import ChargerFactory, PropertyFactory
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db


def test_available_charger_shows_price_and_start_form(client, guest_charger, rate):
    response = client.get(f"/s/{guest_charger.station_id}")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Continue to payment" in body
    assert "EUR 0.40 / kWh" in body
    assert "Connection fee" in body and "EUR 1.00" in body
    assert "first 10 min free" in body
    assert "21 %" in body
    assert "sandbox: test cards only" in body
    assert "Harbour Hotel" in body
    # The hold comes from the rate and the session ceiling, and is shown before paying.
    assert "We hold EUR 32.67 on your card" in body and "up to 60 kWh and 4 hours" in body


def test_a_processing_fee_the_guest_does_not_pay_is_not_shown(client, guest_charger, rate):
    rate.processing_fee_percent, rate.processing_fee_fixed = 1.4, 0.25
    rate.save()
    body = client.get(f"/s/{guest_charger.station_id}").content.decode()
    assert "Processing fee" not in body and "1.4" not in body


def test_trailing_slash_lands_too(client, guest_charger, rate):
    assert client.get(f"/s/{guest_charger.station_id}/").status_code == 200


def test_charger_without_a_price_cannot_be_started(client, guest_charger):
    body = client.get(f"/s/{guest_charger.station_id}").content.decode()
    assert "has not set a guest price" in body
    assert "Continue to payment" not in body


def test_connector_query_preselects_the_port(client, site, rate):
    make_online(ChargerFactory(property=site, station_id="HB-DUO"), ("Available", "Available"))
    body = client.get("/s/HB-DUO?c=2").content.decode()
    assert 'value="2"  checked' in body or 'value="2" checked' in body


def test_unknown_station_id_is_invalid_with_404_and_next_steps(client, guest_charger):
    response = client.get("/s/NOPE-99")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Station ID is Invalid" in body
    assert "case-sensitive, no extra spaces" in body
    assert "Contact support" in body


def test_lower_case_or_one_typo_lands_on_the_one_close_charger_and_says_so(
    client, guest_charger, rate
):
    for typed in ("hb-lot-01", "HB-Lot-0l", "HBLot-01"):
        response = client.get(f"/s/{typed}")
        assert response.status_code == 302 and response["Location"] == f"/s/HB-Lot-01?typed={typed}"
        body = client.get(response["Location"]).content.decode()
        assert f"You typed “{typed}”: this is HB-Lot-01" in body and "Continue to payment" in body
    response = client.get("/s/", {"station_id": "hb-lot-01"})
    assert response["Location"] == "/s/HB-Lot-01?typed=hb-lot-01"


def test_a_case_slip_lands_on_its_charger_even_with_close_neighbours(client, site, guest_charger):
    """Issue 35 item 14: neighbours one character away do not turn a case slip into a list."""
    for other in ("HB-Lot-02", "HB-Lot-03"):
        make_online(ChargerFactory(property=site, station_id=other))
    response = client.get("/s/", {"station_id": "hb-lot-01"})
    assert response["Location"] == "/s/HB-Lot-01?typed=hb-lot-01"


def test_two_close_chargers_are_offered_not_guessed(client, site, guest_charger):
    make_online(ChargerFactory(property=site, station_id="HB-Lot-02"))
    response = client.get("/s/hb-lot-0")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Station ID is Invalid" in body and "Did you mean" in body


def test_entry_form_trims_spaces_and_redirects(client, guest_charger):
    response = client.get("/s/", {"station_id": "  HB-Lot-01 \t"})
    assert response.status_code == 302
    assert response["Location"] == "/s/HB-Lot-01"


def test_entry_form_without_match_renders_invalid_with_404(client, guest_charger):
    response = client.get("/s/", {"station_id": "ZZ-Nothing-9"})
    assert response.status_code == 404
    body = response.content.decode()
    assert "Station ID is Invalid" in body
    assert "HB-Lot-01" not in body


def test_entry_form_page_renders(client, db):
    response = client.get("/s/")
    assert response.status_code == 200
    assert 'name="station_id"' in response.content.decode()


def test_suggestions_never_reveal_private_or_privately_owned_chargers(client, site):
    ChargerFactory(property=site, station_id="PRIV-001", access_mode="private")
    ChargerFactory(property=site, station_id="OWNR-001", ownership="private_owner")
    for typed in ("priv-001", "PRIV-002", "ownr-001"):
        body = client.get("/s/", {"station_id": typed}).content.decode()
        assert "Did you mean" not in body
        assert "PRIV-001" not in body and "OWNR-001" not in body


def test_unassigned_charger_is_invalid(client, db):
    ChargerFactory(property=None, station_id="LOOSE-1")
    assert client.get("/s/LOOSE-1").status_code == 404


def test_private_owner_prompt_links_location_access_and_hides_property(client, site):
    make_online(ChargerFactory(property=site, station_id="HOME-1", ownership="private_owner"))
    body = client.get("/s/HOME-1").content.decode()
    assert "Private Charger" in body
    assert "/s/help/location-access/" in body
    assert "Harbour Hotel" not in body
    assert "Continue to payment" not in body
    assert client.get("/s/help/location-access/").status_code == 200


def test_license_inactive_prompt(client, site):
    make_online(ChargerFactory(property=site, station_id="LIC-1", license_valid_until=None))
    make_online(
        ChargerFactory(
            property=site,
            station_id="LIC-2",
            license_valid_until=timezone.localdate() - timedelta(days=1),
        )
    )
    for station_id in ("LIC-1", "LIC-2"):
        body = client.get(f"/s/{station_id}").content.decode()
        assert "License inactive" in body
        assert "activated or renewed" in body


def test_private_not_setup_prompt(client, site):
    make_online(ChargerFactory(property=site, station_id="PRV-9", access_mode="private"))
    body = client.get("/s/PRV-9").content.decode()
    assert "Charger start failed - private charger not setup. Please contact site host" in body
    assert "request access" in body


def test_offline_charger_is_out_of_order_and_suggests_available_chargers_here(client, site):
    ChargerFactory(property=site, station_id="OFF-1")  # never connected
    make_online(ChargerFactory(property=site, station_id="ON-2"))
    make_online(ChargerFactory(property=site, station_id="ON-PRIV", access_mode="private"))
    make_online(ChargerFactory(property=PropertyFactory(), station_id="ELSEWHERE-1"))
    body = client.get("/s/OFF-1").content.decode()
    assert "Charger is Out of Order" in body
    assert "Try another nearby charger" in body
    assert "ON-2" in body and "Available" in body
    assert "ON-PRIV" not in body and "ELSEWHERE-1" not in body


def test_flagged_out_of_order_and_all_ports_faulted(client, site):
    make_online(ChargerFactory(property=site, station_id="OOO-1", out_of_order=True))
    make_online(ChargerFactory(property=site, station_id="OOO-2"), ("Faulted", "Unavailable"))
    for station_id in ("OOO-1", "OOO-2"):
        assert "Charger is Out of Order" in client.get(f"/s/{station_id}").content.decode()


def test_out_of_order_multi_port_lists_its_ports(client, site):
    make_online(ChargerFactory(property=site, station_id="OOO-3"), ("Faulted", "Unavailable"))
    body = client.get("/s/OOO-3").content.decode()
    assert "Ports of this station" in body and "Port 2" in body


def test_guest_charging_off_shows_not_allowed_from_the_authorization_engine(client, site):
    make_online(ChargerFactory(property=site, station_id="NOGUEST-1", guest_charging_enabled=False))
    body = client.get("/s/NOGUEST-1").content.decode()
    assert "Not allowed to use this charger" in body
    assert "turned off guest charging" in body
    assert "Continue to payment" not in body


def test_busy_ports_say_so_without_start_button(client, site, rate):
    make_online(ChargerFactory(property=site, station_id="BUSY-1"), ("Charging",))
    body = client.get("/s/BUSY-1").content.decode()
    assert "All ports are in use" in body
    assert "Continue to payment" not in body


def test_busy_charger_offers_the_free_ones_and_its_refresh_never_trips_the_lookup_limit(
    client, site, rate, settings
):
    from django.core.cache import cache

    cache.clear()
    settings.GUEST_LOOKUP_LIMIT_PER_MIN = 2
    make_online(ChargerFactory(property=site, station_id="BUSY-2"), ("Charging",))
    make_online(ChargerFactory(property=site, station_id="FREE-2"), ("Available",))
    body = client.get("/s/BUSY-2").content.decode()
    assert "Other chargers here" in body and 'href="/s/FREE-2"' in body
    assert 'data-ports-url="/s/BUSY-2/ports/"' in body
    for _ in range(5):  # the page's 20-second checks
        state = client.get("/s/BUSY-2/ports/")
        assert state.status_code == 200 and state.json()["any_free"] is False
    assert client.get("/s/BUSY-2").status_code == 200  # lookup 2 of 2: still allowed


def test_prompts_offer_contact_support_prefilled(client, site):
    make_online(ChargerFactory(property=site, station_id="LIC-3", license_valid_until=None))
    body = client.get("/s/LIC-3").content.decode()
    assert "/support/contact/?station_id=LIC-3&amp;prompt=License+inactive&amp;at=" in body


def test_landing_never_shows_owner_or_other_guest_data(client, guest_charger, rate, host):
    body = client.get(f"/s/{guest_charger.station_id}").content.decode()
    assert host.email not in body and host.username not in body
    assert guest_charger.property.organization.name not in body


def test_landing_page_has_a_phone_viewport(client, guest_charger, rate):
    assert (
        'name="viewport" content="width=device-width'
        in client.get(f"/s/{guest_charger.station_id}").content.decode()
    )


def test_each_port_says_how_many_kw_it_gives_where_the_host_entered_it(client, site, rate):
    """Issue 51 item 5: the landing names each port's power (phases × maximum current × the
    site's voltage, from Power › Connectors); a port without that data says nothing rather than
    a guess."""
    from power.models import ConnectorPower, SiteBudget

    charger = make_online(ChargerFactory(property=site, station_id="HB-KW"), ("Available",) * 2)
    SiteBudget.objects.create(property=site, limit_a=Decimal(63), voltage=230)
    ConnectorPower.objects.create(charger=charger, connector_id=1, phases=3, max_a=Decimal(16))
    body = client.get("/s/HB-KW").content.decode()
    assert "Port 1 · up to 11.0 kW" in body
    assert "Port 2 <span" in body and "Port 2 · up to" not in body

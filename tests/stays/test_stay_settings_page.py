"""The portal's stay settings: owners/managers edit a property's stay policy and add, sync and remove
its calendar feeds (a real HTTP server serves the calendar); each PMS integration has a sync page."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from stays.models import CalendarFeed, Listing, PmsIntegration, Reservation, StayPolicy, Unit
from tests.factories import MembershipFactory, PropertyFactory
from tests.stays.test_calendar_feed_sync import AIRBNB, ical_server  # noqa: F401  (fixture)

POLICY = {
    "charging": "included",
    "kwh_cap": "25",
    "grace_before_minutes": "30",
    "grace_after_minutes": "90",
    "check_in_time": "16:00",
    "check_out_time": "10:00",
    "shared_chargers": "",
}


@pytest.fixture
def site():
    prop = PropertyFactory(name="Lake Cabins", timezone="Europe/Amsterdam")
    cabin = Unit.objects.create(property=prop, name="Cabin 1", kind="cabin")
    return prop, cabin


def _login(client, prop, role):
    user = MembershipFactory(organization=prop.organization, role=role).user
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_a_manager_edits_the_stay_policy_and_a_viewer_only_reads_it(client, site):
    prop, _ = site
    _login(client, prop, "manager")
    page = client.get("/stays/properties/").content.decode()
    assert "Lake Cabins" in page and "Save stay policy" in page and "Included in the stay" in page
    response = client.post(f"/stays/properties/{prop.pk}/policy/", POLICY)
    assert response.status_code == 302 and response["Location"].endswith(f"#property-{prop.pk}")
    policy = StayPolicy.objects.get(property=prop)
    assert (
        policy.kwh_cap == Decimal("25")
        and policy.grace_before_minutes == 30
        and not policy.shared_chargers
    )
    assert policy.check_in_time.hour == 16
    # Billed at the rate, cap cleared.
    client.post(
        f"/stays/properties/{prop.pk}/policy/", {**POLICY, "charging": "billed", "kwh_cap": ""}
    )
    assert StayPolicy.objects.get(property=prop).charging == "billed"
    # A negative cap is refused in words, nothing changes.
    response = client.post(
        f"/stays/properties/{prop.pk}/policy/", {**POLICY, "kwh_cap": "-3"}, follow=True
    )
    assert "Enter a positive number of kWh" in response.content.decode()
    assert StayPolicy.objects.get(property=prop).charging == "billed"

    _login(client, prop, "viewer")
    page = client.get("/stays/properties/").content.decode()
    assert (
        "Save stay policy" not in page
        and "Billed at the property" in page
        and "Add calendar" not in page
    )
    assert client.post(f"/stays/properties/{prop.pk}/policy/", POLICY).status_code == 404
    assert StayPolicy.objects.get(property=prop).charging == "billed"


@pytest.mark.django_db
def test_another_organizations_property_and_unit_are_refused(client, site):
    prop, cabin = site
    other = PropertyFactory()
    other_unit = Unit.objects.create(property=other, name="Not yours")
    _login(client, prop, "owner")
    assert "Not yours" not in client.get("/stays/properties/").content.decode()
    assert client.post(f"/stays/properties/{other.pk}/policy/", POLICY).status_code == 404
    assert (
        client.post(
            f"/stays/properties/{other.pk}/calendars/", {"url": "https://example.com/a.ics"}
        ).status_code
        == 404
    )
    # Another property's unit on this property's form: not a choice, no feed.
    response = client.post(
        f"/stays/properties/{prop.pk}/calendars/",
        {"url": "https://example.com/a.ics", "unit": other_unit.pk},
        follow=True,
    )
    assert "Select a valid choice" in response.content.decode()
    foreign_feed = CalendarFeed.objects.create(
        property=other, name="Theirs", url="https://example.com/t.ics"
    )
    assert client.post(f"/stays/calendars/{foreign_feed.pk}/remove/").status_code == 404
    assert client.post(f"/stays/calendars/{foreign_feed.pk}/sync/").status_code == 404
    assert not StayPolicy.objects.exists() and list(CalendarFeed.objects.all()) == [foreign_feed]


@pytest.mark.django_db(transaction=True)
def test_a_calendar_is_added_to_a_unit_pulled_at_once_synced_and_removed(client, site, ical_server):  # noqa: F811
    folder, base = ical_server
    (folder / "cabin.ics").write_text(AIRBNB)
    prop, cabin = site
    _login(client, prop, "owner")
    with override_settings(MSP_URL_ALLOWLIST=[base.removeprefix("http://")]):
        response = client.post(
            f"/stays/properties/{prop.pk}/calendars/",
            {"name": "Airbnb – Cabin 1", "url": f"{base}/cabin.ics", "unit": cabin.pk},
            follow=True,
        )
        page = response.content.decode()
        assert (
            "Airbnb – Cabin 1: 2 bookings (2 new, 0 cancelled), 2 blocked ranges skipped." in page
        )
        feed = CalendarFeed.objects.get()
        assert feed.unit == cabin and feed.state == "ok"
        assert Reservation.objects.filter(calendar=feed, unit=cabin).count() == 2
        # The calendar server loses the file: the error is shown in words, reservations stay.
        (folder / "cabin.ics").unlink()
        page = client.post(f"/stays/calendars/{feed.pk}/sync/", follow=True).content.decode()
        assert (
            "The calendar server answered 404: the calendar no longer exists at this URL." in page
        )
        assert Reservation.objects.filter(status="confirmed").count() == 2
    # Removing the feed cancels its upcoming reservations (past ones stay as history).
    Reservation.objects.filter(calendar=feed).order_by("check_in").filter(
        pk=Reservation.objects.filter(calendar=feed).order_by("check_in").first().pk
    ).update(
        check_in=timezone.now() - timedelta(days=9), check_out=timezone.now() - timedelta(days=5)
    )
    page = client.post(f"/stays/calendars/{feed.pk}/remove/", follow=True).content.decode()
    assert "1 upcoming reservations from it cancelled" in page
    assert not CalendarFeed.objects.exists()
    assert sorted(Reservation.objects.values_list("status", flat=True)) == [
        "cancelled",
        "confirmed",
    ]


@pytest.mark.django_db
def test_a_feed_url_on_a_private_address_is_refused_in_words(client, site):
    prop, _ = site
    _login(client, prop, "owner")
    page = client.post(
        f"/stays/properties/{prop.pk}/calendars/", {"url": "https://10.0.0.5/cal.ics"}, follow=True
    ).content.decode()
    assert "addresses in private, loopback" in page and not CalendarFeed.objects.exists()


@pytest.mark.django_db
def test_each_integration_has_a_sync_page_with_state_counts_and_errors_in_words(client, site):
    prop, cabin = site
    integration = PmsIntegration.objects.create(
        organization=prop.organization,
        vendor="guesty",
        state="error",
        listings_count=2,
        reservations_count=5,
        last_synced_at=timezone.now(),
        failures=2,
        next_attempt_at=timezone.now() + timedelta(minutes=4),
        last_error="Guesty returned 401: the API credentials were revoked or are wrong. Enter new ones for this integration.",
    )
    mapped = Listing.objects.create(
        integration=integration, external_id="L-1", name="Lake cabin 1", unit=cabin
    )
    Listing.objects.create(integration=integration, external_id="L-2", name="Lake cabin 2")
    Reservation.objects.create(
        property=prop,
        unit=cabin,
        integration=integration,
        external_id="R-1",
        source="guesty",
        guest_name="Bo Lund",
        check_in=timezone.now(),
        check_out=timezone.now() + timedelta(days=2),
    )
    _login(client, prop, "viewer")
    page = client.get(f"/stays/integrations/{integration.pk}/").content.decode()
    assert "Guesty returned 401: the API credentials were revoked" in page
    assert (
        "2 (1 not mapped to a unit)" in page and "5 in the last sync" in page and "Bo Lund" in page
    )
    assert "after 2 failed tries" in page and "Sync now" not in page
    assert (
        f'href="/stays/integrations/{integration.pk}/"'
        in client.get("/stays/integrations/").content.decode()
    )
    _login(client, prop, "manager")
    assert "Sync now" in client.get(f"/stays/integrations/{integration.pk}/").content.decode()
    # A foreign unit in the mapping form changes nothing (it does not unmap either).
    foreign = Unit.objects.create(property=PropertyFactory(), name="Elsewhere")
    response = client.post(
        f"/stays/integrations/{integration.pk}/listings/{mapped.pk}/unit/",
        {"unit": foreign.pk, "back": "detail"},
    )
    assert (
        response.status_code == 302
        and response["Location"] == f"/stays/integrations/{integration.pk}/"
    )
    assert Listing.objects.get(pk=mapped.pk).unit == cabin
    other = PmsIntegration.objects.create(
        organization=PropertyFactory().organization, vendor="track"
    )
    assert client.get(f"/stays/integrations/{other.pk}/").status_code == 404


@pytest.mark.django_db
def test_a_manager_connects_guesty_and_replaces_a_revoked_key(client, site, monkeypatch):
    """The portal's Connect form (no network: Guesty's recorded answers through the adapter)."""
    from stays import views as stay_views
    from stays.services.pms import integration_credentials, pms_sync
    from tests.stays.test_pms_sync import GUESTY_LISTINGS, GUESTY_RESERVATIONS, _transport

    answers = {
        ("POST", "/oauth2/token"): (401, {"error": "invalid_client"}),
        ("GET", "/v1/listings"): (200, GUESTY_LISTINGS),
        ("GET", "/v1/reservations"): (200, GUESTY_RESERVATIONS),
    }
    seen: list = []
    monkeypatch.setattr(
        stay_views, "pms_sync", lambda **kw: pms_sync(client=_transport(answers, seen), **kw)
    )
    prop, _ = site
    user = _login(client, prop, "manager")
    assert "Connect and sync" in client.get("/stays/integrations/").content.decode()
    page = client.post(
        "/stays/integrations/add/",
        {
            "organization": prop.organization_id,
            "vendor": "guesty",
            "name": "Guesty – lake",
            "key": "cid-1",
            "secret": "old-secret",
            "webhook_secret": "whsec_abc",
        },
        follow=True,
    ).content.decode()
    integration = PmsIntegration.objects.get()
    assert (
        integration.organization_id == prop.organization_id and str(integration) == "Guesty – lake"
    )
    assert integration_credentials(integration) == {
        "client_id": "cid-1",
        "client_secret": "old-secret",
        "webhook_secret": "whsec_abc",
    }
    assert "old-secret" not in page and "cid-1" not in page  # write-only
    assert (
        "the first sync failed: Guesty returned 401" in page
        and "Replace the API credentials" in page
    )
    # New credentials: sealed, the back-off reset, the next sync works.
    answers[("POST", "/oauth2/token")] = (
        200,
        {"access_token": "tok", "token_type": "Bearer", "expires_in": 86400},
    )
    client.post(
        f"/stays/integrations/{integration.pk}/credentials/",
        {"key": "cid-1", "secret": "new-secret"},
    )
    integration.refresh_from_db()
    assert (
        integration_credentials(integration)["client_secret"] == "new-secret"
        and integration.failures == 0
    )
    page = client.post(
        f"/stays/integrations/{integration.pk}/sync/", {"back": "detail"}, follow=True
    ).content.decode()
    assert "2 listings" in page
    # Another organization, a viewer, an unknown vendor, Track without its address: refused, nothing stored.
    other = PropertyFactory()
    client.post(
        "/stays/integrations/add/",
        {"organization": other.organization_id, "vendor": "guesty", "secret": "x"},
    )
    client.post(
        "/stays/integrations/add/",
        {"organization": prop.organization_id, "vendor": "track", "key": "k", "secret": "s"},
    )
    assert PmsIntegration.objects.count() == 1
    _login(client, prop, "viewer")
    assert "Connect and sync" not in client.get("/stays/integrations/").content.decode()
    client.post(
        "/stays/integrations/add/",
        {"organization": prop.organization_id, "vendor": "guesty", "secret": "x"},
    )
    assert (
        client.post(
            f"/stays/integrations/{integration.pk}/credentials/", {"secret": "y"}
        ).status_code
        == 404
    )
    assert PmsIntegration.objects.count() == 1 and user is not None


@pytest.mark.django_db
def test_a_manager_disconnects_a_pms_and_its_upcoming_stays_end(client, site):
    """Disconnecting went through support (the page had no button)."""
    prop, cabin = site
    integration = PmsIntegration.objects.create(organization=prop.organization, vendor="guesty")
    Listing.objects.create(integration=integration, external_id="L-1", name="Cabin", unit=cabin)
    now = timezone.now()

    def stay(external_id, check_in, check_out):
        return Reservation.objects.create(
            property=prop,
            unit=cabin,
            integration=integration,
            external_id=external_id,
            source="guesty",
            check_in=check_in,
            check_out=check_out,
        )

    past = stay("R-past", now - timedelta(days=5), now - timedelta(days=3))
    upcoming = stay("R-next", now + timedelta(days=1), now + timedelta(days=3))
    url = f"/stays/integrations/{integration.pk}/remove/"
    _login(client, prop, "viewer")
    assert client.post(url).status_code == 404 and PmsIntegration.objects.exists()
    stranger = MembershipFactory(organization=PropertyFactory().organization).user
    client.force_login(stranger)
    assert client.post(url).status_code == 404 and PmsIntegration.objects.exists()
    _login(client, prop, "manager")
    assert "Disconnect" in client.get(f"/stays/integrations/{integration.pk}/").content.decode()
    answer = client.post(url, follow=True).content.decode()
    assert "disconnected" in answer and "1 upcoming reservations from it cancelled" in answer
    assert not PmsIntegration.objects.exists() and not Listing.objects.exists()
    upcoming.refresh_from_db()
    past.refresh_from_db()
    assert upcoming.status == "cancelled" and upcoming.integration_id is None
    assert past.status == "confirmed"  # history stays as it was

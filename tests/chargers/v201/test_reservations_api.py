"""Reservations and 2.0.1 state through the REST API: validation before sending, tenant scope."""

import pytest
from rest_framework.test import APIClient

from chargers.models import ChargingProfile, ConnectorReservation, VariableMonitor
from tests.factories import ChargerFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(host):
    client = APIClient()
    client.force_authenticate(host)
    return client


def test_reserve_now_with_a_bad_expiry_is_refused_before_sending(charger, api):
    response = api.post(
        "/api/v1/chargers/CP-TEST-1/reservations/",
        {"connector_id": 1, "id_tag": "04A1B2C3", "expires_at": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert response.status_code == 400
    assert not ConnectorReservation.objects.exists()


def test_reservations_profiles_and_monitors_are_listed_for_the_own_organization_only(charger, api):
    from django.utils import timezone

    ConnectorReservation.objects.create(
        charger=charger,
        reservation_id=5,
        id_tag="04A1B2C3",
        expires_at=timezone.now(),
        status="active",
    )
    ChargingProfile.objects.create(
        charger=charger,
        profile_id=1,
        stack_level=0,
        purpose="TxDefaultProfile",
        kind="Absolute",
        profile={},
    )
    VariableMonitor.objects.create(
        charger=charger,
        monitor_id=3,
        component="EVSE",
        variable="Power",
        type="Delta",
        value=1,
        severity=5,
    )
    assert [
        r["reservation_id"] for r in api.get("/api/v1/chargers/CP-TEST-1/reservations/").json()
    ] == [5]
    assert [
        p["profile_id"] for p in api.get("/api/v1/chargers/CP-TEST-1/charging-profiles/").json()
    ] == [1]
    assert [m["monitor_id"] for m in api.get("/api/v1/chargers/CP-TEST-1/monitors/").json()] == [3]
    assert api.get("/api/v1/chargers/CP-TEST-1/notices/").json() == []
    other = ChargerFactory(station_id="CP-ELSEWHERE")
    stranger = APIClient()
    stranger.force_authenticate(MembershipFactory(organization=other.property.organization).user)
    for path in ("reservations", "charging-profiles", "monitors", "notices"):
        assert stranger.get(f"/api/v1/chargers/CP-TEST-1/{path}/").status_code == 404
    reservation = ConnectorReservation.objects.get()
    assert (
        stranger.post(
            f"/api/v1/chargers/CP-TEST-1/reservations/{reservation.pk}/cancel/"
        ).status_code
        == 404
    )

"""Exclusions: the regulators' caps, the audit trail, their effect on uptime, and the API's
tenant scoping (POST /api/v1/exclusions/)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from reliability import services
from reliability.models import Exclusion, ExclusionAudit, PortEvent
from tests.factories import ChargerFactory, MembershipFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/exclusions/"
T0 = datetime(2026, 2, 2, 8, 0, tzinfo=UTC)


def body(**overrides):
    data = {
        "station_id": "CP-TEST-1",
        "connector_id": 1,
        "start": T0.isoformat(),
        "end": (T0 + timedelta(hours=2)).isoformat(),
        "reason": "grid_outage",
        "note": "utility feeder down",
    }
    data.update(overrides)
    return data


@pytest.fixture
def owner_client(api_client, host):
    api_client.force_authenticate(host)
    return api_client


def test_a_host_enters_an_exclusion_and_it_is_audited(owner_client, charger, host):
    response = owner_client.post(URL, body(), format="json")
    assert response.status_code == 201, response.data
    assert response.data["station_id"] == "CP-TEST-1"
    assert response.data["created_by"] == (host.email or host.username)
    exclusion = Exclusion.objects.get()
    (audit,) = ExclusionAudit.objects.filter(exclusion=exclusion)
    assert (audit.action, audit.by, audit.details["reason"]) == ("created", host, "grid_outage")
    withdrawn = owner_client.post(f"{URL}{exclusion.pk}/withdraw/")
    assert withdrawn.status_code == 200 and withdrawn.data["withdrawn_at"]
    assert list(ExclusionAudit.objects.order_by("id").values_list("action", flat=True)) == [
        "created",
        "withdrawn",
    ]


def test_vandalism_is_capped_at_ten_days_per_incident(owner_client, charger):
    ok = owner_client.post(
        URL, body(reason="vandalism", end=(T0 + timedelta(days=10)).isoformat()), format="json"
    )
    assert ok.status_code == 201
    over = owner_client.post(
        URL,
        body(reason="vandalism", end=(T0 + timedelta(days=10, seconds=1)).isoformat()),
        format="json",
    )
    assert over.status_code == 400
    assert "10 days" in str(over.data)
    refused = ExclusionAudit.objects.get(action="refused")
    assert refused.exclusion is None and "10 days" in refused.details["refusal"]


def test_planned_maintenance_is_capped_at_72_hours_a_year_per_port(owner_client, charger):
    def maintenance(start, hours, connector_id=1):
        return owner_client.post(
            URL,
            body(
                reason="planned_maintenance",
                connector_id=connector_id,
                start=start.isoformat(),
                end=(start + timedelta(hours=hours)).isoformat(),
            ),
            format="json",
        )

    assert maintenance(T0, 48).status_code == 201
    assert maintenance(T0 + timedelta(days=30), 24).status_code == 201
    over = maintenance(T0 + timedelta(days=60), 1)
    assert over.status_code == 400 and "0 hours are left for 2026" in str(over.data)
    # Another port has its own 72 hours; a charger-wide one counts for the busiest port.
    assert maintenance(T0, 10, connector_id=2).status_code == 201
    assert maintenance(T0 + timedelta(days=90), 1, connector_id=None).status_code == 400
    # A new year starts afresh.
    assert maintenance(datetime(2027, 1, 5, tzinfo=UTC), 72).status_code == 201


def test_an_exclusion_is_given_back_in_uptime(owner_client, charger):
    now = timezone.now()
    start = now - timedelta(hours=1)
    for at, state in (
        (start + timedelta(minutes=10), "Faulted"),
        (start + timedelta(minutes=20), "Available"),
    ):
        PortEvent.objects.create(
            charger=charger, connector_id=1, kind="status", at=at, status=state
        )
    before = services.port_uptime(charger, 1, start, now, now).uptime
    assert before.outage_seconds == 600 and before.excluded_seconds == 0
    response = owner_client.post(
        URL,
        body(
            connector_id=None,
            start=(start + timedelta(minutes=5)).isoformat(),
            end=(start + timedelta(minutes=15)).isoformat(),
        ),
        format="json",
    )
    assert response.status_code == 201
    after = services.port_uptime(charger, 1, start, now, now).uptime
    assert after.excluded_seconds == 300
    assert [o.excluded for o in after.outages] == [True, False]
    assert after.percent == pytest.approx((3600 - 300) / 3600 * 100, abs=0.001)


def test_other_organizations_exclusions_are_not_found(api_client, charger):
    other = ChargerFactory(station_id="CP-OTHER")
    theirs = Exclusion.objects.create(
        charger=other, start=T0, end=T0 + timedelta(hours=1), reason="grid_outage"
    )
    stranger = MembershipFactory(organization=other.property.organization).user
    outsider = MembershipFactory().user
    api_client.force_authenticate(outsider)
    assert api_client.get(f"{URL}{theirs.pk}/").status_code == 404
    assert api_client.post(f"{URL}{theirs.pk}/withdraw/").status_code == 404
    listed = api_client.get(URL).data
    assert (listed["results"] if isinstance(listed, dict) else listed) == []
    refused = api_client.post(URL, body(station_id="CP-OTHER"), format="json")
    assert refused.status_code == 400 and "Unknown charger" in str(refused.data)
    assert Exclusion.objects.count() == 1
    api_client.force_authenticate(stranger)
    assert api_client.get(f"{URL}{theirs.pk}/").status_code == 200


def test_a_viewer_reads_but_cannot_write(api_client, charger):
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    mine = Exclusion.objects.create(
        charger=charger, start=T0, end=T0 + timedelta(hours=1), reason="grid_outage"
    )
    api_client.force_authenticate(viewer)
    assert api_client.get(f"{URL}{mine.pk}/").status_code == 200
    assert api_client.post(URL, body(), format="json").status_code == 403
    assert api_client.post(f"{URL}{mine.pk}/withdraw/").status_code == 403
    assert Exclusion.objects.count() == 1 and Exclusion.objects.get().withdrawn_at is None


def test_anonymous_is_refused(api_client, charger):
    assert api_client.get(URL).status_code in (401, 403)
    assert api_client.post(URL, body(), format="json").status_code in (401, 403)

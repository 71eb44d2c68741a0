"""Exclusions: the regulators' caps, the audit trail, their effect on uptime, and the API's
tenant scoping (POST /api/v1/exclusions/)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from chargers.models import Connector
from reliability.models import Exclusion, ExclusionAudit, PortEvent
from reliability.services import uptime
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
def owner_client(api_client, host, charger):
    for port in (1, 2):  # an exclusion names one of the charger's ports
        Connector.objects.create(charger=charger, connector_id=port, status="Available")
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
    before = uptime.port_uptime(charger, 1, start, now, now).uptime
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
    after = uptime.port_uptime(charger, 1, start, now, now).uptime
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


def test_staff_delete_an_exclusion_and_the_deletion_is_audited(
    api_client, owner_client, charger, host
):
    created = owner_client.post(URL, body(), format="json")
    assert created.status_code == 201
    pk = created.data["id"]
    # The host withdraws; deleting is for staff only.
    refused = owner_client.delete(f"{URL}{pk}/")
    assert refused.status_code == 403 and Exclusion.objects.filter(pk=pk).exists()
    staff = MembershipFactory(organization=charger.property.organization).user
    staff.is_staff = True
    staff.save()
    api_client.force_authenticate(staff)
    assert api_client.delete(f"{URL}{pk}/").status_code == 204
    assert not Exclusion.objects.exists()
    actions = list(ExclusionAudit.objects.order_by("id").values_list("action", "by", "exclusion"))
    assert actions == [("created", host.pk, None), ("deleted", staff.pk, None)]
    deleted = ExclusionAudit.objects.get(action="deleted")
    assert deleted.details["reason"] == "grid_outage" and deleted.details["connector_id"] == 1


def test_staff_delete_exclusions_in_the_admin_audited(client, charger):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    rows = [
        Exclusion.objects.create(
            charger=charger, start=T0, end=T0 + timedelta(hours=1), reason="grid_outage"
        )
        for _ in range(2)
    ]
    client.force_login(admin_user)
    one = client.post(f"/admin/reliability/exclusion/{rows[0].pk}/delete/", {"post": "yes"})
    assert one.status_code == 302
    rest = client.post(
        "/admin/reliability/exclusion/",
        {"action": "delete_selected", "_selected_action": [rows[1].pk], "post": "yes"},
    )
    assert rest.status_code == 302
    assert not Exclusion.objects.exists()
    assert ExclusionAudit.objects.filter(action="deleted", by=admin_user).count() == 2

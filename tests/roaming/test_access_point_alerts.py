"""Issue 56 item 6: a national access point's feed whose oldest change has waited for the access
point's 2xx longer than its bound (60 s, DOT-NL) opens an alert through the organization's alert
rules (kind access_point_behind), delivered like every alert, and clears once it caught up."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from reliability.models import Alert, AlertRecipient, AlertRule
from reliability.services import alerts
from roaming import access_points
from roaming.models import AccessPointFeed, Delivery
from tests.factories import OrganizationFactory
from tests.roaming.test_access_points import feeds_url, loopback, nl_feed  # noqa: F401
from tests.roaming.test_api import api_for

pytestmark = pytest.mark.django_db

KIND = "access_point_behind"


def _org_with_feed_and_rule(email: str):
    org = OrganizationFactory()
    assert api_for(org).put(f"{feeds_url(org)}NL/", nl_feed(), format="json").status_code == 200
    AlertRule.objects.create(organization=org, kind=KIND, after_s=0, email=[email])
    AlertRecipient.objects.create(
        organization=org, email=email, key=f"k-{org.pk}", confirmed_at=timezone.now()
    )
    return org, AccessPointFeed.objects.get(organization=org).partner


def _waiting(partner, age_s: int) -> Delivery:
    delivery = Delivery.objects.create(
        partner=partner,
        module="locations",
        object_key="evse:1/X",
        method="PATCH",
        path="/NL/EVB/1/X",
        body={"status": "AVAILABLE"},
        next_attempt_at=timezone.now(),
    )
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_s)
    )
    return delivery


def test_a_feed_behind_its_bound_opens_one_alert_emailed_and_clears_when_accepted(loopback):  # noqa: F811
    org, partner = _org_with_feed_and_rule("ops@example.com")
    other, other_partner = _org_with_feed_and_rule("other@example.com")
    _waiting(other_partner, 30)  # within the bound: no alert for the other organization
    late = _waiting(partner, 95)

    assert access_points.freshness_alerts() == (1, 0)
    alert = Alert.objects.get()
    assert (alert.rule.organization_id, alert.charger_id, alert.subject) == (
        org.pk,
        None,
        "access point NL",
    )
    assert "1 change not yet accepted by the NL access point" in alert.details
    assert access_points.freshness_alerts() == (0, 0)  # one open alert per feed
    alerts.evaluate()  # the evaluation of the charger kinds leaves it alone
    assert Alert.objects.get().cleared_at is None
    # The charger rows of Needs attention are charger alerts only: this one is not among them.
    assert alerts.open_alerts_for(None) == []

    alerts.deliveries_send()
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (["ops@example.com"], "Access point feed behind: access point NL (opened)")
    ]
    assert "the oldest for 9" in mail.outbox[0].body

    Delivery.objects.filter(pk=late.pk).update(status=Delivery.Status.SENT)  # the 2xx came
    assert access_points.freshness_alerts() == (0, 1)
    assert Alert.objects.get().cleared_at is not None
    alerts.deliveries_send()
    assert mail.outbox[-1].subject == "Access point feed behind: access point NL (cleared)"


def test_a_feed_switched_off_clears_its_alert_and_without_a_rule_nothing_opens(loopback):  # noqa: F811
    org, partner = _org_with_feed_and_rule("ops@example.com")
    _waiting(partner, 120)
    assert access_points.freshness_alerts() == (1, 0)
    AccessPointFeed.objects.filter(organization=org).update(enabled=False)
    assert access_points.freshness_alerts() == (0, 1)

    AlertRule.objects.filter(organization=org).delete()
    AccessPointFeed.objects.filter(organization=org).update(enabled=True)
    assert access_points.freshness_alerts() == (0, 0)
    assert not Alert.objects.exists()

"""Pushed alert kinds (power_refused): opened by the app that sees the problem under every
enabled rule of the kind in the charger's organization, cleared by it, and left alone by the
evaluation of the other kinds."""

import pytest

from reliability.models import Alert, AlertRule
from reliability.services import alerts
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def test_a_reported_problem_opens_once_and_clears_when_resolved():
    charger = ChargerFactory()
    other = ChargerFactory()  # another organization, a rule of the same kind
    AlertRule.objects.create(
        organization=charger.property.organization, kind="power_refused", after_s=0
    )
    AlertRule.objects.create(
        organization=other.property.organization, kind="power_refused", after_s=0
    )
    opened = alerts.problem_report(
        kind="power_refused", charger_id=charger.pk, connector_id=1, details="Answered Rejected"
    )
    assert [(a.charger_id, a.connector_id, a.details) for a in opened] == [
        (charger.pk, 1, "Answered Rejected")
    ]
    again = alerts.problem_report(
        kind="power_refused", charger_id=charger.pk, connector_id=1, details="Answered Rejected"
    )
    assert again == []  # one open alert per problem
    alerts.evaluate()  # the evaluation of the other kinds leaves it open
    assert Alert.objects.get().cleared_at is None
    assert alerts.problem_resolved(kind="power_refused", charger_id=charger.pk, connector_id=1) == 1
    assert Alert.objects.get().cleared_at is not None
    assert alerts.problem_resolved(kind="power_refused", charger_id=charger.pk, connector_id=1) == 0


def test_without_a_rule_of_the_kind_no_alert_opens():
    charger = ChargerFactory()
    assert (
        alerts.problem_report(
            kind="power_refused", charger_id=charger.pk, connector_id=0, details="x"
        )
        == []
    )

"""Reliability writes done twice at once: a port's problem reported by two processes (or the
evaluation run by two workers), planned maintenance entered in three tabs, an exclusion withdrawn
twice. One open alert per problem with one delivery, the yearly cap kept, one audit row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from reliability.models import Alert, AlertDelivery, AlertRule, Exclusion, ExclusionAudit
from reliability.services import alerts, exclusions
from tests.concurrency import at_once
from tests.factories import ChargerFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]


def test_a_ports_problem_reported_four_times_at_once_is_one_open_alert_sent_once():
    charger = ChargerFactory()
    AlertRule.objects.create(
        organization=charger.property.organization,
        kind="power_refused",
        after_s=0,
        webhook_url="https://hooks.example.com/alerts",
    )
    report = lambda: alerts.problem_report(  # noqa: E731
        kind="power_refused", charger_id=charger.pk, connector_id=1, details="Answered Rejected"
    )
    opened = at_once(*[report] * 4)
    assert not [r for r in opened if isinstance(r, BaseException)], opened
    assert sum(len(r) for r in opened) == 1
    assert Alert.objects.filter(charger=charger, cleared_at__isnull=True).count() == 1
    assert AlertDelivery.objects.filter(event="opened").count() == 1


def test_planned_maintenance_entered_in_three_tabs_at_once_keeps_the_yearly_cap():
    charger = ChargerFactory()
    start = timezone.now().replace(month=1, day=10, hour=0, minute=0, second=0, microsecond=0)
    # 40 hours each: any one fits the 72 hours a year a port may exclude, two do not.
    enter = [
        lambda n=n: exclusions.exclusion_create(
            charger=charger,
            connector_id=None,
            start=start + timedelta(days=10 * n),
            end=start + timedelta(days=10 * n, hours=40),
            reason=Exclusion.Reason.PLANNED_MAINTENANCE,
        )
        for n in range(3)
    ]
    entered = at_once(*enter)
    assert sorted(type(r).__name__ for r in entered) == [
        "Exclusion",
        "ValidationError",
        "ValidationError",
    ]
    refused = next(r for r in entered if isinstance(r, ValidationError))
    assert "72 hours a year" in " ".join(refused.messages)
    assert Exclusion.objects.filter(charger=charger).count() == 1


def test_an_exclusion_withdrawn_twice_at_once_is_withdrawn_once():
    charger = ChargerFactory()
    now = timezone.now()
    exclusion = exclusions.exclusion_create(
        charger=charger,
        connector_id=None,
        start=now - timedelta(hours=3),
        end=now - timedelta(hours=1),
        reason=Exclusion.Reason.GRID_OUTAGE,
    )
    # Each request loads the exclusion itself, before either saves.
    pages = [Exclusion.objects.get(pk=exclusion.pk) for _ in range(2)]
    done = at_once(*[lambda p=p: exclusions.exclusion_withdraw(p) for p in pages])
    assert not [r for r in done if isinstance(r, BaseException)], done
    assert done[0].withdrawn_at == done[1].withdrawn_at
    assert ExclusionAudit.objects.filter(exclusion=exclusion, action="withdrawn").count() == 1

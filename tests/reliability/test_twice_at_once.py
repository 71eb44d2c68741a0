"""Reliability writes done twice at once: a port's problem reported by two processes (or the
evaluation run by two workers), planned maintenance entered in three tabs, an exclusion withdrawn
twice, two alert sweeps overlapping. One open alert per problem with one delivery, the yearly cap
kept, one audit row, one confirmation link mailed."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends import locmem
from django.utils import timezone

from reliability.models import (
    Alert,
    AlertDelivery,
    AlertRecipient,
    AlertRule,
    Exclusion,
    ExclusionAudit,
)
from reliability.services import alerts, exclusions, recipients
from reliability.tasks import alerts_task
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


# Two sweeps at once: a sweep that mails a link first waits (a while at most) for the other
# sweep to be over, so that both have read the links still to send before either notes one sent.
finished: list[int] = []


class OutboxWaitingForTheOtherSweep(locmem.EmailBackend):
    def send_messages(self, messages):
        deadline = time.monotonic() + 10
        while not finished and time.monotonic() < deadline:
            time.sleep(0.05)
        return super().send_messages(messages)


def test_a_confirmation_link_is_mailed_once_by_two_sweeps_at_once(settings):
    settings.EMAIL_BACKEND = f"{__name__}.OutboxWaitingForTheOtherSweep"
    finished.clear()
    charger = ChargerFactory()
    organization_id = charger.property.organization_id
    # Named before its link could be sent (a rule written by migration, a mail server away).
    AlertRule.objects.create(
        organization_id=organization_id, kind="faulted", after_s=60, email=["night@example.com"]
    )
    recipients.recipients_note(organization_id, ["night@example.com"])

    def sweep() -> int:
        try:
            return alerts_task()
        finally:
            finished.append(1)

    results = at_once(sweep, sweep)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert [m.to for m in mail.outbox] == [["night@example.com"]]
    recipient = AlertRecipient.objects.get(email="night@example.com")
    assert recipient.invited_at is not None and recipient.confirmed_at is None

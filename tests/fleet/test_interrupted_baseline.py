"""A baseline sweep claims a charger's application (queued) and commits; the worker is then
killed before any ChangeConfiguration went out. The application said "Queued" for ever: its
claim time was after the boot, and a queued one never counted as "never reached the charger", so
not even the next boot applied it. It is claimed again once it has been queued too long with
nothing sent to the charger since the claim."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import Charger, Command
from fleet.baselines import services as baselines
from fleet.models import Baseline, BaselineApplication
from tests.factories import ChargerFactory, PropertyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def booted() -> Charger:
    prop = PropertyFactory()
    Baseline.objects.create(
        organization=prop.organization, name="Acme", vendor="Acme", protocol="1.6"
    )
    return ChargerFactory(
        property=prop,
        vendor="Acme",
        model="A1",
        ocpp_version="1.6",
        connection_id="conn-1",
        last_seen_at=timezone.now(),
        registration_status=Charger.Registration.ACCEPTED,
        last_boot_at=timezone.now() - timedelta(minutes=1),
    )


def test_an_application_claimed_but_never_sent_is_claimed_again(booted):
    start = timezone.now()
    first = baselines.due_claim(limit=10, now=start)
    assert len(first) == 1  # ...and the worker dies here

    # Still in its time: a slow charger's dispatch may be running.
    assert baselines.due_claim(limit=10, now=start + timedelta(minutes=5)) == []
    again = baselines.due_claim(limit=10, now=start + baselines.QUEUED_STALE + timedelta(minutes=1))
    assert [d.application_id for d in again] == [first[0].application_id]
    assert BaselineApplication.objects.get().outcome == "queued"


def test_an_application_whose_calls_went_out_is_left_to_its_dispatch(booted):
    start = timezone.now()
    baselines.due_claim(limit=10, now=start)
    later = start + baselines.QUEUED_STALE + timedelta(minutes=1)
    # The dispatch is still talking to the charger (many settings, a slow charger).
    command = Command.objects.create(charger=booted, action="ChangeConfiguration", source="fleet")
    Command.objects.filter(pk=command.pk).update(created_at=later - timedelta(minutes=1))
    assert baselines.due_claim(limit=10, now=later) == []

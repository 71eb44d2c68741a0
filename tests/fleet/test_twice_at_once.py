"""Fleet work done twice at once: the beat's campaign step and baseline sweep run by two workers
(or a task redelivered while the first still runs), "Re-apply" pressed twice. Each charger gets
one UpdateFirmware per campaign and one baseline application per boot; a second request asks
again, never fails."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import Charger
from fleet.baselines import services as baselines
from fleet.campaigns import services as campaigns
from fleet.models import Baseline, BaselineApplication, Campaign, FirmwareRelease
from tests.concurrency import all_at_once
from tests.factories import ChargerFactory, PropertyFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]

CHARGERS = 10


def _online_chargers(prop, **fields) -> list[Charger]:
    now = timezone.now()
    return [
        ChargerFactory(
            property=prop,
            vendor="Acme",
            model="A1",
            connection_id=f"conn-{n}",
            last_seen_at=now,
            **fields,
        )
        for n in range(CHARGERS)
    ]


def _release(prop) -> FirmwareRelease:
    return FirmwareRelease.objects.create(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        model="A1",
        location="https://fw.example/a1.bin",
        sha256="0" * 64,
    )


def _draft(prop, release):
    return campaigns.campaign_create(
        organization=prop.organization,
        name="2.0 everywhere",
        release=release,
        selection=campaigns.Selection(vendor="Acme"),
        canary_share=1.0,
        wave_size=CHARGERS,
    )


def test_a_campaign_created_twice_at_once_is_one_draft():
    prop = PropertyFactory()
    _online_chargers(prop)
    release = _release(prop)
    drafts = all_at_once(*[lambda: _draft(prop, release)] * 2)
    # A second draft over the same chargers, started too, sent each a second UpdateFirmware.
    assert drafts[0].pk == drafts[1].pk
    assert Campaign.objects.filter(organization=prop.organization).count() == 1


def test_a_campaign_stepped_by_two_workers_at_once_sends_each_charger_one_update():
    prop = PropertyFactory()
    _online_chargers(prop)
    campaign = _draft(prop, _release(prop))
    campaigns.campaign_transition(campaign_id=campaign.pk, action="start")
    claimed = all_at_once(*[lambda: campaigns.campaign_step(campaign_id=campaign.pk)] * 2)
    # Each list is dispatched as UpdateFirmware after the step commits: an id in both lists
    # would be a charger told twice (the campaign's row lock makes the second step wait and
    # find them sent).
    every = claimed[0] + claimed[1]
    assert len(every) == CHARGERS and len(set(every)) == CHARGERS


@pytest.fixture
def booted():
    prop = PropertyFactory()
    baseline = Baseline.objects.create(
        organization=prop.organization, name="Acme", vendor="Acme", protocol="1.6"
    )
    chargers = _online_chargers(
        prop,
        ocpp_version="1.6",
        registration_status=Charger.Registration.ACCEPTED,
        last_boot_at=timezone.now() - timedelta(minutes=1),
    )
    return baseline, chargers


def test_a_baseline_sweep_run_by_two_workers_at_once_claims_each_boot_once(booted):
    baseline, _ = booted
    claims = all_at_once(*[lambda: baselines.due_claim(limit=50)] * 2)
    every = [due.application_id for due in claims[0] + claims[1]]
    # Each claim is sent (ChangeConfiguration, perhaps a Reset): one per charger and boot.
    assert len(every) == CHARGERS and len(set(every)) == CHARGERS
    assert BaselineApplication.objects.filter(baseline=baseline).count() == CHARGERS


def test_reapply_pressed_twice_at_once_asks_once_per_charger_and_fails_neither(booted):
    baseline, _ = booted
    Baseline.objects.filter(pk=baseline.pk).update(apply_on_boot=False)
    asked = all_at_once(*[lambda: baselines.apply_request(baseline=baseline)] * 2)
    assert asked == [CHARGERS, CHARGERS]
    rows = BaselineApplication.objects.filter(baseline=baseline)
    assert rows.count() == CHARGERS and not rows.filter(requested_at__isnull=True).exists()
    # Four sweeps at once take every asked application once between them (none left for later:
    # a sweep locking the joined baseline and charger rows too held rows it then skipped).
    claimed = all_at_once(*[lambda: baselines.due_claim(limit=50)] * 4)
    assert sorted(d.application_id for claims in claimed for d in claims) == sorted(
        rows.values_list("pk", flat=True)
    )

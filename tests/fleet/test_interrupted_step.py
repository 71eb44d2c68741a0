"""A campaign step claims its chargers (marked sent) and commits; the worker is then killed, or
the dispatch fails, before UpdateFirmware went out. Those chargers never got the update: they
are not failed an hour later for "no report" (which halted the campaign over chargers that were
never asked), they go again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import Command
from fleet.campaigns import services as campaigns
from fleet.models import Campaign, CampaignTarget, FirmwareRelease
from tests.factories import ChargerFactory, PropertyFactory


@pytest.fixture
def campaign():
    prop = PropertyFactory()
    for n in range(3):
        ChargerFactory(
            property=prop,
            vendor="Acme",
            model="A1",
            connection_id=f"conn-{n}",
            last_seen_at=timezone.now() + timedelta(days=1),  # online throughout the test
        )
    release = FirmwareRelease.objects.create(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        model="A1",
        location="https://fw.example/a1.bin",
        sha256="0" * 64,
    )
    campaign = campaigns.campaign_create(
        organization=prop.organization,
        name="2.0 everywhere",
        release=release,
        selection=campaigns.Selection(vendor="Acme"),
        canary_share=1.0,
        wave_size=3,
        max_failures=1,
    )
    campaigns.campaign_transition(campaign_id=campaign.pk, action="start")
    return campaign


@pytest.mark.django_db
def test_chargers_claimed_but_never_sent_their_update_go_again(campaign):
    start = timezone.now()
    claimed = campaigns.campaign_step(campaign_id=campaign.pk, now=start)
    assert len(claimed) == 3
    # The dispatch sent the first charger its update, then the worker was killed.
    first = CampaignTarget.objects.select_related("charger").get(pk=claimed[0])
    Command.objects.create(
        charger=first.charger,
        action="UpdateFirmware",
        source="fleet",
        status="completed",
        response={},
    )

    again = campaigns.campaign_step(campaign_id=campaign.pk, now=start + timedelta(minutes=11))

    # Before: nothing until the report timeout, then all three failed "No report for 3600 s."
    # and the campaign halted. Now the two never asked go again; the one asked is followed.
    assert sorted(again) == sorted(claimed[1:])
    targets = {t.pk: t for t in CampaignTarget.objects.filter(campaign=campaign)}
    assert all(t.status == "sent" for t in targets.values())
    assert "interrupted" in targets[claimed[1]].events.order_by("-id").first().details
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING


@pytest.mark.django_db
def test_a_claim_younger_than_the_bound_is_left_to_its_dispatch(campaign):
    start = timezone.now()
    claimed = campaigns.campaign_step(campaign_id=campaign.pk, now=start)
    # A dispatch still running (a slow charger): nothing goes twice.
    assert campaigns.campaign_step(campaign_id=campaign.pk, now=start + timedelta(minutes=2)) == []
    assert set(CampaignTarget.objects.filter(pk__in=claimed).values_list("status", flat=True)) == {
        "sent"
    }

"""A charger takes one firmware update at a time: a campaign whose chargers wait for, or are
taking, another campaign's update is not started (or resumed), and says which campaign holds
them; two campaigns started at once over the same chargers: one runs, the other is refused."""

from __future__ import annotations

import html

import pytest
from django.test import Client
from django.utils import timezone

from fleet.campaigns import services
from fleet.models import Campaign, CampaignTarget, FirmwareRelease
from tests.concurrency import at_once, errors
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

SHA = "0" * 64


def _chargers(prop, count: int) -> list:
    return [
        ChargerFactory(
            property=prop,
            vendor="Acme",
            station_id=f"ACME-{n}",
            firmware_version="1.0",
            last_seen_at=timezone.now(),
        )
        for n in range(count)
    ]


def _draft(prop, name: str, chargers: list, version: str = "2.0") -> Campaign:
    release, _ = FirmwareRelease.objects.get_or_create(
        organization=prop.organization,
        vendor="Acme",
        model="",
        version=version,
        defaults={"location": "https://fw.example/a.bin", "sha256": SHA},
    )
    return services.campaign_create(
        organization=prop.organization,
        name=name,
        release=release,
        selection=services.Selection(charger_ids=tuple(c.pk for c in chargers)),
    )


@pytest.mark.django_db
def test_a_campaign_over_chargers_of_a_running_one_is_not_started_and_names_it():
    prop = PropertyFactory()
    c0, c1, c2, c3 = _chargers(prop, 4)
    spring = _draft(prop, "Spring rollout", [c0, c1, c2])
    hotfix = _draft(prop, "Hotfix", [c1, c2, c3])
    services.campaign_transition(campaign_id=spring.pk, action="start")
    owner = MembershipFactory(organization=prop.organization, role="owner").user
    web = Client()
    web.force_login(owner)
    page = web.post(f"/fleet/campaigns/{hotfix.pk}/start/", follow=True)
    said = [str(m) for m in page.context["messages"]]
    # Before, both ran: ACME-1 and ACME-2 were sent two UpdateFirmware, one per campaign.
    assert said == [
        f"ACME-1 and 1 other charger are already in the running campaign “Spring rollout” "
        f"(#{spring.pk}): a charger takes one firmware update at a time. Let that campaign "
        "finish or halt it, then start this one."
    ]
    assert html.escape(said[0], quote=False) in page.content.decode()
    assert Campaign.objects.get(pk=hotfix.pk).status == "draft"
    # Paused, the first campaign still holds its chargers (its pending updates go on resume).
    services.campaign_transition(campaign_id=spring.pk, action="pause")
    with pytest.raises(services.CampaignRefused, match="in the paused campaign"):
        services.campaign_transition(campaign_id=hotfix.pk, action="start")
    # Halted with nothing in flight, it holds none: the hotfix starts.
    services.campaign_transition(campaign_id=spring.pk, action="halt")
    services.campaign_transition(campaign_id=hotfix.pk, action="start")
    assert Campaign.objects.get(pk=hotfix.pk).status == "running"


@pytest.mark.django_db
def test_an_update_still_in_flight_holds_its_charger_even_after_its_campaign_halted():
    prop = PropertyFactory()
    (c0,) = _chargers(prop, 1)
    first = _draft(prop, "First", [c0])
    services.campaign_transition(campaign_id=first.pk, action="start")
    # The step sent ACME-0 the update; the charger has not reported its end yet.
    CampaignTarget.objects.filter(campaign=first).update(
        status=CampaignTarget.Status.SENT, sent_at=timezone.now()
    )
    services.campaign_transition(campaign_id=first.pk, action="halt")
    second = _draft(prop, "Second", [c0])
    with pytest.raises(services.CampaignRefused, match="ACME-0 is already in the halted"):
        services.campaign_transition(campaign_id=second.pk, action="start")
    # Once that update is decided, the charger is free.
    CampaignTarget.objects.filter(campaign=first).update(status=CampaignTarget.Status.FAILED)
    services.campaign_transition(campaign_id=second.pk, action="start")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("postgresql_only")
def test_campaigns_over_the_same_chargers_started_at_once_one_runs():
    prop = PropertyFactory()
    chargers = _chargers(prop, 3)
    # Each of another release (the campaigns' start locks no row they share but the organization).
    drafts = [_draft(prop, f"Rollout {n}", chargers, version=f"2.{n}") for n in range(8)]
    results = at_once(
        *[
            lambda campaign=campaign: services.campaign_transition(
                campaign_id=campaign.pk, action="start"
            )
            for campaign in drafts
        ]
    )
    refused = errors(results)
    # Before the organization's row lock, each start saw the others still drafts: several ran.
    assert len(refused) == 7, results
    assert all(isinstance(e, services.CampaignRefused) for e in refused), refused
    statuses = Campaign.objects.filter(pk__in=[d.pk for d in drafts]).values_list(
        "status", flat=True
    )
    assert sorted(statuses) == ["draft"] * 7 + ["running"]


@pytest.mark.django_db
def test_campaigns_left_running_side_by_side_send_a_charger_one_update_at_a_time():
    """Two campaigns over one charger that ran side by side before starts were refused (an
    upgrade from a version without that check): while the charger takes one's update, the
    other's waits, and says why."""
    prop = PropertyFactory()
    (charger,) = _chargers(prop, 1)
    charger.connection_id = "conn-1"  # connected: ready for its update
    charger.save(update_fields=["connection_id"])
    first, second = _draft(prop, "First", [charger]), _draft(prop, "Second", [charger], "3.0")
    Campaign.objects.filter(pk__in=[first.pk, second.pk]).update(status=Campaign.Status.RUNNING)
    assert len(services.campaign_step(campaign_id=first.pk)) == 1
    assert services.campaign_step(campaign_id=second.pk) == []
    waiting = CampaignTarget.objects.get(campaign=second)
    assert (waiting.status, waiting.reason) == ("pending", services.WAIT_OTHER_UPDATE)
    # The first's update done: the second's goes.
    CampaignTarget.objects.filter(campaign=first).update(status=CampaignTarget.Status.SUCCEEDED)
    assert services.campaign_step(campaign_id=second.pk) == [waiting.pk]

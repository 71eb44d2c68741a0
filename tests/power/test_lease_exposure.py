"""The lease rule (docs/power.md): a charger whose 0 A waiting lease will not hold through
`lease_margin()` (renewal refused, unanswered or late, or the charger offline) may let a session
it starts draw its safe default, so the allocation reserves that safe default before the lease
ends, and the others' limits leave room for it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import Charger, ChargingProfile, ChargingSession, Connector
from power import profiles, services
from power.models import ConnectorPower, SiteBudget
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


def _online(now, **fields):
    return ChargerFactory(
        connection_id="c",
        connected_at=now - timedelta(minutes=5),
        last_boot_at=now - timedelta(minutes=5),
        last_seen_at=now,
        registration_status=Charger.Registration.ACCEPTED,
        **fields,
    )


def _holds(charger, now, *, safe_a, lease_until):
    """What `charger` accepted: its safe default and its leases, valid until `lease_until`."""
    for profile in [
        profiles.safe_default(profiles.V16, safe_a, now=now),
        *profiles.leases(profiles.V16, 16, now=now, valid_to=lease_until),
    ]:
        body = profile.payload["csChargingProfiles"]
        ChargingProfile.objects.create(
            charger=charger,
            profile_id=body["chargingProfileId"],
            stack_level=body["stackLevel"],
            purpose=body["chargingProfilePurpose"],
            kind=body["chargingProfileKind"],
            valid_to=lease_until if "validTo" in body else None,
            profile={"chargingSchedule": [body["chargingSchedule"]]},
            updated_at=now - timedelta(minutes=1),
        )


@pytest.fixture
def site(settings):
    settings.POWER_LEASE_SECONDS = 120
    settings.POWER_COMMAND_TIMEOUT = 10
    settings.POWER_REFRESH_SECONDS = 10
    settings.POWER_SWEEP_SECONDS = 2
    settings.POWER_ENFORCE_SWEEP_SECONDS = 2
    now = timezone.now()
    charging = _online(now, station_id="A")
    idle = _online(now, station_id="B", property=charging.property)
    SiteBudget.objects.create(property=charging.property, limit_a=Decimal(20))
    for charger in (charging, idle):
        ConnectorPower.objects.create(charger=charger, connector_id=1, max_a=Decimal(16))
    _holds(charging, now, safe_a=10, lease_until=now + timedelta(seconds=100))
    ChargingSession.objects.create(
        charger=charging, connector_id=1, transaction_id=1, id_tag="T", started_at=now
    )
    return charging, idle, now


def _limit(charging, now) -> Decimal:
    [limit] = services.recompute(charging.property_id, now=now)
    return limit.limit_a


def test_the_margin_covers_an_answer_a_refresh_and_both_sweeps(site):
    assert services.lease_margin() == timedelta(seconds=10 + 10 + 2 + 2)


def test_an_idle_charger_under_a_lease_that_holds_leaves_the_whole_budget(site):
    charging, idle, now = site
    _holds(idle, now, safe_a=10, lease_until=now + timedelta(seconds=100))
    assert _limit(charging, now) == 16  # its car's maximum: B's new sessions start at 0 A


def test_a_lease_ending_within_the_margin_reserves_the_safe_default(site):
    charging, idle, now = site
    _holds(idle, now, safe_a=10, lease_until=now + timedelta(seconds=20))
    assert _limit(charging, now) == 10  # 20 A less B's safe default, before B's lease ends


def test_an_offline_charger_whose_lease_ended_is_reserved_its_safe_default(site):
    charging, idle, now = site
    _holds(idle, now - timedelta(minutes=5), safe_a=Decimal("7.5"), lease_until=now)
    Charger.objects.filter(pk=idle.pk).update(last_seen_at=now - timedelta(hours=1))
    assert _limit(charging, now) == Decimal("12.5")


def test_a_reconnected_charger_not_set_up_again_is_reserved(site):
    charging, idle, now = site
    _holds(idle, now, safe_a=10, lease_until=now + timedelta(seconds=100))
    # Its socket dropped and came back: nothing is known of what it holds until it is set up.
    Charger.objects.filter(pk=idle.pk).update(connected_at=now)
    assert _limit(charging, now) == 10


def test_an_unavailable_charger_cannot_draw_and_is_not_reserved(site):
    charging, idle, now = site
    _holds(idle, now, safe_a=10, lease_until=now + timedelta(seconds=5))
    Connector.objects.create(charger=idle, connector_id=1, status="Unavailable")
    assert _limit(charging, now) == 16


def test_a_charger_never_set_up_is_not_reserved(site):
    charging, _, now = site  # B holds no safe default: docs/power.md, "The windows that remain"
    assert _limit(charging, now) == 16


def test_a_lease_too_short_for_its_margin_is_reported_by_the_checks(settings):
    from power.checks import lease_outlasts_its_margin

    settings.POWER_COMMAND_TIMEOUT, settings.POWER_REFRESH_SECONDS = 10, 10
    settings.POWER_SWEEP_SECONDS = settings.POWER_ENFORCE_SWEEP_SECONDS = 2
    settings.POWER_LEASE_SECONDS = 120
    assert lease_outlasts_its_margin() == []
    settings.POWER_LEASE_SECONDS = 40
    assert [m.id for m in lease_outlasts_its_margin()] == ["power.W001"]

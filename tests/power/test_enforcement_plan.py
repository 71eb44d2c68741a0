"""power.enforcement.plan: what a pass would send, read from the rows. Only differences are
sent, decreases before increases, at most one profile per connector per interval (the newest
limit then), a refusal waits for its retry but not into the next session, and a charger that
reconnected is set up again."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.devices import commands
from chargers.models import Charger, ChargingProfile, ChargingSession, Command
from power import enforcement, profiles
from power.models import Circuit, ConnectorAllocation, ConnectorPower, SiteBudget
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(settings, monkeypatch):
    monkeypatch.setattr(enforcement, "_refused_until", {})  # per process: not from another test
    settings.POWER_PROFILE_MIN_INTERVAL_S = 3
    settings.POWER_REFUSED_RETRY_SECONDS = 300
    settings.POWER_LEASE_SECONDS = 120
    now = timezone.now()
    charger = ChargerFactory(
        connection_id="c1",
        connected_at=now - timedelta(seconds=60),
        last_boot_at=now - timedelta(seconds=59),
        last_seen_at=now,
        registration_status=Charger.Registration.ACCEPTED,
    )
    SiteBudget.objects.create(property=charger.property, limit_a=Decimal(63))
    ConnectorPower.objects.create(charger=charger, connector_id=1, max_a=Decimal(16))
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=5,
        id_tag="TAG",
        started_at=now - timedelta(seconds=30),
        meter_start_wh=0,
    )
    ChargingSession.objects.filter(pk=session.pk).update(
        received_start_at=now - timedelta(seconds=30)
    )
    session.refresh_from_db()
    # What the charger holds: its safe default (63 A for one charger, capped at its 16 A) and
    # fresh leases.
    for profile in [
        profiles.safe_default(profiles.V16, 16, now=now),
        *profiles.leases(profiles.V16, 16, now=now, valid_to=now + timedelta(seconds=120)),
    ]:
        body = profile.payload["csChargingProfiles"]
        ChargingProfile.objects.create(
            charger=charger,
            profile_id=body["chargingProfileId"],
            stack_level=body["stackLevel"],
            purpose=body["chargingProfilePurpose"],
            kind=body["chargingProfileKind"],
            valid_to=now + timedelta(seconds=120) if "validTo" in body else None,
            profile={"chargingSchedule": [body["chargingSchedule"]]},
            updated_at=now - timedelta(seconds=30),
        )
    row = ConnectorAllocation.objects.create(
        charger=charger,
        connector_id=1,
        property=charger.property,
        session=session,
        limit_a=Decimal(16),
        applied_limit_a=Decimal(16),
        applied_at=now - timedelta(seconds=20),
    )
    return charger, session, row, now


def test_nothing_is_sent_when_the_charger_holds_the_allocation(setup):
    charger, _, _, now = setup
    work = enforcement.plan(charger.property_id, now)
    assert (work.setup, work.down, work.up, work.held_back) == ([], [], [], 0)


def test_a_lower_limit_is_a_decrease_and_the_newest_one_is_sent(setup):
    charger, _, row, now = setup
    ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal("10.0"))
    ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal("8.4"))
    work = enforcement.plan(charger.property_id, now)
    assert work.up == [] and len(work.down) == 1
    sent = work.down[0].profile
    assert sent.purpose == "TxProfile" and sent.limit_a == 8.4
    assert sent.payload["csChargingProfiles"]["transactionId"] == 5


def test_a_limit_sent_moments_ago_waits_for_the_interval(setup):
    charger, _, row, now = setup
    ConnectorAllocation.objects.filter(pk=row.pk).update(
        limit_a=Decimal(10), applied_at=now - timedelta(seconds=1)
    )
    work = enforcement.plan(charger.property_id, now)
    assert work.down == [] and work.held_back == 1  # the increases of the site wait with it
    later = enforcement.plan(charger.property_id, now + timedelta(seconds=3))
    assert len(later.down) == 1


def test_a_higher_limit_is_an_increase(setup):
    charger, _, row, now = setup
    ConnectorAllocation.objects.filter(pk=row.pk).update(applied_limit_a=Decimal(6))
    work = enforcement.plan(charger.property_id, now)
    assert work.down == [] and [s.profile.limit_a for s in work.up] == [16.0]


def test_a_refusal_waits_for_its_retry_but_not_into_the_next_session(setup):
    charger, session, row, now = setup
    ConnectorAllocation.objects.filter(pk=row.pk).update(
        limit_a=Decimal(10), refused=True, applied_at=now - timedelta(seconds=10)
    )
    assert enforcement.plan(charger.property_id, now).down == []
    later = now + timedelta(seconds=301)
    Charger.objects.filter(pk=charger.pk).update(last_seen_at=later)  # still connected
    assert len(enforcement.plan(charger.property_id, later).down) == 1
    # A new session on the connector: the refusal was the previous one's. It starts at the
    # lease's 0 A, so its limit is an increase.
    ChargingSession.objects.filter(pk=session.pk).update(received_start_at=now)
    assert len(enforcement.plan(charger.property_id, now + timedelta(seconds=5)).up) == 1


def test_a_reconnected_charger_is_set_up_again_and_its_limit_resent(setup):
    charger, _, _, now = setup
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now - timedelta(seconds=5), last_boot_at=now - timedelta(seconds=4)
    )
    work = enforcement.plan(charger.property_id, now)
    assert [s.profile.profile_id for s in work.setup] == [
        profiles.PROFILE_ID_SAFE,
        profiles.PROFILE_ID_TX_DEFAULT_LEASE,
    ]
    # Nothing is known of what it holds on this connection: the limit goes with the decreases,
    # and the station maximum that lifts the safe default only after them.
    assert [s.profile.limit_a for s in work.down] == [16.0]
    assert [s.profile.profile_id for s in work.lift] == [profiles.PROFILE_ID_MAX_LEASE]


def test_a_lease_half_gone_is_renewed(setup):
    charger, _, _, now = setup
    work = enforcement.plan(charger.property_id, now + timedelta(seconds=61))
    assert [s.profile.purpose for s in work.setup + work.lift] == ["TxDefaultProfile", "max"]


def test_an_offline_charger_is_sent_nothing(setup):
    charger, _, row, now = setup
    Charger.objects.filter(pk=charger.pk).update(connection_id="")
    ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal(6))
    work = enforcement.plan(charger.property_id, now)
    assert (work.setup, work.down, work.up) == ([], [], [])


def test_the_safe_default_keeps_a_sub_panel_within_its_limit(setup):
    # Three more chargers on the same 32 A sub-panel: 63 A / 4 would be 15.7 A each, 62.8 A on a
    # 32 A breaker when all of them are offline; the sub-panel gives each 8 A.
    charger, _, _, now = setup
    panel = Circuit.objects.create(property=charger.property, name="garage", limit_a=Decimal(32))
    ConnectorPower.objects.filter(charger=charger).update(circuit=panel)
    for _ in range(3):
        other = ChargerFactory(property=charger.property, connection_id="")
        ConnectorPower.objects.create(
            charger=other, connector_id=1, max_a=Decimal(32), circuit=panel
        )
    work = enforcement.plan(charger.property_id, now)
    safe = [
        s.profile for s in work.setup if s.profile.payload["csChargingProfiles"]["stackLevel"] == 0
    ]
    assert [p.limit_a for p in safe] == [8.0]


def test_a_charger_offline_when_the_budget_drops_gets_the_new_safe_default_first(
    setup, monkeypatch
):
    """Offline when the budget drops: nothing can reach it, it keeps its old safe default (16 A)
    until it reconnects. Then the new safe default is its first CALL, before its leases (which
    lift it) and before its session's limit."""
    charger, _, row, now = setup
    Charger.objects.filter(pk=charger.pk).update(connection_id="")
    SiteBudget.objects.filter(property=charger.property).update(limit_a=Decimal(10))
    ConnectorAllocation.objects.filter(pk=row.pk).update(limit_a=Decimal(10))
    assert enforcement.plan(charger.property_id, now).setup == []
    Charger.objects.filter(pk=charger.pk).update(
        connection_id="c2",
        connected_at=now - timedelta(seconds=5),
        last_boot_at=now - timedelta(seconds=4),
    )
    sent: list[tuple[int, int, float]] = []

    async def answer(charger, action, payload, **kwargs):
        body = payload.get("csChargingProfiles") or payload["chargingProfile"]
        limit = body["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
        sent.append((body["chargingProfileId"], body["stackLevel"], limit))
        return Command(status=Command.Status.ANSWERED, response={"status": "Accepted"})

    monkeypatch.setattr(commands, "send_command", answer)
    enforcement.site_pass(charger.property_id, now)
    # The safe default, the waiting sessions' 0 A, the session's limit, and only then the lease
    # that lifts the safe default: the limit it held before the reconnect never comes back.
    assert sent == [
        (profiles.PROFILE_ID_SAFE, 0, 10.0),
        (profiles.PROFILE_ID_TX_DEFAULT_LEASE, 1, 0.0),
        (profiles.tx_profile_id(1), 1, 10.0),
        (profiles.PROFILE_ID_MAX_LEASE, 1, 16.0),
    ]


def _answering(monkeypatch, refuse: set[int] = frozenset()):  # type: ignore[assignment]
    sent: list[int] = []

    async def answer(charger, action, payload, **kwargs):
        body = payload.get("csChargingProfiles") or payload["chargingProfile"]
        sent.append(body["chargingProfileId"])
        status = "Rejected" if body["chargingProfileId"] in refuse else "Accepted"
        return Command(status=Command.Status.ANSWERED, response={"status": status})

    monkeypatch.setattr(commands, "send_command", answer)
    return sent


def test_a_reconnected_charger_is_not_lifted_while_its_limit_waits_for_the_interval(
    setup, monkeypatch
):
    """Its session's limit was sent a moment before the reconnect: the resend waits for the
    interval, and so does the lease that would let the old limit (16 A, the allocation is now
    10 A) be drawn again."""
    charger, _, row, now = setup
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now - timedelta(seconds=4), last_boot_at=now - timedelta(seconds=4)
    )
    ConnectorAllocation.objects.filter(pk=row.pk).update(
        limit_a=Decimal(10), applied_at=now - timedelta(seconds=1)
    )
    sent = _answering(monkeypatch)
    enforcement.site_pass(charger.property_id, now)
    assert sent == [profiles.PROFILE_ID_SAFE, profiles.PROFILE_ID_TX_DEFAULT_LEASE]
    sent.clear()
    enforcement.site_pass(charger.property_id, now + timedelta(seconds=3))
    # (The stub keeps no profile rows, so the setup comes again: a real charger's answer would.)
    assert sent[-2:] == [profiles.tx_profile_id(1), profiles.PROFILE_ID_MAX_LEASE]


@pytest.mark.parametrize(
    "refused", [profiles.PROFILE_ID_TX_DEFAULT_LEASE, profiles.tx_profile_id(1)]
)
def test_a_charger_that_refuses_its_waiting_lease_or_its_limit_stays_at_its_safe_default(
    setup, monkeypatch, refused
):
    charger, _, _, now = setup
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now - timedelta(seconds=5), last_boot_at=now - timedelta(seconds=4)
    )
    sent = _answering(monkeypatch, refuse={refused})
    enforcement.site_pass(charger.property_id, now)
    assert profiles.PROFILE_ID_MAX_LEASE not in sent


def test_a_refusal_holds_for_its_connection_only(setup, monkeypatch):
    """Refused its leases: not asked again on that connection before the retry, but at once
    after a reconnect (a restarted charger may accept now)."""
    charger, _, _, now = setup
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now - timedelta(seconds=5), last_boot_at=now - timedelta(seconds=4)
    )
    sent = _answering(monkeypatch, refuse={profiles.PROFILE_ID_TX_DEFAULT_LEASE})
    enforcement.site_pass(charger.property_id, now)
    assert enforcement.plan(charger.property_id, now + timedelta(seconds=10)).setup == []
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now + timedelta(seconds=6), last_boot_at=now + timedelta(seconds=7)
    )
    sent.clear()
    enforcement.site_pass(charger.property_id, now + timedelta(seconds=10))
    assert profiles.PROFILE_ID_TX_DEFAULT_LEASE in sent


def test_a_charger_that_disconnects_before_answering_has_not_refused(setup, monkeypatch):
    """The socket closed while the CALL waited: no refusal, no alert, no retry delay."""
    charger, _, row, now = setup
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now - timedelta(seconds=5), last_boot_at=now - timedelta(seconds=4)
    )

    async def gone(charger, action, payload, **kwargs):
        command = Command(
            charger=charger,
            action=action,
            status=Command.Status.TIMEOUT,
            error=commands.DISCONNECTED,
        )
        raise commands.CommandTimeout(command)

    monkeypatch.setattr(commands, "send_command", gone)
    enforcement.site_pass(charger.property_id, now)
    assert enforcement._refused_until == {}
    row.refresh_from_db()
    assert not row.refused
    from reliability.models import Alert

    assert not Alert.objects.filter(kind=enforcement.REFUSED).exists()


def test_a_refused_safe_default_does_not_hold_back_the_lift(setup, monkeypatch):
    charger, _, _, now = setup
    Charger.objects.filter(pk=charger.pk).update(
        connected_at=now - timedelta(seconds=5), last_boot_at=now - timedelta(seconds=4)
    )
    sent = _answering(monkeypatch, refuse={profiles.PROFILE_ID_SAFE})
    enforcement.site_pass(charger.property_id, now)
    assert sent[-1] == profiles.PROFILE_ID_MAX_LEASE

"""Issue 45 item 2: a charger that refuses limits is reserved its maximum whenever it could draw
(connected and neither Unavailable nor Faulted, or offline), not only while it has a session,
so the summed worst case never exceeds the budget whatever the order of events."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.devices import commands
from chargers.models import Charger, ChargerNotice, ChargingSession, Command, Connector
from power import allocation, enforcement, profiles, services
from power.allocation import Budget, Demand, Policy
from power.models import ConnectorAllocation, ConnectorPower, SiteBudget, Uncontrollable
from reliability.models import Alert, AlertRule
from tests.factories import ChargerFactory, PropertyFactory

A = Decimal
T0 = timezone.now()


def demand(station: str, *, max_a: int = 32, fixed: bool = False, at: int = 0) -> Demand:
    return Demand(
        station_id=station,
        connector_id=1,
        phases=3,
        min_a=A(6),
        max_a=A(max_a),
        measured_a=None,
        priority=0,
        arrived_at=T0 + timedelta(seconds=at),
        fixed_a=A(max_a) if fixed else None,
    )


def test_an_idle_refusing_charger_is_reserved_first():
    limits = allocation.allocate(
        [demand("B")], Budget(A(40)), Policy.EQUAL, T0, reserved=[demand("U", fixed=True)]
    )
    assert [limit.limit_a for limit in limits] == [A(8)]


@pytest.mark.parametrize(
    "online, status, could",
    [
        (True, "Available", True),
        (True, "Preparing", True),
        (True, "Unavailable", False),
        (True, "Faulted", False),
        (False, "Unavailable", True),  # offline: its last status says nothing of now
    ],
)
def test_a_refusing_connector_could_draw_unless_online_and_unavailable(online, status, could):
    assert allocation.could_draw(online=online, status=status) is could


def test_over_20_sessions_in_random_order_the_worst_case_never_exceeds_the_budget():
    """80 A site, six 32 A chargers, U refuses every limit. Sessions start and stop in random
    order; at every step the limits the others get plus U's maximum stay within the budget."""
    rng = random.Random(45)
    budget = Budget(A(80))
    stations = ["U", "B", "C", "D", "E", "F"]
    for _ in range(20):
        charging: set[str] = set()
        for step in range(20):
            station = rng.choice(stations)
            charging ^= {station}  # a start, or a stop
            demands = [demand(s, fixed=s == "U", at=step) for s in sorted(charging)]
            reserved = [] if "U" in charging else [demand("U", fixed=True)]
            limits = allocation.allocate(demands, budget, Policy.EQUAL, T0, reserved=reserved)
            others = sum(limit.limit_a for limit in limits if limit.station_id != "U")
            assert others + A(32) <= budget.limit_a_per_phase


def test_the_safe_defaults_leave_a_refusing_charger_its_maximum():
    shares = profiles.safe_shares(A(32), ["A", "B", "U"], reserved={"U": A(16)})
    assert shares == {"A": A(8), "B": A(8), "U": A(16)}
    assert sum(v for k, v in shares.items()) <= A(32)


def _online(charger: Charger, now) -> None:
    Charger.objects.filter(pk=charger.pk).update(
        connection_id="c1",
        connected_at=now - timedelta(seconds=60),
        last_boot_at=now - timedelta(seconds=59),
        last_seen_at=now,
        registration_status=Charger.Registration.ACCEPTED,
    )


@pytest.fixture
def site(db):
    prop = PropertyFactory()
    SiteBudget.objects.create(property=prop, limit_a=A(40), phases=3)
    refusing = ChargerFactory(property=prop, station_id="U-1")
    other = ChargerFactory(property=prop, station_id="B-1")
    session = ChargingSession.objects.create(
        charger=other,
        connector_id=1,
        transaction_id=77,
        id_tag="TAG",
        started_at=timezone.now() - timedelta(minutes=1),
        meter_start_wh=0,
    )
    Uncontrollable.objects.create(charger=refusing, connector_id=1, since=timezone.now())
    return prop, refusing, session


@pytest.mark.parametrize(
    "online, status, expected",
    [
        (True, "Available", A(8)),
        (True, "Unavailable", A(32)),
        (True, "Faulted", A(32)),
        (False, "Available", A(8)),
        (False, "Unavailable", A(8)),
    ],
)
def test_an_idle_refusing_charger_keeps_its_maximum_whenever_it_could_draw(
    site, online, status, expected
):
    prop, refusing, session = site
    if online:
        _online(refusing, timezone.now())
    Connector.objects.create(charger=refusing, connector_id=1, status=status)
    services.recompute(prop.pk)
    assert ConnectorAllocation.objects.get(session=session).limit_a == expected


def test_a_charger_that_refused_its_own_profiles_is_reserved_with_every_connector(site):
    prop, refusing, session = site
    Uncontrollable.objects.filter(charger=refusing).update(connector_id=0)
    ConnectorPower.objects.create(charger=refusing, connector_id=1, max_a=A(10))
    ConnectorPower.objects.create(charger=refusing, connector_id=2, max_a=A(10))
    services.recompute(prop.pk)
    assert ConnectorAllocation.objects.get(session=session).limit_a == A(20)


def _answering(monkeypatch, status: str):
    async def answer(charger, action, payload, **kwargs):
        return Command(status=Command.Status.ANSWERED, response={"status": status})

    monkeypatch.setattr(commands, "send_command", answer)


@pytest.mark.django_db
def test_a_refusal_is_remembered_after_the_session_and_cleared_by_an_acceptance(
    monkeypatch, settings
):
    monkeypatch.setattr(enforcement, "_refused_until", {})
    settings.POWER_PROFILE_MIN_INTERVAL_S = 0
    now = timezone.now()
    prop = PropertyFactory()
    SiteBudget.objects.create(property=prop, limit_a=A(40), phases=3)
    refusing = ChargerFactory(property=prop, station_id="U-1")
    _online(refusing, now)
    session = ChargingSession.objects.create(
        charger=refusing,
        connector_id=1,
        transaction_id=78,
        id_tag="TAG",
        started_at=now - timedelta(minutes=1),
        meter_start_wh=0,
    )
    services.recompute(prop.pk)
    _answering(monkeypatch, "Rejected")
    enforcement.site_pass(prop.pk, timezone.now())
    assert Uncontrollable.objects.filter(charger=refusing, connector_id=1).exists()
    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.COMPLETED, stopped_at=timezone.now()
    )
    other = ChargerFactory(property=prop, station_id="B-1")
    waiting = ChargingSession.objects.create(
        charger=other,
        connector_id=1,
        transaction_id=79,
        id_tag="TAG",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    services.recompute(prop.pk)
    # Idle and connected (no status yet: it could start any moment): still its 32 A reserved.
    assert ConnectorAllocation.objects.get(session=waiting).limit_a == A(8)
    # It accepts its own profiles and a session limit again: no longer reserved.
    session2 = ChargingSession.objects.create(
        charger=refusing,
        connector_id=1,
        transaction_id=80,
        id_tag="TAG",
        started_at=timezone.now(),
        meter_start_wh=0,
    )
    services.recompute(prop.pk)
    _answering(monkeypatch, "Accepted")
    ConnectorAllocation.objects.filter(session=session2).update(
        refused=False, applied_at=timezone.now() - timedelta(minutes=10)
    )
    enforcement.site_pass(prop.pk, timezone.now())
    assert not Uncontrollable.objects.filter(charger=refusing, connector_id=1).exists()


@pytest.mark.django_db
def test_an_iso15118_rejection_before_the_cars_needs_is_not_a_refusal(monkeypatch, settings):
    monkeypatch.setattr(enforcement, "_refused_until", {})
    now = timezone.now()
    prop = PropertyFactory()
    SiteBudget.objects.create(property=prop, limit_a=A(40), phases=3)
    charger = ChargerFactory(
        property=prop, station_id="ISO-1", ocpp_version=Charger.OcppVersion.V201
    )
    _online(charger, now)
    ChargerNotice.objects.create(
        charger=charger,
        action="NotifyEVChargingNeeds",
        evse_id=1,
        payload={},
        received_at=now - timedelta(days=1),  # an earlier car: this charger speaks ISO 15118
    )
    ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=81,
        ocpp_transaction_id="tx-81",
        id_tag="TAG",
        started_at=now,
        meter_start_wh=0,
    )
    services.recompute(prop.pk)
    tx_profile = profiles.tx_profile_id(1)

    async def answer(charger, action, payload, **kwargs):
        if action == "GetTransactionStatus":  # asked after the rejection: the car is charging
            return Command(status=Command.Status.ANSWERED, response={"ongoingIndicator": True})
        rejected = payload["chargingProfile"]["id"] == tx_profile
        return Command(
            status=Command.Status.ANSWERED,
            response={"status": "Rejected" if rejected else "Accepted"},
        )

    monkeypatch.setattr(commands, "send_command", answer)
    enforcement.site_pass(prop.pk, timezone.now())
    row = ConnectorAllocation.objects.get(charger=charger)
    assert not row.refused and "ISO 15118" in row.refused_reason
    assert not Uncontrollable.objects.exists()


@pytest.mark.django_db
def test_a_refusal_holds_the_others_increases_until_the_allocation_counts_it(monkeypatch, settings):
    """A charger that refused its safe default (so its sessions are allocated as obedient) starts
    a session and refuses that session's limit: the others' increases, computed before the
    refusal, must not be sent by a pass that runs before the next recompute (the sweep and the
    recompute asked for by the refusal race): 14 A on the other charger beside the refuser's
    16 A was 30 A on a 28 A fuse."""
    monkeypatch.setattr(enforcement, "_refused_until", {})
    settings.POWER_PROFILE_MIN_INTERVAL_S = 0
    now = timezone.now()
    prop = PropertyFactory()
    SiteBudget.objects.create(property=prop, limit_a=A(28), phases=3)
    refusing = ChargerFactory(property=prop, station_id="U-1")
    other = ChargerFactory(property=prop, station_id="B-1")
    sessions = {}
    for number, charger in enumerate((other, refusing)):
        _online(charger, now)
        ConnectorPower.objects.create(charger=charger, connector_id=1, max_a=A(16))
        sessions[charger.pk] = ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=90 + number,
            id_tag="TAG",
            started_at=now - timedelta(minutes=1),
            meter_start_wh=0,
        )
    ChargingSession.objects.filter(charger__property=prop).update(
        received_start_at=now - timedelta(minutes=1)
    )
    # It refused its own profiles: reserved while idle, its sessions allocated as obedient.
    Uncontrollable.objects.create(charger=refusing, connector_id=0, since=now)
    services.recompute(prop.pk)
    assert {r.charger_id: r.limit_a for r in ConnectorAllocation.objects.all()} == {
        other.pk: A(14),
        refusing.pk: A(14),
    }
    # The other charger holds 12 A (its share while the refuser was idle and reserved 16 A).
    ConnectorAllocation.objects.filter(charger=other).update(
        applied_limit_a=A(12), applied_at=now - timedelta(seconds=30)
    )
    session_limits: list[tuple[str, float]] = []

    async def answer(charger, action, payload, **kwargs):
        body = payload.get("csChargingProfiles") or payload.get("chargingProfile") or {}
        if body.get("chargingProfilePurpose") == "TxProfile":
            schedule = body["chargingSchedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            limit = schedule["chargingSchedulePeriod"][0]["limit"]
            session_limits.append((charger.station_id, limit))
        status = "Rejected" if charger.station_id == "U-1" else "Accepted"
        return Command(status=Command.Status.ANSWERED, response={"status": status})

    monkeypatch.setattr(commands, "send_command", answer)
    enforcement.site_pass(prop.pk, timezone.now())
    assert ("U-1", 14.0) in session_limits  # sent, refused: the allocation must count it now
    assert ConnectorAllocation.objects.get(charger=refusing).refused
    # The next pass runs before the recompute the refusal asked for: still 14 A in the row.
    enforcement.site_pass(prop.pk, timezone.now())
    assert ConnectorAllocation.objects.get(charger=other).limit_a == A(14)
    assert [limit for station, limit in session_limits if station == "B-1"] == []
    # Once recomputed with the refuser at its 16 A, the other keeps its 12 A.
    services.recompute(prop.pk)
    assert ConnectorAllocation.objects.get(charger=refusing).limit_a == A(16)
    assert ConnectorAllocation.objects.get(charger=other).limit_a == A(12)
    enforcement.site_pass(prop.pk, timezone.now())
    assert [limit for station, limit in session_limits if station == "B-1"] == []


# -- a session limit refused for a transaction the charger does not run -------------------------


def _one_session(version: str, *, status: str | None = None):
    now = timezone.now()
    prop = PropertyFactory()
    SiteBudget.objects.create(property=prop, limit_a=A(40), phases=3)
    AlertRule.objects.create(organization=prop.organization, kind=AlertRule.Kind.POWER_REFUSED)
    charger = ChargerFactory(property=prop, station_id="S-1", ocpp_version=version)
    _online(charger, now)
    if status is not None:
        Connector.objects.create(charger=charger, connector_id=1, status=status)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=82,
        ocpp_transaction_id="tx-82" if version != Charger.OcppVersion.V16 else "",
        id_tag="TAG",
        started_at=now - timedelta(minutes=5),
        meter_start_wh=0,
    )
    ChargingSession.objects.filter(pk=session.pk).update(
        received_start_at=now - timedelta(minutes=5)
    )
    session.refresh_from_db()
    services.recompute(prop.pk)
    return prop, charger, session


def _tx_profile_rejected(monkeypatch, transaction_status: dict | None = None) -> list[str]:
    """The charger refuses session limits (in any unit) and accepts its own profiles; asked
    GetTransactionStatus, it answers `transaction_status`. Returns what was sent: the action, or
    "TxProfile" for a session limit."""
    sent: list[str] = []

    async def answer(charger, action, payload, **kwargs):
        if action == "GetTransactionStatus":
            sent.append(action)
            return Command(status=Command.Status.ANSWERED, response=transaction_status)
        body = payload.get("csChargingProfiles") or payload.get("chargingProfile") or {}
        refused = body.get("chargingProfilePurpose") == "TxProfile"
        sent.append("TxProfile" if refused else action)
        return Command(
            status=Command.Status.ANSWERED,
            response={"status": "Rejected" if refused else "Accepted"},
        )

    monkeypatch.setattr(commands, "send_command", answer)
    return sent


@pytest.mark.django_db
def test_a_201_session_the_charger_says_is_over_is_closed_not_counted_as_a_refusal(monkeypatch):
    """Seen on the demo after a restart: our session outlived the charger's transaction, its
    TxProfile was answered Rejected (K01.FR.09), and the charger was marked as refusing limits,
    with an alert to the host, for the hour until the stale check asked about the session."""
    monkeypatch.setattr(enforcement, "_refused_until", {})
    prop, charger, session = _one_session(Charger.OcppVersion.V201)
    sent = _tx_profile_rejected(monkeypatch, {"ongoingIndicator": False, "messagesInQueue": False})
    enforcement.site_pass(prop.pk, timezone.now())
    assert "GetTransactionStatus" in sent
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.COMPLETED
    assert session.stop_reason == "NoEndedEvent"
    assert not Uncontrollable.objects.exists()
    assert not Alert.objects.filter(kind=AlertRule.Kind.POWER_REFUSED).exists()
    row = ConnectorAllocation.objects.get(session=session)
    assert (
        not row.refused and row.refused_reason == "No transaction runs: the charger says it ended"
    )
    assert charger.__class__.objects.get(pk=charger.pk).rate_unit_learnt == ""


@pytest.mark.django_db
def test_a_201_transaction_with_queued_events_is_waited_for(monkeypatch):
    monkeypatch.setattr(enforcement, "_refused_until", {})
    prop, _charger, session = _one_session(Charger.OcppVersion.V201)
    _tx_profile_rejected(monkeypatch, {"ongoingIndicator": False, "messagesInQueue": True})
    enforcement.site_pass(prop.pk, timezone.now())
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.ACTIVE  # its Ended is still to come
    assert not Uncontrollable.objects.exists()
    assert ConnectorAllocation.objects.get(session=session).refused_reason == (
        "No transaction runs: the charger says it ended, its events are still queued"
    )


@pytest.mark.parametrize("answer", [{"ongoingIndicator": True}, {"messagesInQueue": False}])
@pytest.mark.django_db
def test_a_201_transaction_still_running_or_unknown_is_a_refusal(monkeypatch, answer):
    monkeypatch.setattr(enforcement, "_refused_until", {})
    prop, charger, session = _one_session(Charger.OcppVersion.V201)
    _tx_profile_rejected(monkeypatch, answer)
    enforcement.site_pass(prop.pk, timezone.now())
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.ACTIVE
    assert Uncontrollable.objects.filter(charger=charger, connector_id=1).exists()
    assert Alert.objects.filter(kind=AlertRule.Kind.POWER_REFUSED).exists()


@pytest.mark.parametrize(
    "status, refusal", [("Available", False), ("Finishing", False), ("Charging", True)]
)
@pytest.mark.django_db
def test_a_16_port_that_says_no_transaction_runs_is_no_refusal(monkeypatch, status, refusal):
    """1.6 has no GetTransactionStatus; a connector Available or Finishing runs no transaction
    (§4.9). The session is left to the 1.6 sweep, which waits a while for its StopTransaction."""
    monkeypatch.setattr(enforcement, "_refused_until", {})
    prop, charger, session = _one_session(Charger.OcppVersion.V16, status=status)
    sent = _tx_profile_rejected(monkeypatch)
    enforcement.site_pass(prop.pk, timezone.now())
    assert "GetTransactionStatus" not in sent
    assert Uncontrollable.objects.filter(charger=charger).exists() is refusal
    assert Alert.objects.filter(kind=AlertRule.Kind.POWER_REFUSED).exists() is refusal
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.ACTIVE
    # Refused in both units for a transaction it does not run: no unit learnt from it.
    learnt = Charger.objects.get(pk=charger.pk).rate_unit_learnt
    assert learnt == ("A" if refusal else "")
    # Not sent again at every pass (every few seconds): after the refusal's retry time.
    sent.clear()
    ConnectorAllocation.objects.filter(session=session).update(
        applied_at=timezone.now() - timedelta(seconds=30)  # past POWER_PROFILE_MIN_INTERVAL_S
    )
    enforcement.site_pass(prop.pk, timezone.now())
    assert "TxProfile" not in sent
    ConnectorAllocation.objects.filter(session=session).update(
        applied_at=timezone.now() - timedelta(seconds=301)
    )
    enforcement.site_pass(prop.pk, timezone.now())
    assert "TxProfile" in sent

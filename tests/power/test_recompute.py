"""power.services.recompute: sessions, measured draw, priority classes, the budget in force."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.models import ChargingSession, MeterValue
from chargers.signals import session_finished, session_started
from power import services
from power.models import AllocationSample, Circuit, ConnectorAllocation, ConnectorPower, SiteBudget
from stays.models import Reservation
from tests.factories import ChargerFactory, PropertyFactory, TokenFactory, TokenGroupFactory

pytestmark = pytest.mark.django_db
A = Decimal


def start(charger, *, minutes_ago: int = 10, token=None, connector_id: int = 1):
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=connector_id,
        transaction_id=charger.pk * 10 + connector_id,
        id_tag=token.uid if token else "TAG",
        token=token,
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        meter_start_wh=0,
    )


@pytest.fixture
def site():
    prop = PropertyFactory()
    budget = SiteBudget.objects.create(property=prop, limit_a=A(63), phases=3)
    return prop, budget


def test_recompute_shares_the_budget_and_stores_one_row_per_connector(site):
    prop, _ = site
    chargers = [ChargerFactory(property=prop) for _ in range(4)]
    for i, c in enumerate(chargers):
        start(c, minutes_ago=10 - i)
    limits = services.recompute(prop.pk)
    assert [limit.limit_a for limit in limits] == [A("15.7")] * 4
    rows = ConnectorAllocation.objects.filter(property=prop)
    assert rows.count() == 4 and {r.limit_a for r in rows} == {A("15.7")}
    assert AllocationSample.objects.filter(property=prop).count() == 1


def test_without_a_budget_nothing_is_allocated():
    prop = PropertyFactory()
    start(ChargerFactory(property=prop))
    assert services.recompute(prop.pk) == []
    assert not ConnectorAllocation.objects.exists()


def test_sessions_past_the_budget_wait_and_a_stop_lets_the_next_one_in(site):
    prop, budget = site
    budget.limit_a = A(12)
    budget.save()
    sessions = [start(ChargerFactory(property=prop), minutes_ago=10 - i) for i in range(3)]
    services.recompute(prop.pk)
    waiting = ConnectorAllocation.objects.get(session=sessions[2])
    assert waiting.waiting and waiting.limit_a == 0
    assert waiting.reason == "Waiting for power, you are next"
    ChargingSession.objects.filter(pk=sessions[0].pk).update(
        status=ChargingSession.Status.COMPLETED, stopped_at=timezone.now()
    )
    services.recompute(prop.pk)
    assert not ConnectorAllocation.objects.get(session=sessions[2]).waiting
    assert not ConnectorAllocation.objects.filter(session=sessions[0]).exists()


def test_measured_current_and_power_are_read_from_the_latest_meter_values(site):
    prop, _ = site
    charger = ChargerFactory(property=prop)
    session = start(charger)
    now = timezone.now()
    for phase, amps in (("L1", "7.5"), ("L2", "8.1"), ("L3", "7.9")):
        MeterValue.objects.create(
            charger=charger,
            session=session,
            connector_id=1,
            timestamp=now,
            measurand="Current.Import",
            phase=phase,
            unit="A",
            value=A(amps),
        )
    assert services.measured_current(session.pk, phases=3, voltage=230) == A("8.1")
    other = start(ChargerFactory(property=prop))
    MeterValue.objects.create(
        charger=other.charger,
        session=other,
        connector_id=1,
        timestamp=now,
        measurand="Power.Active.Import",
        unit="kW",
        value=A("6.9"),
    )
    assert services.measured_current(other.pk, phases=3, voltage=230) == A(10)
    services.recompute(prop.pk)
    assert ConnectorAllocation.objects.get(session=session).measured_a == A("8.1")


def test_priority_classes_come_from_what_the_session_is(site):
    prop, budget = site
    org = prop.organization
    stay = Reservation.objects.create(
        property=prop,
        check_in=timezone.now() - timedelta(days=1),
        check_out=timezone.now() + timedelta(days=1),
    )
    stay_token = TokenFactory(organization=org, reservation=stay)
    guest_token = TokenFactory(organization=org, type="GUEST")
    employee = TokenFactory(organization=org)
    TokenGroupFactory(organization=org).tokens.add(employee)
    fleet = TokenFactory(organization=org, parent_id_tag="FLEET-1")
    kinds = {}
    for i, token in enumerate([None, fleet, employee, guest_token, stay_token]):
        session = start(ChargerFactory(property=prop), minutes_ago=20 - i, token=token)
        kinds[session.pk] = token
    services.recompute(prop.pk)
    got = dict(ConnectorAllocation.objects.values_list("session_id", "priority_class"))
    assert sorted(got.values()) == sorted(
        ["other", "fleet", "employee", "paying_guest", "stay_guest"]
    )
    # Priority: room for three minimums only; the stay guest, who came last, is served first.
    budget.limit_a = A(18)
    budget.policy = "priority"
    budget.save()
    services.recompute(prop.pk)
    waiting = set(
        ConnectorAllocation.objects.filter(waiting=True).values_list("priority_class", flat=True)
    )
    assert waiting == {"other", "fleet"}


def test_a_live_reading_wins_while_fresh_then_the_schedule_then_the_static_limit(site):
    prop, budget = site
    start(ChargerFactory(property=prop))
    now = timezone.now()
    budget.schedule = [{"start": "00:00", "end": "00:00", "limit_a": "20"}]
    budget.live_limit_a = A(10)
    budget.live_expires_at = now + timedelta(minutes=5)
    budget.save()
    assert services.recompute(prop.pk, now=now)[0].limit_a == A(10)
    assert services.recompute(prop.pk, now=now + timedelta(minutes=6))[0].limit_a == A(20)
    budget.schedule = []
    budget.save()
    assert services.recompute(prop.pk, now=now + timedelta(minutes=6))[0].limit_a == A(32)


def test_circuits_and_connector_data_are_respected(site):
    prop, _ = site
    sub = Circuit.objects.create(property=prop, name="Garage", limit_a=A(20))
    chargers = [ChargerFactory(property=prop) for _ in range(3)]
    for c in chargers[:2]:
        ConnectorPower.objects.create(charger=c, connector_id=1, circuit=sub, max_a=A(32))
    ConnectorPower.objects.create(charger=chargers[2], connector_id=1, phases=1, max_a=A(16))
    for i, c in enumerate(chargers):
        start(c, minutes_ago=10 - i)
    limits = services.recompute(prop.pk)
    assert [limit.limit_a for limit in limits] == [A(10), A(10), A(16)]


def test_a_charger_that_refused_is_counted_at_its_maximum(site):
    prop, budget = site
    budget.limit_a = A(40)
    budget.save()
    chargers = [ChargerFactory(property=prop) for _ in range(2)]
    for i, c in enumerate(chargers):
        start(c, minutes_ago=10 - i)
    services.recompute(prop.pk)
    ConnectorAllocation.objects.filter(charger=chargers[0]).update(refused=True)
    limits = services.recompute(prop.pk)
    assert [limit.limit_a for limit in limits] == [A(32), A(8)]


def test_session_signals_mark_the_site_and_the_sweep_recomputes_it(site):
    prop, budget = site
    session = start(ChargerFactory(property=prop))
    session_started.send(sender=None, session_id=session.pk)
    budget.refresh_from_db()
    assert budget.dirty_at is not None
    assert services.recompute_due(refresh=timedelta(seconds=10)) == 1
    budget.refresh_from_db()
    assert budget.dirty_at is None and ConnectorAllocation.objects.count() == 1
    # Recomputed a moment ago, nothing new: the sweep leaves it alone.
    assert services.recompute_due(refresh=timedelta(seconds=10)) == 0
    ChargingSession.objects.filter(pk=session.pk).update(status=ChargingSession.Status.COMPLETED)
    session_finished.send(sender=None, session_id=session.pk)
    assert services.recompute_due(refresh=timedelta(seconds=10)) == 1
    assert not ConnectorAllocation.objects.exists()


def test_enforcement_gets_the_limits_after_commit(
    site, monkeypatch, django_capture_on_commit_callbacks
):
    from power import enforcement

    prop, _ = site
    start(ChargerFactory(property=prop))
    seen = []
    monkeypatch.setattr(enforcement, "enforce", lambda pid, limits: seen.append((pid, limits)))
    with django_capture_on_commit_callbacks(execute=True):
        limits = services.recompute(prop.pk)
    assert seen == [(prop.pk, limits)]


def test_waiting_is_recorded_for_billing_and_closed_when_power_comes(site):
    from billing.services import session_facts
    from power.models import WaitingPeriod

    prop, budget = site
    budget.limit_a = A(6)
    budget.save()
    first = start(ChargerFactory(property=prop), minutes_ago=20)
    second = start(ChargerFactory(property=prop), minutes_ago=10)
    t = timezone.now()
    services.recompute(prop.pk, now=t)
    services.recompute(prop.pk, now=t + timedelta(seconds=5))  # still waiting: one period
    wait = WaitingPeriod.objects.get()
    assert wait.session_id == second.pk and wait.ended_at is None
    ChargingSession.objects.filter(pk=first.pk).update(status=ChargingSession.Status.COMPLETED)
    services.recompute(prop.pk, now=t + timedelta(minutes=3))
    wait.refresh_from_db()
    assert wait.ended_at == t + timedelta(minutes=3)
    second.refresh_from_db()
    assert session_facts(second).waiting == ((t, t + timedelta(minutes=3)),)


def test_an_unchanged_allocation_is_not_written_again(site):
    prop, budget = site
    start(ChargerFactory(property=prop))
    services.recompute(prop.pk)
    first = ConnectorAllocation.objects.get()
    services.recompute(prop.pk)
    assert ConnectorAllocation.objects.get().updated_at == first.updated_at
    budget.limit_a = A(20)
    budget.save()
    services.recompute(prop.pk)
    again = ConnectorAllocation.objects.get()
    assert again.pk == first.pk and again.limit_a == A(20)
    assert again.updated_at > first.updated_at


def test_the_sweep_task_recomputes_marked_sites(site):
    from power.tasks import recompute_due_task, recompute_task

    prop, _ = site
    session = start(ChargerFactory(property=prop))
    session_started.send(sender=None, session_id=session.pk)
    # Celery's 'will the join block' flag is one global for the process: an eager task running in
    # another thread of the test process (a server or consumer a test started) sets it meanwhile.
    assert recompute_due_task.apply().get(disable_sync_subtasks=False) == 1
    assert ConnectorAllocation.objects.filter(session=session).exists()
    assert recompute_task.apply(args=[prop.pk]).get(disable_sync_subtasks=False) == 1


def current(session, amps, *, at):
    MeterValue.objects.create(
        charger=session.charger,
        session=session,
        connector_id=session.connector_id,
        timestamp=at,
        measurand="Current.Import",
        phase="L1",
        unit="A",
        value=A(amps),
    )


def test_a_material_draw_change_is_recomputed_by_the_next_sweep(site, monkeypatch):
    """Meter values drive a recompute within one sweep (2 s), not only the 10 s refresh; small
    changes do not; and the sweep's cost does not grow with the number of frames."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    monkeypatch.setattr(services, "meter_mark", [None])
    prop, _ = site
    session = start(ChargerFactory(property=prop))
    services.recompute(prop.pk)
    refresh = timedelta(seconds=10)
    assert services.recompute_due(refresh=refresh) == 0  # fresh; the meter mark is set
    now = timezone.now()
    current(session, "0.9", at=now)  # drew nothing at the last allocation: 0.9 A is noise
    assert services.recompute_due(refresh=refresh) == 0
    for n in range(30):  # thirty frames since the last sweep, the newest one counts
        current(session, "16.0", at=now + timedelta(seconds=1 + n))
    with CaptureQueriesContext(connection) as scan:
        assert services.draw_changed() == {prop.pk}
    # The newest id, the new rows along the primary key, their allocations, the connectors.
    assert len(scan) == 4
    monkeypatch.setattr(services, "meter_mark", [services.meter_mark[0] - 30])
    assert services.recompute_due(refresh=refresh) == 1
    assert ConnectorAllocation.objects.get(session=session).measured_a == A(16)
    current(session, "15.0", at=now + timedelta(seconds=40))  # within 2 A: the refresh's job
    assert services.recompute_due(refresh=refresh) == 0


def test_a_meter_values_frame_costs_the_same_queries_and_the_sweep_sees_it(site, monkeypatch):
    """What one MeterValues frame costs on the ORM path (chargers.sessions.services
    .meter_values_store: the session, one INSERT of its samples): power adds nothing per frame.
    The next sweep finds the draw (four queries, `test_a_material_draw_change_...`)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from chargers.ocpp.tolerant import MeterReading, Sample
    from chargers.sessions.services import meter_values_store

    monkeypatch.setattr(services, "meter_mark", [None])
    prop, _ = site
    session = start(ChargerFactory(property=prop))
    services.recompute(prop.pk)
    assert services.draw_changed() == set()  # the mark is set
    reading = MeterReading(
        timestamp=timezone.now(),
        samples=[
            Sample(value=amps, measurand="Current.Import", phase=phase, unit="A")
            for phase, amps in (("L1", "16.1"), ("L2", "15.9"), ("L3", "16.0"))
        ],
    )
    with CaptureQueriesContext(connection) as frame:
        stored = meter_values_store(
            charger_id=session.charger_id,
            connector_id=1,
            transaction_id=session.transaction_id,
            readings=[reading],
        )
    assert stored == 3 and len(frame) == 2
    assert services.recompute_due(refresh=timedelta(seconds=10)) == 1
    assert ConnectorAllocation.objects.get(session=session).measured_a == A("16.1")


def test_a_session_answered_not_accepted_takes_no_share_unless_it_draws(site):
    """OCPP 1.6 §3.5.4: a start answered Invalid is stopped, or only its energy delivery is
    (StopTransactionOnInvalidId); its connector must not keep the others waiting."""
    prop, _ = site
    chargers = [ChargerFactory(property=prop) for _ in range(3)]
    refused = start(chargers[0], minutes_ago=30)
    ChargingSession.objects.filter(pk=refused.pk).update(id_tag_status="Invalid")
    for c in chargers[1:]:
        start(c, minutes_ago=5)
    limits = services.recompute(prop.pk)
    assert {limit.session_id for limit in limits} == {
        s.pk for s in ChargingSession.objects.exclude(pk=refused.pk)
    }
    assert [limit.limit_a for limit in limits] == [A("31.5")] * 2
    # Its readings say it draws all the same: it is a demand again.
    MeterValue.objects.create(
        charger=chargers[0],
        session=refused,
        connector_id=1,
        timestamp=timezone.now(),
        measurand="Current.Import",
        unit="A",
        value=A(10),
    )
    assert refused.pk in {limit.session_id for limit in services.recompute(prop.pk)}


def test_of_two_open_sessions_on_one_connector_the_newest_is_the_demand(site):
    prop, _ = site
    charger = ChargerFactory(property=prop)
    old = start(charger, minutes_ago=90)
    new = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=old.transaction_id + 1,
        id_tag="TAG",
        started_at=timezone.now() - timedelta(minutes=1),
        meter_start_wh=0,
    )
    assert [limit.session_id for limit in services.recompute(prop.pk)] == [new.pk]

"""1.6 sessions whose StopTransaction never came (chargers.devices.stale): a connector reports
Available only when no transaction runs on it (OCPP 1.6 §4.9), so an open session on a connector
Available for the grace time is closed at its last reading, as an estimate the charger's own
StopTransaction replaces should it still come."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from chargers.devices import stale
from chargers.models import ChargingSession, Connector, MeterValue, StatusEvent
from chargers.sessions import closing, rules
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def _now():
    """Each test's own now: a run imports this module minutes before the test runs, and a charger
    last seen at import time would be offline by then."""
    global NOW
    NOW = timezone.now()


def _session(*, online=True, version="1.6", minutes_ago=60):
    charger = ChargerFactory(
        ocpp_version=version,
        connection_id="c" if online else "",
        last_seen_at=NOW if online else NOW - timedelta(hours=2),
    )
    started = NOW - timedelta(minutes=minutes_ago)
    session = ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=charger.pk * 100 + 1,
        id_tag="CARD",
        started_at=started,
        meter_start_wh=Decimal(1000),
    )
    # Received when it started (the field is auto_now_add).
    ChargingSession.objects.filter(pk=session.pk).update(received_start_at=started)
    session.refresh_from_db()
    _reading(session, Decimal("4500.5"), started + timedelta(minutes=20))
    return session


def _reading(session, wh, at):
    MeterValue.objects.create(
        charger=session.charger,
        session=session,
        connector_id=1,
        timestamp=at,
        measurand="Energy.Active.Import.Register",
        unit="Wh",
        value=wh,
    )


def _status(session, status, minutes_ago):
    at = NOW - timedelta(minutes=minutes_ago)
    event = StatusEvent.objects.create(
        charger=session.charger, connector_id=1, status=status, timestamp=at
    )
    StatusEvent.objects.filter(pk=event.pk).update(received_at=at)
    Connector.objects.update_or_create(
        charger=session.charger, connector_id=1, defaults={"status": status}
    )


def _sweep():
    return stale.stale_transactions_check_task()


def test_a_session_on_a_connector_available_for_the_grace_time_is_closed_at_its_last_reading():
    session = _session()
    _status(session, "Finishing", 31)
    _status(session, "Available", 30)
    assert _sweep() == {"no_stop": 1}
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.COMPLETED
    assert session.stop_reason == rules.NO_STOP_TRANSACTION
    assert session.meter_stop_wh == Decimal("4500.5")
    assert session.stopped_at == session.started_at + timedelta(minutes=20)
    assert _sweep() == {}  # once


@pytest.mark.parametrize(
    "case",
    [
        "available_too_recently",
        "charging_again",
        "offline",
        "metering_after",
        "before_start",
        "2.0.1",
    ],
)
def test_a_session_the_charger_may_still_run_stays_open(case):
    session = _session(online=case != "offline", version="2.0.1" if case == "2.0.1" else "1.6")
    if case == "before_start":  # Available before this session began: says nothing of it
        _status(session, "Available", 90)
        Connector.objects.filter(charger=session.charger).update(status="Available")
    else:
        _status(session, "Available", 5 if case == "available_too_recently" else 30)
    if case == "charging_again":
        _status(session, "Charging", 10)
    if case == "metering_after":
        _reading(session, Decimal(5000), NOW - timedelta(minutes=20))
    assert "no_stop" not in _sweep()
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.ACTIVE


def test_the_chargers_own_stop_replaces_the_estimate():
    session = _session()
    _status(session, "Available", 30)
    _sweep()
    closing.close_orm(
        closing.StopRequest(
            charger_id=session.charger_id,
            transaction_id=session.transaction_id,
            meter_stop=Decimal("4700"),
            stopped_at=NOW - timedelta(minutes=35),
            reason="EVDisconnected",
        )
    )
    session.refresh_from_db()
    assert (session.meter_stop_wh, session.stop_reason) == (Decimal(4700), "EVDisconnected")
    assert session.stopped_at == NOW - timedelta(minutes=35)


def test_the_portal_says_why_a_session_closed_without_its_stop(client):
    from tests.factories import MembershipFactory

    session = _session()
    _status(session, "Available", 30)
    _sweep()
    host = MembershipFactory(organization=session.charger.property.organization, role="viewer").user
    client.force_login(host)
    listed = client.get("/sessions/").content.decode()
    assert "Closed: no stop received" in listed
    detail = client.get(f"/sessions/{session.pk}/").content.decode()
    assert 'class="no-stop-note"' in detail and "its connector became available" in detail

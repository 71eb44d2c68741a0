"""Billing prices a session when chargers signals it finished (on commit), and a pricing
failure never breaks the charger's stop."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Rate, SessionCharge
from chargers.models import ChargingSession
from chargers.sessions.closing import StopRequest, close_orm

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=3)


def _session(charger):
    return ChargingSession.objects.create(
        charger=charger,
        connector_id=1,
        transaction_id=4242,
        id_tag="X",
        started_at=T0,
        meter_start_wh=0,
    )


def test_stop_transaction_prices_the_session(charger, prop, django_capture_on_commit_callbacks):
    Rate.objects.create(
        property=prop,
        valid_from=T0 - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("0"),
    )
    session = _session(charger)
    with django_capture_on_commit_callbacks(execute=True):
        close_orm(
            StopRequest(
                charger_id=charger.pk,
                transaction_id=4242,
                meter_stop=5000,
                stopped_at=T0 + timedelta(hours=1),
            )
        )
    charge = SessionCharge.objects.get(session=session)
    assert (charge.total, charge.energy_wh, charge.final) == (Decimal("2.00"), 5000, True)


def test_pricing_failure_does_not_break_the_stop(
    charger, prop, monkeypatch, django_capture_on_commit_callbacks
):
    from billing.services import sessions as services

    def broken(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "session_price", broken)
    session = _session(charger)
    with django_capture_on_commit_callbacks(execute=True):
        close_orm(
            StopRequest(
                charger_id=charger.pk,
                transaction_id=4242,
                meter_stop=5000,
                stopped_at=T0 + timedelta(hours=1),
            )
        )
    session.refresh_from_db()
    assert session.status == "completed"
    assert not SessionCharge.objects.exists()


def test_with_a_broker_stopped_sessions_are_priced_by_one_task_per_batch(
    charger, prop, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """A restart stops thousands of sessions at once: with a broker they are queued for pricing
    together, one task a moment after the first stop, not one publish per stop. The task prices
    each of them; one that fails is left to the sweep and the others are priced."""
    from billing import receivers, tasks
    from billing.services import sessions as services

    Rate.objects.create(
        property=prop,
        valid_from=T0 - timedelta(days=1),
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("0"),
    )
    settings.CELERY_TASK_ALWAYS_EAGER = False
    published = []
    monkeypatch.setattr(tasks.sessions_price_task, "delay", published.append)
    monkeypatch.setattr(receivers, "PRICING_BATCH_S", 3600)  # this test says when: publish()
    sessions = []
    for n in range(3):
        sessions.append(
            ChargingSession.objects.create(
                charger=charger,
                connector_id=1,
                transaction_id=5000 + n,
                id_tag="X",
                started_at=T0 + timedelta(minutes=n),
                meter_start_wh=0,
            )
        )
        with django_capture_on_commit_callbacks(execute=True):
            close_orm(
                StopRequest(
                    charger_id=charger.pk,
                    transaction_id=5000 + n,
                    meter_stop=1000 * (n + 1),
                    stopped_at=T0 + timedelta(hours=1),
                )
            )
    assert published == []  # waiting for the batch
    receivers.pricing_batch.publish()
    assert published == [[s.pk for s in sessions]]
    receivers.pricing_batch.publish()
    assert len(published) == 1  # nothing new: no empty task

    real = services.session_price

    def fails_for_the_second(*, session_id):
        if session_id == sessions[1].pk:
            raise RuntimeError("boom")
        return real(session_id=session_id)

    monkeypatch.setattr(services, "session_price", fails_for_the_second)
    assert tasks.sessions_price_task.run(published[0]) == 2
    assert set(SessionCharge.objects.values_list("session_id", flat=True)) == {
        sessions[0].pk,
        sessions[2].pk,
    }

"""A stay code's start while the Celery broker is down: the start's deadline check (the car not
plugged in within GUEST_START_TIMEOUT_S) is kept in the outbox with its time, and once the broker
answers it is sent to run then, not at once (a check run early finds nothing to expire, and the
guest's hold would wait for the sweep)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backoffice.models import PendingTask
from backoffice.tasks import pending_tasks_send
from guest import stays as guest_stays
from guest.models import GuestSession
from guest.schedule import START_EXPIRE
from guest.starts import start_timeout_s
from tests.backoffice.dependencies_down import closed_port
from tests.backoffice.test_queueing import Broker
from tests.stays.test_stay_code_start import FakeCharger
from tests.stays.test_stay_code_start import stay as stay  # the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    broker = Broker()
    yield broker
    broker.back()


def test_the_start_check_is_kept_with_its_time_and_sent_with_it_once_the_broker_is_back(
    stay, broker, monkeypatch
):
    monkeypatch.setattr(guest_stays, "send_command_sync", FakeCharger())
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    _, own, _, reservation = stay
    answer = Client().post(f"/s/{own.station_id}/stay/", {"code": reservation.access_code})
    assert answer.status_code == 302 and "/s/session/" in answer["Location"]
    gs = GuestSession.objects.get()
    assert gs.state == GuestSession.State.STARTING
    kept = PendingTask.objects.get()
    assert (kept.name, kept.args) == (START_EXPIRE, [gs.pk])
    # Its time is the start's deadline (+1 s), not whenever the broker answers again.
    deadline = gs.start_requested_at + timedelta(seconds=start_timeout_s() + 1)
    assert deadline <= kept.eta <= timezone.now() + timedelta(seconds=start_timeout_s() + 1)

    # The broker is back (kombu's in-process transport, a real broker for this process).
    broker.down_at("memory://localhost/")
    assert pending_tasks_send.apply().result == 1
    assert not PendingTask.objects.exists()
    with current_app.connection_for_read() as connection:
        message = connection.SimpleQueue("celery").get(timeout=5)
    assert message.headers["task"] == START_EXPIRE
    assert parse_datetime(message.headers["eta"]) == kept.eta  # to run at the deadline
    message.ack()
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.STARTING  # nothing ran early

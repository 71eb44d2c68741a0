"""A guest's QR start while the Celery broker is down: the start's deadline check (the car not
plugged in within GUEST_START_TIMEOUT_S) is kept in the outbox with its time and sent once the
broker answers, as a stay code's is (tests/stays/test_stay_start_check_kept.py). Before, the QR
path queued the task directly and a broker that was down dropped it: the guest's hold then
waited for the beat's sweep."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backoffice.models import PendingTask
from backoffice.tasks import pending_tasks_send
from guest import services
from guest.models import GuestSession
from guest.schedule import START_EXPIRE
from guest.starts import start_timeout_s
from tests.backoffice.dependencies_down import closed_port
from tests.guest.test_start_flow import FakeCharger, start
from tests.stays.test_stay_start_check_kept import broker as broker  # the fixture

pytestmark = pytest.mark.django_db


def test_the_qr_start_check_is_kept_with_its_time_and_sent_once_the_broker_is_back(
    guest_charger, rate, broker, monkeypatch
):
    monkeypatch.setattr(services, "send_command_sync", FakeCharger())
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    gs = start(guest_charger)
    assert gs.state == GuestSession.State.STARTING
    kept = PendingTask.objects.get(name=START_EXPIRE)
    assert kept.args == [gs.pk]
    deadline = gs.start_requested_at + timedelta(seconds=start_timeout_s() + 1)
    assert deadline <= kept.eta <= timezone.now() + timedelta(seconds=start_timeout_s() + 1)

    broker.down_at("memory://localhost/")
    assert pending_tasks_send.apply().result >= 1
    assert not PendingTask.objects.filter(name=START_EXPIRE).exists()
    with current_app.connection_for_read() as connection:
        queue = connection.SimpleQueue("celery")
        names = []
        while True:
            try:
                message = queue.get(timeout=2)
            except queue.Empty:
                break
            names.append(message.headers["task"])
            if message.headers["task"] == START_EXPIRE:
                assert parse_datetime(message.headers["eta"]) == kept.eta
            message.ack()
    assert START_EXPIRE in names
    gs.refresh_from_db()
    assert gs.state == GuestSession.State.STARTING  # nothing ran early

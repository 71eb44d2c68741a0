"""The Celery broker is down (restarting) when a guest starts a charger: the guest is taken to
the session page, not an error page after the charger was told to start. The start's deadline
check is then done by the beat's sweep of overdue starts and by the open page."""

import pytest

from guest import stays as guest_stays
from guest.models import GuestSession
from tests.backoffice.dependencies_down import closed_port
from tests.backoffice.test_queueing import Broker
from tests.stays.test_stay_code_start import FakeCharger
from tests.stays.test_stay_code_start import stay as stay  # the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    broker = Broker()
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    yield broker
    broker.back()


def test_a_stay_code_start_while_the_broker_is_down_reaches_the_session_page(
    stay, broker_down, monkeypatch
):
    from django.test import Client

    charger = FakeCharger()
    monkeypatch.setattr(guest_stays, "send_command_sync", charger)
    _, own, _, reservation = stay
    browser = Client(raise_request_exception=False)
    answer = browser.post(f"/s/{own.station_id}/stay/", {"code": reservation.access_code})
    assert answer.status_code == 302 and "/s/session/" in answer["Location"]
    assert len(charger.calls) == 1  # the charger was told to start once
    assert GuestSession.objects.get().state == GuestSession.State.STARTING

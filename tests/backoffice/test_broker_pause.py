"""After the broker fails a send, this process's sends fail at once for a while
(portal/celery.py, BROKER_PAUSE_S) instead of each waiting the broker's socket timeout again:
a hung broker made each receiver of a charger's StopTransaction wait 5 s in turn, and the
charger's answer came after its own timeout (measured under `make run` with a silent broker:
StatusNotification 5 s, StartTransaction 10 s, StopTransaction over 15 s; with the pause 0.02 s,
0.15 s and 5.1 s, the first send's timeout only). Jobs queued meanwhile through
backoffice.queueing are kept and sent later, as in any broker outage."""

from __future__ import annotations

import pytest
from celery import current_app

from backoffice import queueing
from backoffice.models import PendingTask
from backoffice.tasks import idempotency_keys_prune
from portal.celery import BrokerPaused, broker_pause_forget
from tests.backoffice.dependencies_down import silent_server
from tests.backoffice.test_queueing import forget_connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_at():
    conf = current_app.conf
    before = (
        conf.task_always_eager,
        conf.broker_url,
        conf.broker_transport_options,
        conf.broker_connection_timeout,
    )

    def at(url: str) -> None:
        forget_connections()
        conf.task_always_eager = False
        conf.broker_url = url
        options = {**conf.broker_transport_options}  # the suite's key prefix kept
        conf.broker_transport_options = {
            **options,
            "socket_timeout": 0.5,
            "socket_connect_timeout": 0.5,
        }
        # kombu's time for its connection attempts, a tenth of its 4 s as the timeouts are of
        # their 5 s: one attempt per send, as with the app's own (tests/backoffice/test_broker_timeout.py)
        conf.broker_connection_timeout = 0.4

    yield at
    (
        conf.task_always_eager,
        conf.broker_url,
        conf.broker_transport_options,
        conf.broker_connection_timeout,
    ) = before
    forget_connections()


def test_after_a_send_to_a_hung_broker_fails_the_next_sends_fail_at_once(broker_at):
    with silent_server() as hung:
        broker_at(hung.url)
        with pytest.raises(Exception) as first:
            idempotency_keys_prune.delay()
        assert not isinstance(first.value, BrokerPaused)
        tried = hung.accepted
        assert tried >= 1

        for _ in range(3):
            with pytest.raises(BrokerPaused):
                idempotency_keys_prune.delay()
        # Kept for later, without asking the broker again.
        assert queueing.later("backoffice.idempotency_keys_prune") is False
        assert PendingTask.objects.get().name == "backoffice.idempotency_keys_prune"
        assert hung.accepted == tried

        broker_pause_forget()  # once the pause is over, the broker is asked again
        with pytest.raises(Exception) as again:
            idempotency_keys_prune.delay()
        assert not isinstance(again.value, BrokerPaused)
        assert hung.accepted > tried

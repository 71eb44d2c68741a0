"""A Celery broker (Redis) that accepts connections and never answers (a failover, a firewall
dropping packets): a send to it, as any `.delay()` in a request does, ends with an error after
CELERY_BROKER_SOCKET_TIMEOUT_S instead of holding the request without end (kombu's Redis
transport has no timeout of its own)."""

from __future__ import annotations

import pytest
from celery import current_app

from tests.backoffice.dependencies_down import silent_server


def test_a_send_to_a_broker_that_never_answers_ends_with_an_error(settings):
    conf = current_app.conf
    options = conf.broker_transport_options
    budget = conf.broker_connection_timeout  # kombu's time for its connection attempts (4 s)
    # The app's own connection options (portal/settings.py) carry the timeout; the send below
    # waits it out with the same options and kombu's budget, both a tenth as long (0.5 s and
    # 0.4 s: one attempt, longer than the budget, as 5 s is longer than 4 s): what happens
    # after the timeout is the test, not its length.
    timeout = settings.CELERY_BROKER_SOCKET_TIMEOUT_S
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (timeout, timeout)
    assert timeout > budget
    conf.broker_transport_options = {
        **options,
        "socket_timeout": timeout / 10,
        "socket_connect_timeout": timeout / 10,
    }
    conf.broker_connection_timeout = budget / 10
    try:
        with silent_server() as hung:
            with current_app.connection_for_write(hung.url) as connection:
                with pytest.raises(Exception) as failed:
                    current_app.send_task(
                        "backoffice.idempotency_keys_prune", connection=connection, retry=False
                    )
    finally:
        conf.broker_transport_options, conf.broker_connection_timeout = options, budget
    assert "imeout" in type(failed.value).__name__ + str(failed.value)
    assert hung.accepted >= 1

"""A Celery broker (Redis) that accepts connections and never answers (a failover, a firewall
dropping packets): a send to it, as any `.delay()` in a request does, ends with an error after
CELERY_BROKER_SOCKET_TIMEOUT_S instead of holding the request without end (kombu's Redis
transport has no timeout of its own)."""

from __future__ import annotations

import pytest
from celery import current_app

from tests.backoffice.dependencies_down import silent_server


def test_a_send_to_a_broker_that_never_answers_ends_with_an_error():
    with silent_server() as hung:
        # The app's own connection options (portal/settings.py), at the silent server.
        with current_app.connection_for_write(hung.url) as connection:
            with pytest.raises(Exception) as failed:
                current_app.send_task(
                    "backoffice.idempotency_keys_prune", connection=connection, retry=False
                )
    assert "imeout" in type(failed.value).__name__ + str(failed.value)
    assert hung.accepted >= 1

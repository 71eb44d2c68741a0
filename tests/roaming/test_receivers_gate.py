"""A backoffice without a connected roaming partner publishes no roaming task per status change or
session (a restart storm would publish thousands); once a partner connects, it does at once."""

import pytest

from roaming import receivers, tasks
from tests.roaming.conftest import connected_partner

pytestmark = pytest.mark.django_db


def test_no_task_without_a_connected_partner_then_at_once_with_one(operator, monkeypatch):
    # The answer is cached per process for 5 s: an earlier test in this worker may have left
    # "connected" (its partner went with a flush, which sends no signal).
    monkeypatch.setattr(receivers, "_partners_checked", (float("-inf"), False))
    published = []
    for task in (
        tasks.evse_status_push_task,
        tasks.session_started_task,
        tasks.session_finished_task,
    ):
        monkeypatch.setattr(task, "delay", lambda *args, _name=task.name: published.append(_name))

    def everything() -> None:
        receivers.connector_status_changed(None, connectors=[(operator["cp_public"].pk, 1)])
        receivers.session_started(None, session_id=1)
        receivers.session_finished(None, session_id=1)

    everything()
    assert published == []
    connected_partner(operator["org"])  # saving the partner resets this process's answer
    everything()
    assert len(published) == 3

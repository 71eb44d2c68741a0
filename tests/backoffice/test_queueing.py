"""Work queued while the Celery broker is down or hung (backoffice/queueing.py): the caller is
not failed, the job is kept, and it runs once the broker answers again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.db import transaction
from django.utils import timezone

from backoffice import queueing
from backoffice.models import IdempotentRequest, PendingTask
from backoffice.tasks import pending_tasks_send
from portal.celery import broker_pause_forget
from tests.backoffice.dependencies_down import closed_port, silent_server
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PRUNE = "backoffice.idempotency_keys_prune"


@pytest.fixture
def old_key(db):
    """An Idempotency-Key two days old: what the prune task removes when it runs."""
    return IdempotentRequest.objects.create(
        user=UserFactory(), key="k", fingerprint="f", created_at=timezone.now() - timedelta(days=2)
    )


class Broker:
    """Tasks go to the broker at a URL (`down_at`), not run in-process as in the rest of the
    suite; `back()` returns to the suite's settings."""

    def __init__(self) -> None:
        self.before = (current_app.conf.task_always_eager, current_app.conf.broker_url)

    def down_at(self, url: str) -> None:
        forget_connections()
        current_app.conf.task_always_eager = False
        current_app.conf.broker_url = url

    def back(self) -> None:
        current_app.conf.task_always_eager, current_app.conf.broker_url = self.before
        forget_connections()


def forget_connections() -> None:
    """Close the app's pools of broker connections and forget a send pause (portal/celery.py):
    a pool opened earlier (to the suite's Redis) would otherwise take the sends, as Celery's own
    after-fork reset does; a pause left by an earlier test would refuse them."""
    current_app._pool = None
    current_app.amqp._producer_pool = None
    broker_pause_forget()


@pytest.fixture
def broker():
    broker = Broker()
    yield broker
    broker.back()


def test_a_job_queued_while_the_broker_is_down_is_kept_and_runs_once_it_is_back(old_key, broker):
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    assert queueing.later(PRUNE) is False  # no exception for the caller
    assert IdempotentRequest.objects.filter(pk=old_key.pk).exists()  # not run
    assert list(PendingTask.objects.values_list("name", "args")) == [(PRUNE, [])]

    # .result, not .get(): Celery refuses a .get() while any thread of this process runs an
    # eager task (a global flag), and a beat thread of an earlier test may be running one.
    assert pending_tasks_send.apply().result == 0  # still down: kept, tried again
    assert PendingTask.objects.get().attempts == 2

    broker.back()  # the broker is back (the suite's in-process tasks)
    assert pending_tasks_send.apply().result == 1
    assert not PendingTask.objects.exists()
    assert not IdempotentRequest.objects.filter(pk=old_key.pk).exists()  # the job ran


def test_queued_on_commit_nothing_fails_after_the_write_committed(
    old_key, broker, django_capture_on_commit_callbacks
):
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            queueing.on_commit(PRUNE)
            assert not PendingTask.objects.exists()  # not before the commit
    assert len(callbacks) == 1
    assert PendingTask.objects.get().name == PRUNE


def test_a_rolled_back_write_queues_nothing(broker, django_capture_on_commit_callbacks):
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            queueing.on_commit(PRUNE)
            raise RuntimeError("the write failed")
    assert callbacks == [] and not PendingTask.objects.exists()


def test_a_hung_broker_does_not_hold_the_caller(old_key, broker, monkeypatch):
    monkeypatch.setattr(queueing, "PUBLISH_TIMEOUT_S", 0.2)
    with silent_server() as hung:
        broker.down_at(hung.url)
        assert queueing.later(PRUNE) is False
    assert PendingTask.objects.get().name == PRUNE


def test_an_unknown_task_name_fails_in_the_caller():
    with pytest.raises(KeyError):
        queueing.on_commit("backoffice.no_such_task")

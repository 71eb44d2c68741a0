"""`evportal_celery_queue_length`: the tasks waiting in the broker's Redis lists, every priority,
under this deployment's key prefix (CELERY_KEY_PREFIX). Needs Redis (the CI=true pass)."""

from __future__ import annotations

import pytest
import redis
from celery import current_app
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from backoffice import metrics


@pytest.fixture
def broker():
    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs a Redis broker (REDIS_URL; the CI=true pass)")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = [
        f"{settings.CELERY_KEY_PREFIX}celery{suffix}" for suffix in ("", "\x06\x163", "\x06\x169")
    ]
    client.delete(*keys)
    yield
    client.delete(*keys)  # nothing of ours left for a worker
    client.close()


def queued(name: str = "celery") -> float | None:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "evportal_celery_queue_length" and sample.labels["queue"] == name:
                return sample.value
    return None


def test_tasks_sent_to_the_broker_are_counted_with_their_priorities(broker):
    assert queued() == 0
    # send_task publishes to the broker even where tasks run eagerly (the test settings).
    current_app.send_task("roaming.deliveries_sweep")
    current_app.send_task("roaming.deliveries_sweep")
    current_app.send_task("roaming.deliveries_sweep", priority=5)
    current_app.send_task("roaming.deliveries_sweep", priority=9)
    assert metrics.queue_lengths(settings.CELERY_BROKER_URL) == {"celery": 4}
    assert queued() == 4


def test_a_broker_that_does_not_answer_leaves_the_series_out_and_the_scrape_answers(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    assert queued() is None

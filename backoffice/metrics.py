"""Prometheus metrics of this process, and what `GET /metrics` renders (docs/operations.md).

Every series here is fleet-wide: none carries a station, charger or organization label (the
cardinality of a fleet of thousands; per-station detail stays in the API). Counters are bumped in
memory where things happen; gauges that describe a process (its database pools, and what the
apps above add with `add_sampler`: connected chargers, the message-log buffer, the journal) are
set by `sample()`, which `manage.py serve` runs every METRICS_SAMPLE_SECONDS and the endpoint runs
before it answers. Values read from a shared service (Celery's queues in Redis) are read at
scrape time only.

Several processes on a host (the HAProxy cluster, Celery's workers, the in-process beat's
threads) share one view through prometheus_client's multiprocess mode: with
PROMETHEUS_MULTIPROC_DIR set before the process starts, each process writes its values to its own
files there and any process's `/metrics` adds them up (per-process gauges keep a `pid` label).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import async_pg

logger = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST
PREFIX = "evportal_"

# -- outbound deliveries (roaming pushes, access-point feeds, alert webhooks and e-mails) --------

DELIVERY_KINDS = ("ocpi", "access_point", "webhook", "email")
DELIVERY_OUTCOMES = ("sent", "failed")
_deliveries = Counter(
    "evportal_outbound_deliveries",
    "Outbound deliveries tried, by kind (ocpi, access_point, webhook, email) and outcome "
    "(sent, failed: a try that failed; it is retried with back-off until given up).",
    ["kind", "outcome"],
)


for _kind in DELIVERY_KINDS:  # every series from the start, at 0: a rate over a missing one is none
    for _outcome in DELIVERY_OUTCOMES:
        _deliveries.labels(_kind, _outcome)


def delivery(kind: str, *, ok: bool) -> None:
    """Count one delivery try of `kind` (one of DELIVERY_KINDS)."""
    _deliveries.labels(kind, "sent" if ok else "failed").inc()


# -- periodic tasks -------------------------------------------------------------------------------

_task_success = Gauge(
    "evportal_periodic_task_last_success_timestamp_seconds",
    "Unix time of the last successful run of each periodic task (CELERY_BEAT_SCHEDULE), "
    "wherever it ran (a Celery worker or the in-process beat).",
    ["task"],
    multiprocess_mode="max",
)


def periodic_task_names() -> frozenset[str]:
    """The task names of the beat schedule: the only values the `task` label takes."""
    return frozenset(spec["task"] for spec in settings.CELERY_BEAT_SCHEDULE.values())


def task_succeeded(name: str, now: float | None = None) -> None:
    """Record a successful run of the task `name` when it is a periodic one."""
    if name in periodic_task_names():
        _task_success.labels(name).set(now if now is not None else time.time())


# -- database pools (this process) ------------------------------------------------------------------

_pool_connections = Gauge(
    "evportal_db_pool_connections",
    "PostgreSQL connections of this process's pools, by pool (django: Django's psycopg pool; "
    "event_loop: the OCPP path's pool, backoffice/async_pg.py) and state (idle, in_use).",
    ["pool", "state"],
    multiprocess_mode="liveall",
)
_pool_size = Gauge(
    "evportal_db_pool_max_connections",
    "The most connections each pool of this process may open.",
    ["pool"],
    multiprocess_mode="liveall",
)
_pool_waiting = Gauge(
    "evportal_db_pool_waiting",
    "Callers waiting for a connection of each pool of this process.",
    ["pool"],
    multiprocess_mode="liveall",
)


def _django_pool() -> Any:
    """Django's psycopg pool of the default database, when it exists already (never made here)."""
    from django.db import connections

    wrapper = connections["default"]
    if wrapper.vendor != "postgresql":
        return None
    return getattr(type(wrapper), "_connection_pools", {}).get("default")


def _sample_pools() -> None:
    pool = _django_pool()
    if pool is not None:
        stats = pool.get_stats()
        size, idle = stats.get("pool_size", 0), stats.get("pool_available", 0)
        _pool_connections.labels("django", "idle").set(idle)
        _pool_connections.labels("django", "in_use").set(size - idle)
        _pool_size.labels("django").set(pool.max_size)
        _pool_waiting.labels("django").set(stats.get("requests_waiting", 0))
    loop_stats = async_pg.pool_stats()
    if loop_stats is not None:
        _pool_connections.labels("event_loop", "idle").set(loop_stats.idle)
        _pool_connections.labels("event_loop", "in_use").set(loop_stats.opened - loop_stats.idle)
        _pool_size.labels("event_loop").set(loop_stats.size)
        _pool_waiting.labels("event_loop").set(loop_stats.waiting)


# -- samplers: what the apps above add ------------------------------------------------------------

_samplers: list[Callable[[], None]] = [_sample_pools]


def add_sampler(sampler: Callable[[], None]) -> None:
    """Have `sampler` set its gauges at every sample (an upper app's AppConfig.ready())."""
    if sampler not in _samplers:
        _samplers.append(sampler)


def sample() -> None:
    """Set this process's gauges now. Reads memory only (and one stat of the journal file)."""
    for sampler in _samplers:
        try:
            sampler()
        except Exception:  # one broken sampler must not cost the others (nor the scrape)
            logger.exception("Metrics sampler %s failed", getattr(sampler, "__name__", sampler))


def process_exit(pid: int | None = None) -> None:
    """Forget a stopping process's per-process gauges (multiprocess mode; else nothing)."""
    directory = multiproc_dir()
    if directory:
        multiprocess.mark_process_dead(pid if pid is not None else os.getpid(), directory)


# -- Celery queues (Redis, read at scrape time) -----------------------------------------------------

# kombu's Redis transport keeps a queue's tasks of priority 0 under its name and the others under
# the name, a separator and the priority step (kombu.transport.redis, PRIORITY_STEPS).
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (0, 3, 6, 9)


CELERY_QUEUE_LENGTH = "evportal_celery_queue_length"


class CeleryQueues(Collector):
    """`evportal_celery_queue_length{queue}`: tasks waiting in each Celery queue (Redis LLEN)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return
        family = GaugeMetricFamily(
            CELERY_QUEUE_LENGTH,
            "Tasks waiting in each Celery queue (the broker's Redis lists).",
            labels=["queue"],
        )
        try:
            for queue, length in queue_lengths(url).items():
                family.add_metric([queue], length)
        except Exception as exc:  # Redis away: the series is missing, the scrape still answers
            logger.warning("Metrics: could not read the Celery queues: %s", exc)
            return
        yield family

    def describe(self) -> list:
        return []  # read at scrape time only, never when registered


def queue_names() -> list[str]:
    """The Celery queues this deployment uses (the default one unless CELERY_TASK_QUEUES)."""
    from celery import current_app

    names = {current_app.conf.task_default_queue}
    names.update(queue.name for queue in current_app.conf.task_queues or ())
    return sorted(names)


def queue_lengths(url: str) -> dict[str, int]:
    """Tasks waiting in each queue, all priorities together; one pipelined round trip."""
    import redis

    prefix = settings.CELERY_KEY_PREFIX
    names = queue_names()
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            for step in _PRIORITY_STEPS:
                suffix = f"{_PRIORITY_SEP}{step}" if step else ""
                pipe.llen(f"{prefix}{name}{suffix}")
        lengths = pipe.execute()
    finally:
        client.close()
    steps = len(_PRIORITY_STEPS)
    return {name: sum(lengths[i * steps : (i + 1) * steps]) for i, name in enumerate(names)}


# -- exposition -----------------------------------------------------------------------------------


def multiproc_dir() -> str:
    """PROMETHEUS_MULTIPROC_DIR of this process ("" outside multiprocess mode)."""
    return settings.PROMETHEUS_MULTIPROC_DIR


def registry() -> CollectorRegistry:
    """What a scrape renders: every process's files in multiprocess mode, else this process's
    registry; Celery's queues either way."""
    directory = multiproc_dir()
    if directory:
        merged = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(merged, path=directory)
        merged.register(CeleryQueues())
        return merged
    return _single


_single = CollectorRegistry(auto_describe=False)
_single.register(REGISTRY)  # a registry is a collector of its own
_single.register(CeleryQueues())


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> dict[str, tuple[str, ...]]:
    """Every series family this service exports (also those nothing has set yet), with the names
    its samples take in a scrape: for the Grafana dashboard's test and docs/operations.md."""
    families = {
        family.name: tuple(family.name + suffix for suffix in _SUFFIXES[family.type])
        for family in REGISTRY.collect()
        if family.name.startswith(PREFIX)
    }
    families[CELERY_QUEUE_LENGTH] = (CELERY_QUEUE_LENGTH,)
    return families


def render() -> bytes:
    """The text exposition of a scrape, this process's gauges sampled first."""
    sample()
    return generate_latest(registry())

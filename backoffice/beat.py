"""The Celery beat schedule run inside `manage.py serve` when there is no broker.

Without a broker (`make run`: no REDIS_URL / CELERY_BROKER_URL) no `celery beat` runs, so the
server runs settings.CELERY_BEAT_SCHEDULE itself: the same entries at the same intervals, each
task executed in this process (`task.apply()`, the way tasks run without a broker) on a small
thread pool, never on the event loop. One process per deployment runs it: the holder of the
SchedulerLease row "beat", which it renews every third of its lifetime; when a holder stops
renewing (crashed, stopped) the lease expires and the next process that asks takes it over.
A failing task is logged and the schedule goes on; a task still running when it is due again is
skipped that time, so slow runs never pile up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.utils import timezone

from .models import SchedulerLease

logger = logging.getLogger(__name__)

LEASE_NAME = "beat"
TASK_THREADS = 2  # database connections the tasks can hold at once (README, "Connections")


def claim_lease(name: str, holder: str, seconds: float, now: datetime | None = None) -> bool:
    """Take or renew the lease `name` for `holder` until now + `seconds`; False while another
    holder's lease has not expired. One conditional UPDATE (or the first INSERT), so two
    processes asking at once never both get it, on SQLite and PostgreSQL alike."""
    now = now or timezone.now()
    expires_at = now + timedelta(seconds=seconds)
    if (
        SchedulerLease.objects.filter(name=name)
        .filter(Q(holder=holder) | Q(expires_at__lte=now))
        .update(holder=holder, expires_at=expires_at)
    ):
        return True
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(name=name, holder=holder, expires_at=expires_at)
    except IntegrityError:  # the row exists and another holder's lease is still running
        return False
    return True


def release_lease(name: str, holder: str) -> None:
    """Give the lease up at once (a stopping server), so the next process need not wait."""
    SchedulerLease.objects.filter(name=name, holder=holder).delete()


def run_celery_task(name: str, args: list | tuple, kwargs: dict) -> None:
    """Run a registered Celery task in this thread, as tasks run without a broker."""
    from celery import current_app

    current_app.tasks[name].apply(args=args, kwargs=kwargs, throw=True)


def _interval_seconds(schedule: Any) -> float | None:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if isinstance(run_every, timedelta) and type(schedule).__name__ == "schedule":
        return run_every.total_seconds()
    return None


@dataclass
class Entry:
    name: str
    task: str
    schedule: Any
    args: list | tuple = ()
    kwargs: dict = field(default_factory=dict)
    last_run: datetime | None = None

    def is_due(self, now: datetime) -> bool:
        if self.last_run is None:
            # As celery beat's fresh schedule: the first run is one interval after the start.
            self.last_run = now
            return False
        every = _interval_seconds(self.schedule)
        if every is not None:
            return (now - self.last_run).total_seconds() >= every
        return bool(self.schedule.is_due(self.last_run).is_due)  # crontab and the like


class InProcessBeat:
    def __init__(
        self,
        schedule: dict[str, dict],
        *,
        holder: str | None = None,
        lease_seconds: float = 30.0,
        run: Callable[[str, list | tuple, dict], None] = run_celery_task,
        known_tasks: set[str] | None = None,
    ) -> None:
        self.entries = []
        for name, spec in schedule.items():
            if known_tasks is not None and spec["task"] not in known_tasks:
                logger.error("Beat entry %s names no registered task %r: left out", name, spec)
                continue
            self.entries.append(
                Entry(
                    name,
                    spec["task"],
                    spec["schedule"],
                    spec.get("args", ()),
                    spec.get("kwargs", {}),
                )
            )
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease_seconds = lease_seconds
        self.run_task = run
        self.pool = ThreadPoolExecutor(TASK_THREADS, thread_name_prefix="beat-task")
        self.running: dict[str, Future] = {}
        # The server's event loop once run() is going: tasks are started from it (see _submit).
        self.loop: asyncio.AbstractEventLoop | None = None
        self.holding = False
        self._renewed_at: datetime | None = None

    def _hold_lease(self, now: datetime) -> bool:
        renew_every = self.lease_seconds / 3
        if (
            self.holding
            and self._renewed_at
            and (now - self._renewed_at).total_seconds() < renew_every
        ):
            return True
        held = claim_lease(LEASE_NAME, self.holder, self.lease_seconds, now)
        if held and not self.holding:
            logger.info("In-process beat: %s runs the periodic tasks", self.holder)
            for entry in self.entries:  # a fresh start: each first run one interval from now
                entry.last_run = None
        elif self.holding and not held:
            logger.warning(
                "In-process beat: %s lost the lease; another process runs the tasks", self.holder
            )
        self.holding, self._renewed_at = held, now
        return held

    def tick(self, now: datetime | None = None) -> list[str]:
        """Renew the lease when it is time, start the entries that are due; return their names."""
        now = now or timezone.now()
        if not self._hold_lease(now):
            return []
        started = []
        for entry in self.entries:
            if not entry.is_due(now):
                continue
            entry.last_run = now
            previous = self.running.get(entry.name)
            if previous is not None and not previous.done():
                logger.info("In-process beat: %s is still running; skipped this time", entry.name)
                continue
            self.running[entry.name] = self._submit(entry)
            started.append(entry.name)
        return started

    def _submit(self, entry: Entry) -> Future:
        """Run the entry on the task pool. Under run(), as a thread the server's event loop
        started (sync_to_async): what the task does with async_to_sync then runs on that loop,
        where the charger connections live. Started from a bare thread, async_to_sync would make
        a loop of its own, and without Redis (the in-memory channel layer, bound to the server's
        loop) a command to a charger, such as an alert's first aid, would never reach it."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return self.pool.submit(self._run, entry)
        work = sync_to_async(self._run, thread_sensitive=False, executor=self.pool)
        return asyncio.run_coroutine_threadsafe(work(entry), loop)

    def _run(self, entry: Entry) -> None:
        try:
            self.run_task(entry.task, entry.args, entry.kwargs)
        except Exception:
            logger.exception("In-process beat: %s (%s) failed", entry.name, entry.task)
        finally:
            connections.close_all()  # this thread's connections; the next run opens its own

    def stop(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.holding:
            release_lease(LEASE_NAME, self.holder)
            self.holding = False

    def _tick_in_thread(self) -> None:
        try:
            self.tick()
        finally:
            connections.close_all()

    def _stop_in_thread(self) -> None:
        try:
            self.stop()
        finally:
            connections.close_all()

    async def run(self, should_stop: Callable[[], bool], poll_seconds: float = 1.0) -> None:
        """Tick every `poll_seconds` until `should_stop()`; the lease's database calls run on a
        thread of their own, so a busy task pool never delays a renewal."""
        loop = self.loop = asyncio.get_running_loop()
        lease_thread = ThreadPoolExecutor(1, thread_name_prefix="beat-lease")
        try:
            while not should_stop():
                try:
                    await loop.run_in_executor(lease_thread, self._tick_in_thread)
                except Exception:
                    logger.exception("In-process beat: the lease check failed; trying again")
                await asyncio.sleep(poll_seconds)
        finally:
            await loop.run_in_executor(lease_thread, self._stop_in_thread)
            lease_thread.shutdown(wait=False)


def from_settings() -> InProcessBeat:
    """The beat of settings.CELERY_BEAT_SCHEDULE with every task module imported."""
    from celery import current_app
    from django.conf import settings

    current_app.loader.import_default_modules()
    return InProcessBeat(
        settings.CELERY_BEAT_SCHEDULE,
        lease_seconds=settings.BEAT_LEASE_SECONDS,
        known_tasks=set(current_app.tasks),
    )

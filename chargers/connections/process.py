"""This server process: its identity, its heartbeat, and what it does at start and at stop.

Each process records which charger sockets it holds (Charger.connection_process). When a
process stops cleanly it clears them; when it dies (kill -9, OOM, host lost) it stops
heartbeating and any other process, or the next one to start, clears them. So a charger never
shows online for a socket nobody holds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from backoffice import db
from chargers.models import Backoffice, Charger, OcppServerProcess
from chargers.plumbing.journal import journal
from chargers.sessions import replay

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 15.0
# Every open socket joins its command group again this often (consumer.rejoin_command_groups):
# after a Redis restart commands reach every charger again within this time.
REJOIN_EVERY_S = 60.0

HOSTNAME = socket.gethostname()
KEY = f"{HOSTNAME[:30]}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
STARTED_AT: datetime = timezone.now()

_heartbeat: asyncio.Task[None] | None = None
_rejoin: asyncio.Task[None] | None = None


async def _beat() -> None:
    await db.run(
        server_process_heartbeat,
        key=KEY,
        hostname=HOSTNAME,
        pid=os.getpid(),
        started_at=STARTED_AT,
    )
    cleared = await db.run(connections_clear_dead_processes, own_key=KEY)
    if cleared:
        logger.warning(
            "Cleared %d charger connection(s) of server processes that are gone", cleared
        )
    await journal.replay_orphans()


async def _every(seconds: float, work: Callable[[], Awaitable[object]], failed: str) -> None:
    """Run `work` every `seconds`; a failure (the database or the layer away) is logged and the
    next round tries again."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("%s: %s", failed, exc)


async def start(*, rejoin: Callable[[], Awaitable[object]] | None = None) -> None:
    """Register this process, clear stale connections, replay journals of stopped processes;
    call `rejoin` (consumer.rejoin_command_groups) every REJOIN_EVERY_S."""
    global _heartbeat, _rejoin
    journal.configure(replay.journal_apply, KEY)
    try:
        await _beat()
    except Exception as exc:
        logger.error("Could not register the server process (database unavailable?): %s", exc)
    _heartbeat = asyncio.get_running_loop().create_task(
        _every(HEARTBEAT_EVERY_S, _beat, "Server process heartbeat failed"),
        name="ocpp-process-heartbeat",
    )
    if rejoin is not None:
        _rejoin = asyncio.get_running_loop().create_task(
            _every(REJOIN_EVERY_S, rejoin, "Joining the command groups again failed"),
            name="ocpp-rejoin-groups",
        )


async def stop() -> None:
    """Mark every connection of this process closed (after the sockets were drained)."""
    global _heartbeat, _rejoin
    for task in (_heartbeat, _rejoin):
        if task is not None:
            task.cancel()
    _heartbeat = _rejoin = None
    try:
        cleared = await db.run(server_process_stopped, key=KEY)
        logger.info(
            "Server process stopping: %d charger connection(s) marked disconnected", cleared
        )
    except Exception as exc:
        logger.error(
            "Could not mark this process's connections closed (cleared at next start): %s", exc
        )


# -- server processes: connections of a process that is gone are cleared -------------------------

PROCESS_STALE_AFTER_S = 45


def server_process_heartbeat(*, key: str, hostname: str, pid: int, started_at: datetime) -> None:
    OcppServerProcess.objects.update_or_create(
        key=key,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "started_at": started_at,
            "heartbeat_at": timezone.now(),
        },
    )


def server_process_stopped(*, key: str) -> int:
    """This process is stopping: every connection it recorded is closed."""
    now = timezone.now()
    _proxy_links_down(Charger.objects.filter(connection_process=key, proxied=True), now)
    cleared = (
        Charger.objects.filter(connection_process=key)
        .exclude(connection_id="")
        .update(connection_id="", connection_process="", disconnected_at=now)
    )
    OcppServerProcess.objects.filter(key=key).delete()
    return cleared


def connections_clear_dead_processes(*, own_key: str) -> int:
    """Clear connections recorded by processes that stopped heartbeating (crash, kill -9, a
    restart whose shutdown never ran), and connections with no process recorded at all."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=PROCESS_STALE_AFTER_S)
    # On this host a process's own pid says whether it lives, at once and better than its
    # heartbeat: a dead one (kill -9, a crash) goes without waiting for its heartbeat to age, and
    # a live one whose heartbeat is late (a process starved by a restart storm) keeps its
    # connections, which its sockets still hold.
    live_here: set[str] = set()
    for key, pid, started_at in (
        OcppServerProcess.objects.filter(hostname=socket.gethostname())
        .exclude(key=own_key)
        .values_list("key", "pid", "started_at")
    ):
        running = same_process_alive(pid, started_at)
        if running is False:
            OcppServerProcess.objects.filter(key=key).delete()
        elif running:
            live_here.add(key)
    OcppServerProcess.objects.filter(heartbeat_at__lt=cutoff).exclude(
        key__in=live_here | {own_key}
    ).delete()
    alive = set(OcppServerProcess.objects.values_list("key", flat=True)) | {own_key}
    stale = Charger.objects.exclude(connection_id="").exclude(connection_process__in=alive)
    _proxy_links_down(stale.filter(proxied=True), now)
    return stale.update(connection_id="", connection_process="", disconnected_at=now)


# Seconds between a process's start as the kernel counts it (whole seconds since boot, in clock
# ticks) and the wall clock's `started_at` it registered with, either way.
_START_SLACK_S = 2.0


def same_process_alive(pid: int, started_at: datetime) -> bool | None:
    """Whether `pid` on this host is still the process that registered at `started_at`: False
    when no process has that pid, or when the one that has it started after (a pid used again,
    as a restarted container does from the same low numbers); None when this host cannot say
    (no /proc: another user's process, or not Linux), and the heartbeat decides."""
    if pid <= 0:  # 0 and below name process groups, not a process: no registration holds one
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: beyond any pid this OS gives
        return False
    except PermissionError:  # alive, another user's
        return None
    created = _process_start(pid)
    if created is None:
        return None
    return created <= started_at.timestamp() + _START_SLACK_S


def _process_start(pid: int) -> float | None:
    """When `pid` started, in seconds since the epoch, from /proc (Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # Field 22 (starttime, clock ticks after boot); the command name, field 2, may hold
            # spaces and parentheses, so count from its closing parenthesis.
            ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    except (OSError, ValueError, IndexError, StopIteration):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _proxy_links_down(chargers: QuerySet[Charger], now: datetime) -> None:
    """The proxy's upstream links live in the process that held the charger's socket: they are
    down when it is (docs/proxy.md)."""
    Backoffice.objects.filter(charger__in=chargers).exclude(
        status=Backoffice.Status.DISCONNECTED
    ).update(status=Backoffice.Status.DISCONNECTED, disconnected_at=now)

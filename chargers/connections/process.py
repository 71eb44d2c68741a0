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
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from backoffice import db
from chargers.models import Backoffice, Charger, OcppServerProcess
from chargers.plumbing.journal import journal
from chargers.sessions import replay

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 15.0

HOSTNAME = socket.gethostname()
KEY = f"{HOSTNAME[:30]}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
STARTED_AT: datetime = timezone.now()

_heartbeat: asyncio.Task[None] | None = None


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


async def _heartbeat_loop() -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        try:
            await _beat()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database may be away; the next beat tries again
            logger.warning("Server process heartbeat failed: %s", exc)


async def start() -> None:
    """Register this process, clear stale connections, replay journals of stopped processes."""
    global _heartbeat
    journal.configure(replay.journal_apply, KEY)
    try:
        await _beat()
    except Exception as exc:
        logger.error("Could not register the server process (database unavailable?): %s", exc)
    _heartbeat = asyncio.get_running_loop().create_task(
        _heartbeat_loop(), name="ocpp-process-heartbeat"
    )


async def stop() -> None:
    """Mark every connection of this process closed (after the sockets were drained)."""
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.cancel()
        _heartbeat = None
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
    import os
    import socket

    now = timezone.now()
    cutoff = now - timedelta(seconds=PROCESS_STALE_AFTER_S)
    OcppServerProcess.objects.filter(heartbeat_at__lt=cutoff).exclude(key=own_key).delete()
    # On this host a dead process is known at once (kill -9, a crash): no need to wait for
    # its heartbeat to age.
    hostname = socket.gethostname()
    for key, pid in (
        OcppServerProcess.objects.filter(hostname=hostname)
        .exclude(key=own_key)
        .values_list("key", "pid")
    ):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            OcppServerProcess.objects.filter(key=key).delete()
        except PermissionError:  # alive, another user's
            pass
    alive = set(OcppServerProcess.objects.values_list("key", flat=True)) | {own_key}
    stale = Charger.objects.exclude(connection_id="").exclude(connection_process__in=alive)
    _proxy_links_down(stale.filter(proxied=True), now)
    return stale.update(connection_id="", connection_process="", disconnected_at=now)


def _proxy_links_down(chargers: QuerySet[Charger], now: datetime) -> None:
    """The proxy's upstream links live in the process that held the charger's socket: they are
    down when it is (docs/proxy.md)."""
    Backoffice.objects.filter(charger__in=chargers).exclude(
        status=Backoffice.Status.DISCONNECTED
    ).update(status=Backoffice.Status.DISCONNECTED, disconnected_at=now)

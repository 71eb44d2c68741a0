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
from datetime import datetime

from django.utils import timezone

from backoffice import db
from chargers import services
from chargers.journal import journal

logger = logging.getLogger(__name__)

HEARTBEAT_EVERY_S = 15.0

HOSTNAME = socket.gethostname()
KEY = f"{HOSTNAME[:30]}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
STARTED_AT: datetime = timezone.now()

_heartbeat: asyncio.Task[None] | None = None


async def _beat() -> None:
    await db.run(
        services.server_process_heartbeat,
        key=KEY,
        hostname=HOSTNAME,
        pid=os.getpid(),
        started_at=STARTED_AT,
    )
    cleared = await db.run(services.connections_clear_dead_processes, own_key=KEY)
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
    journal.configure(services.journal_apply, KEY)
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
        cleared = await db.run(services.server_process_stopped, key=KEY)
        logger.info(
            "Server process stopping: %d charger connection(s) marked disconnected", cleared
        )
    except Exception as exc:
        logger.error(
            "Could not mark this process's connections closed (cleared at next start): %s", exc
        )

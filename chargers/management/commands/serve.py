"""Serve HTTP, the API and the OCPP websocket endpoint with uvicorn; optionally simulate chargers."""

import asyncio
import logging
import os
import sys

import uvicorn
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the ASGI server (uvicorn) on 127.0.0.1:$PORT; SIMULATE=N also connects N demo chargers."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--simulate", type=int, default=int(os.environ.get("SIMULATE", "0") or 0))

    def handle(self, *args, **options):
        # The event loop releases the GIL on every socket call; with database threads busy it
        # then waits up to the switch interval (5 ms by default) to get it back (convoy effect).
        interval = float(os.environ.get("GIL_SWITCH_INTERVAL_MS", "0") or 0)
        if interval > 0:
            sys.setswitchinterval(interval / 1000)
        config = uvicorn_config(options["host"], options["port"])
        server = uvicorn.Server(config)
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_serve(server, options["host"], options["port"], options["simulate"], self.stdout))


def _loop_factory():
    """uvloop when installed (uvicorn.run would pick it too; asyncio.run does not)."""
    if os.environ.get("ASYNCIO_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop

            return uvloop.new_event_loop
        except ImportError:
            pass
    return None


def uvicorn_config(host: str, port: int, **overrides) -> uvicorn.Config:
    kwargs = dict(
        host=host, port=port, lifespan="on", ws=os.environ.get("UVICORN_WS", "websockets"),
        ws_ping_interval=30, ws_ping_timeout=30, ws_max_size=1024 * 1024,
        # OCPP frames are small; a deflate context per charger costs ~100 KB+ of RSS each.
        ws_per_message_deflate=False,
        log_level=os.environ.get("UVICORN_LOG_LEVEL", "warning"),
        backlog=4096, timeout_graceful_shutdown=10, proxy_headers=bool(os.environ.get("BEHIND_TLS_PROXY")),
    )
    kwargs.update(overrides)
    return uvicorn.Config("portal.asgi:application", **kwargs)


async def _serve(server, host, port, simulate, stdout):
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    stdout.write(f"Serving on http://{host}:{port}/  (admin /admin/, API /api/v1/, OCPP ws://{host}:{port}/ocpp/<station_id>)")
    sims = []
    if simulate and server.started:
        from chargers.simulator import SimulatedCharger

        for n in range(1, simulate + 1):
            sim = SimulatedCharger(
                url=f"ws://{host}:{port}/ocpp", station_id=f"DEMO-{n:03d}", connectors=2,
                id_tags=["DEMO-CARD-1", "DEMO-CARD-2", "04A1B2C3D4"], meter_interval=5,
                session_seconds=(40, 120), idle_seconds=(5, 30),
            )
            sims.append(asyncio.create_task(sim.run()))
        stdout.write(f"Simulating {simulate} charger(s): DEMO-001..DEMO-{simulate:03d} (SIMULATE=0 turns them off)")
    try:
        await serving
    finally:
        for task in sims:
            task.cancel()

"""Serve HTTP, the API and the OCPP websocket endpoint with uvicorn; optionally simulate chargers."""

import asyncio
import logging
import sys

import uvicorn
from django.core.management.base import BaseCommand

from backoffice import listen
from backoffice.env import env_bool, env_float, env_int, env_str

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the ASGI server (uvicorn) on 127.0.0.1:$PORT; SIMULATE=N also connects N demo chargers."
    # Django's system checks run once per deploy, with `migrate` (the README's production steps,
    # `make run`), not again in each server process: they took 0.6 s of every start, and a
    # restart's reconnecting chargers waited for it (docs/performance.md, "Session 8").
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        # The same options manage.py read to listen early (backoffice/listen.py).
        host, port = listen.address([])
        parser.add_argument("--host", default=host)
        parser.add_argument("--port", type=int, default=port)
        parser.add_argument("--simulate", type=int, default=env_int("SIMULATE", 0))

    def handle(self, *args, **options):
        # The event loop releases the GIL on every socket call; with database threads busy it
        # then waits up to the switch interval (5 ms by default) to get it back (convoy effect).
        interval = env_float("GIL_SWITCH_INTERVAL_MS", 0.0)
        if interval > 0:
            sys.setswitchinterval(interval / 1000)
        _return_large_allocations_to_the_os()
        tune_garbage_collector()
        config = uvicorn_config(options["host"], options["port"])
        server = OcppServer(config)
        # Listening since before Django loaded (manage.py), or None: uvicorn binds it.
        sock = listen.take(options["host"], options["port"])
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(
                _serve(
                    server, options["host"], options["port"], options["simulate"], self.stdout, sock
                )
            )


class OcppServer(uvicorn.Server):
    """uvicorn, with OCPP sockets drained before it closes them on SIGTERM.

    uvicorn's own shutdown fails every open websocket at once; a frame a charger had just sent
    was then stored but never answered. Here listening stops first, every charger's frame in
    progress is answered, and each socket is closed with 1012 (service restart).
    """

    async def shutdown(self, sockets=None) -> None:
        from chargers.connections.consumer import drain

        for server in self.servers:
            server.close()  # no new connections while draining
        try:
            drained = await drain()
            logger.info("Drained %d charger socket(s) before shutdown", drained)
        except Exception:
            logger.exception("Draining charger sockets failed")
        await super().shutdown(sockets=sockets)
        # Here, not after serve() returns: uvicorn raises the SIGTERM it caught again once
        # serve() ends, and the default handler ends the process on the spot.
        from backoffice import metrics

        metrics.process_exit()  # its per-process gauges leave the other processes' scrapes


def _return_large_allocations_to_the_os() -> None:
    """Serve large frames from mmap, so memory they used goes back to the OS once freed.

    glibc raises its mmap threshold after the first large free (up to 32 MB): later 1 MB frames
    then come from the heap, which fragments and never shrinks. A fixed threshold keeps the
    process's memory bounded under large frames (docs/performance.md, "Memory").
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold = -3
        libc.mallopt(m_mmap_threshold, 128 * 1024)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def tune_garbage_collector() -> None:
    """Choose when the cyclic garbage collector runs (GC_MODE, docs/performance.md "Fleet").

    With 10,000 chargers the process holds millions of long-lived objects, and CPython's
    automatic full collections, triggered by allocation counts, stop the event loop for up to
    seconds at unpredictable moments (fleet p99 2.6 s; 0.7 s with the collector off).
    "scheduled" (default): automatic collection off; the young generations are collected every
    second (cheap, they hold today's garbage) and a full collection runs every GC_FULL_EVERY_S
    (600 s), timed and logged. "default": CPython's own thresholds. "off": measurement only.
    """
    import gc

    mode = env_str("GC_MODE", "scheduled")
    if mode in ("off", "scheduled"):
        gc.disable()


async def _collect_garbage_on_schedule(server: uvicorn.Server) -> None:
    """GC_MODE=scheduled's collections, until the server is told to stop: a stopping process
    frees ten thousand connections' objects, and collecting them took ~20 % of a SIGTERM."""
    import gc
    import time

    if env_str("GC_MODE", "scheduled") != "scheduled":
        return
    full_every = env_float("GC_FULL_EVERY_S", 600.0)
    last_full = time.monotonic()
    while not server.should_exit:
        await asyncio.sleep(1.0)
        if server.should_exit:
            return
        if time.monotonic() - last_full >= full_every:
            started = time.perf_counter()
            found = gc.collect()
            last_full = time.monotonic()
            logger.info(
                "Full garbage collection: %d unreachable objects, %.0f ms",
                found,
                1000 * (time.perf_counter() - started),
            )
        else:
            gc.collect(1)


async def _sample_metrics(server: uvicorn.Server) -> None:
    """In prometheus_client's multiprocess mode another process may answer a scrape: keep this
    process's gauges (connected chargers, buffers, pools) fresh in its files meanwhile; the
    process that answers samples its own at the scrape (backoffice/metrics.py)."""
    from django.conf import settings

    from backoffice import metrics

    if not metrics.multiproc_dir():
        return
    while not server.should_exit:
        metrics.sample()
        await asyncio.sleep(settings.METRICS_SAMPLE_SECONDS)


def _loop_factory():
    """uvloop when installed (uvicorn.run would pick it too; asyncio.run does not)."""
    if env_str("ASYNCIO_LOOP", "uvloop") == "uvloop":
        try:
            import uvloop

            return uvloop.new_event_loop
        except ImportError:
            pass
    return None


def _websocket_protocol(name: str) -> str | type:
    """uvicorn's sans-I/O websockets with the shutdown that survives a closing peer
    (chargers/connections/uvicorn_protocol.py); any other name is uvicorn's own."""
    if name != "websockets-sansio":
        return name
    from chargers.connections.uvicorn_protocol import ChargerWebSocketProtocol

    return ChargerWebSocketProtocol


def uvicorn_config(host: str, port: int, **overrides) -> uvicorn.Config:
    kwargs = dict(
        host=host,
        port=port,
        lifespan="on",
        ws=_websocket_protocol(env_str("UVICORN_WS", "websockets-sansio")),
        # A socket whose peer vanished without a close (a silent network drop leaves it
        # half-open) is found by its unanswered ping and closed: ping every 30 s, closed when no
        # pong came within 30 s (then up to 10 s for the close). 30 s tolerates a mobile link's
        # and a busy event loop's delays; ~333 pings/s at 10,000 chargers cost nothing.
        ws_ping_interval=env_float("WS_PING_INTERVAL_S", 30.0),
        ws_ping_timeout=env_float("WS_PING_TIMEOUT_S", 30.0),
        ws_max_size=1024 * 1024,
        # Frames read ahead per socket (each up to ws_max_size): a charger that floods waits in
        # TCP, not in our memory.
        ws_max_queue=4,
        # OCPP frames are small; a deflate context per charger costs ~100 KB+ of RSS each.
        ws_per_message_deflate=False,
        log_level=env_str("UVICORN_LOG_LEVEL", "warning"),
        backlog=4096,
        timeout_graceful_shutdown=10,
        proxy_headers=env_bool("BEHIND_TLS_PROXY", False),
    )
    kwargs.update(overrides)
    return uvicorn.Config("portal.asgi:application", **kwargs)


async def _serve(server, host, port, simulate, stdout, sock=None):
    collector = asyncio.create_task(_collect_garbage_on_schedule(server))
    sampler = asyncio.create_task(_sample_metrics(server))
    serving = asyncio.create_task(server.serve(sockets=[sock] if sock is not None else None))
    while not server.started and not serving.done():
        await asyncio.sleep(0.05)
    stdout.write(
        f"Serving on http://{host}:{port}/  (admin /admin/, API /api/v1/, OCPP ws://{host}:{port}/ocpp/<station_id>)"
    )
    beat = _start_in_process_beat(server, stdout) if server.started else None
    sims = []
    if simulate and server.started:
        from django.conf import settings

        from chargers.management.simulator import DEMO_CARDS, demo_password, make_simulator

        for n in range(1, simulate + 1):
            # The last one speaks OCPP 2.0.1 beside the 1.6 ones (when there are two or more).
            protocol = "2.0.1" if n == simulate and simulate > 1 else "1.6"
            sim = make_simulator(
                protocol,
                url=f"ws://{host}:{port}/ocpp",
                station_id=f"DEMO-{n:03d}",
                connectors=2,
                password=demo_password(settings.SECRET_KEY, f"DEMO-{n:03d}"),  # set by load_demo
                id_tags=list(DEMO_CARDS),
                meter_interval=5,
                session_seconds=(40, 120),
                idle_seconds=(5, 30),
            )
            sims.append(asyncio.create_task(sim.run()))
        stdout.write(
            f"Simulating {simulate} charger(s): DEMO-001..DEMO-{simulate:03d}"
            f"{f' (DEMO-{simulate:03d} speaks OCPP 2.0.1)' if simulate > 1 else ''} (SIMULATE=0 turns them off)"
        )
    try:
        await serving
    finally:
        collector.cancel()
        sampler.cancel()
        for task in sims:
            task.cancel()
        if beat is not None:
            # server.should_exit is set: the beat stops its loop and gives up its lease.
            await asyncio.wait([beat], timeout=10)


def _start_in_process_beat(server: uvicorn.Server, stdout) -> asyncio.Task | None:
    """Without a broker no `celery beat` runs: run its schedule here (backoffice/beat.py)."""
    from django.conf import settings

    if not settings.IN_PROCESS_BEAT:
        return None
    from backoffice.beat import from_settings

    beat = from_settings()
    stdout.write(
        f"Running the {len(beat.entries)} periodic tasks in this process (no Celery broker; "
        "one process per database runs them)"
    )
    return asyncio.create_task(beat.run(lambda: server.should_exit))

"""Start, measure and stop the servers under test (each a subprocess)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

from backoffice import listen
from backoffice.env import env_bool

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# Own database names (BENCH_DB) so a smoke run in the test suite never drops a running bench.
BENCH_DB = os.environ.get("BENCH_DB", "bench_evportal")
PG_ROOT = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# The servers' outage journal: the bench's own, emptied with the per-run tables (a journal left by
# an earlier run belongs to a database that was since reset, and a start would replay it first).
# BENCH_JOURNAL_DIR: a run of its own (the test suite's smoke runs side by side) keeps its own.
JOURNAL_DIR = Path(os.environ.get("BENCH_JOURNAL_DIR") or ROOT / "bench" / "results" / "journal")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(
    database: str = BENCH_DB, *, redis: bool | None = None, **extra: object
) -> dict[str, str]:
    if redis is None:
        redis = env_bool("BENCH_REDIS", True)
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG_ROOT}/{database}" + os.environ.get("BENCH_DB_QUERY", ""),
        "DEBUG": "false",
        "ALLOW_SANDBOX_PAYMENTS": "true",  # no real payments in this run
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "LOG_LEVEL": "WARNING",
        "UVICORN_LOG_LEVEL": "warning",
        "SECURE_COOKIES": "false",
        "CONN_MAX_AGE": "600",
        "DB_POOL": os.environ.get("BENCH_DB_POOL", "true"),  # the production shape
        "CHANNEL_LAYER_PREFIX": BENCH_DB,
        "CACHE_PREFIX": BENCH_DB,
        "PYTHONUNBUFFERED": "1",
        "OCPP_JOURNAL_DIR": str(JOURNAL_DIR),
    }
    if redis:
        env["REDIS_URL"] = REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


# Our application, under uvicorn (manage.py serve) or another ASGI server: these need the
# bench database, and their transaction messages are checked.
# "ours-cluster" is the README's production shape on one host: deploy/cluster.sh, one process per
# core (BENCH_CLUSTER_PROCS to override) behind HAProxy (deploy/haproxy/ocpp-cluster.cfg).
OURS = ("ours", "ours-held", "ours-sansio", "daphne", "granian", "hypercorn", "ours-cluster")
N = TypeVar("N", int, float)  # a measure: bytes (RSS) or seconds (CPU)
CLUSTER_PROCS = int(os.environ.get("BENCH_CLUSTER_PROCS") or os.cpu_count() or 2)


class Server:
    """One server process: ours (uvicorn or daphne), the peer or an echo."""

    def __init__(
        self,
        kind: str,
        port: int | None = None,
        env: dict | None = None,
        log_dir: Path | None = None,
    ):
        self.kind, self.port = kind, port or free_port()
        self.env = env or dict(os.environ)
        self.log_path = (log_dir or ROOT / "bench" / "results") / f"server-{kind}-{self.port}.log"
        self.proc: subprocess.Popen | None = None
        self.held: socket.socket | None = None  # ours-held: the listening socket kept across starts

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        port = str(self.port)
        return {
            "ours": [PY, "manage.py", "serve", "--port", port, "--simulate", "0"],
            # Ours as deploy/systemd runs it: the listening socket is held by whoever starts the
            # process (systemd there, this harness here) and handed over as LISTEN_FDS, so it
            # outlives a restart and reconnecting chargers wait in its accept queue.
            "ours-held": [PY, "manage.py", "serve", "--port", port, "--simulate", "0"],
            "daphne": [
                str(Path(PY).parent / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                port,
                "--verbosity",
                "0",
                "portal.asgi:application",
            ],
            "peer": [PY, "-m", "bench.peer_ocpp", "--port", port],
            "echo": [PY, "-m", "bench.echo", "--port", port],
            "echo-asgi": [PY, "-m", "bench.echo", "--asgi", "--port", port],
            # The same application under other ASGI servers (server choice by measurement).
            "ours-sansio": [PY, "manage.py", "serve", "--port", port, "--simulate", "0"],
            "granian": [
                str(Path(PY).parent / "granian"),
                "--interface",
                "asgi",
                "--host",
                "127.0.0.1",
                "--port",
                port,
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--log-level",
                "warning",
                "portal.asgi:application",
            ],
            "hypercorn": [
                str(Path(PY).parent / "hypercorn"),
                "-b",
                f"127.0.0.1:{port}",
                "-k",
                "uvloop",
                "--backlog",
                "4096",
                "--log-level",
                "warning",
                "portal.asgi:application",
            ],
            "ours-cluster": ["bash", "deploy/cluster.sh", str(CLUSTER_PROCS)],
        }[self.kind]

    def start(self, timeout: float = 60) -> float:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        started = time.monotonic()
        command = self.command()
        keep: tuple[int, ...] = ()
        if self.kind == "ours-held":
            command, keep = self._activated(command)
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_raise_nofile,
            pass_fds=keep,
        )
        log.close()
        # HAProxy listens last, once every process does (deploy/cluster.sh).
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} exited with {self.proc.returncode}; see {self.log_path}"
                )
            # Answering, not only accepting: ours listens before Django loads (backoffice/listen.py).
            if listen.serving("127.0.0.1", self.port, timeout=30):
                return time.monotonic() - started
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.kind} did not answer within {timeout} s")

    def _activated(self, command: list[str]) -> tuple[list[str], tuple[int, ...]]:
        """`command` started as systemd's socket activation starts it: the socket this harness
        holds (bound once, kept across restarts) as descriptor 3, LISTEN_FDS=1 and LISTEN_PID
        the process's own pid (bash's `$$`, kept by `exec`)."""
        if self.held is None:
            self.held = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.held.bind(("127.0.0.1", self.port))
            self.held.listen(listen.BACKLOG)
        fd = self.held.fileno()
        move = "" if fd == 3 else f"exec 3<&{fd} {fd}<&-; "
        script = move + 'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@"'
        return ["bash", "-c", script, "bash", *command], (fd,)

    def release(self) -> None:
        """Close the held listening socket (ours-held): after the last start."""
        if self.held is not None:
            self.held.close()
            self.held = None

    def _processes(self) -> list[psutil.Process]:
        if self.proc is None:  # not started: nothing to measure (as terminate and kill)
            return []
        try:
            parent = psutil.Process(self.proc.pid)
            return [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        return sum(_safe(lambda p: p.memory_info().rss, p) for p in self._processes())

    def cpu_seconds(self) -> float:
        return sum(_safe(lambda p: sum(p.cpu_times()[:2]), p) for p in self._processes())

    def terminate(self, timeout: float = 60) -> float:
        """SIGTERM and wait; return how long the graceful shutdown took."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _safe(fn: Callable[[psutil.Process], N], proc: psutil.Process) -> N:
    try:
        return fn(proc)
    except psutil.Error:
        return 0


def _raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

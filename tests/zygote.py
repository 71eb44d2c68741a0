"""One forking parent per pytest worker for the servers its tests start.

A test's server (`manage.py serve`, tests/conftest.py start_live_server) spent about 1.6 CPU-s
starting, most of it importing Django, DRF, uvicorn, psycopg, httpx, cryptography, Celery and the
`ocpp` schemas, and a run starts about a hundred. Here a process per worker imports those packages
once (only modules that read no setting and no environment at import: Django's settings are not
configured in it) and each server is a `fork()` of it that then runs `manage.py` as `python
manage.py` would, with its own environment, working directory and log. What the server does is
unchanged: it configures Django from its own environment, imports the project's apps, binds its
port and ends as a fresh process would (a SIGTERM ends it with -15). docs/testing.md, "A server's
start".

The parent (the zygote) runs single-threaded: it forks only from its main loop, reaps its
children on SIGCHLD and reports each one's exit status to the worker. The worker signals a server
through a pidfd (never a recycled pid) and waits for its status as it would a child's
(`ZygoteProcess`, the part of `subprocess.Popen` the tests use). When the worker goes, the zygote
kills what it started and exits.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

# Imported once in the zygote. Each must be importable without Django's settings (a module that
# reads them at import fails there and is left to the server, which imports it as before).
PRELOAD = (
    "django.core.management",
    "django.core.handlers.asgi",
    "django.db.models",
    "django.db.backends.postgresql.base",
    "django.db.backends.sqlite3.base",
    "django.contrib.admin",
    "django.contrib.auth.hashers",
    "django.forms",
    "django.template.defaulttags",
    "django.template.loader_tags",
    "django.urls",
    "django.views.generic",
    "django.test",
    "rest_framework.serializers",
    "rest_framework.fields",
    "rest_framework.request",
    "rest_framework.response",
    "drf_spectacular",
    "django_filters",
    "channels.generic.websocket",
    "channels.layers",
    "channels.auth",
    "channels_redis.core",
    "uvicorn.main",
    "uvicorn.config",
    "uvicorn.protocols.websockets.websockets_impl",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "websockets.legacy.server",
    "ocpp.v16",
    "ocpp.v201",
    "ocpp.v21",
    "ocpp.messages",
    "jsonschema",
    "httpx",
    "psycopg",
    "psycopg_pool",
    "redis.asyncio",
    "celery.app",
    "kombu",
    "cryptography.x509",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.asymmetric.rsa",
    "cryptography.hazmat.primitives.serialization",
    "babel.numbers",
    "babel.dates",
    "icalendar",
    "yaml",
    "allauth.account",
    "whitenoise",
    "email.mime.multipart",
    "xml.etree.ElementTree",
    "csp",
    "axes",
)


# Variables a module reads when it is imported (prometheus_client's multiprocess mode, websockets'
# and kombu's limits, psycopg's wait function, the interpreter's own): a server whose environment
# sets one differently from the zygote's starts as a new interpreter instead (`suits`).
IMPORT_TIME_ENV = (
    "PROMETHEUS_MULTIPROC_DIR",
    "prometheus_multiproc_dir",
    "WEBSOCKETS_",
    "KOMBU_",
    "PSYCOPG_",
    "PYTHON",
    "MP_LOG",
    "FORKED_BY_MULTIPROCESSING",
    "DISABLE_TRACEBACKS",
    "PICKLE_PROTOCOL",
)


def forkable(env: dict[str, str], zygote_env: dict[str, str]) -> bool:
    """Whether a process with `env` may fork from a zygote started with `zygote_env`: every
    import-time variable the same."""
    names = {k for k in {*env, *zygote_env} if k.startswith(IMPORT_TIME_ENV)}
    return all(env.get(k) == zygote_env.get(k) for k in names)


# -- the zygote process ----------------------------------------------------------------------------


def _preload() -> None:
    import importlib
    import warnings

    os.environ.pop("DJANGO_SETTINGS_MODULE", None)  # any settings read fails here, loudly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the server's own import would print them to its log
        for name in PRELOAD:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - left to the server to import
                continue


def _child(request: dict[str, Any], close: list[int]) -> None:
    """In the fork: become `python <argv>` with the request's environment; never returns."""
    code: Any = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in close:
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        # As `python manage.py ...`: argv[0] as given, __file__ and sys.path[0] absolute.
        script = Path(request["cwd"], request["argv"][0]).resolve()
        sys.argv = list(request["argv"])
        sys.path[0] = str(script.parent)
        import runpy

        runpy.run_path(str(script), run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - nothing left to tell
                pass
        os._exit(code or 0)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        _send(sock, {"exited": pid, "returncode": code, "cpu": usage.ru_utime + usage.ru_stime})


def serve(fd: int) -> None:
    """The zygote's loop: a request per line on the socket, a fork per request."""
    import gc
    import selectors

    _preload()
    # What was imported stays: no collection in a server walks it again or copies its pages.
    gc.freeze()
    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop through the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when it ends
    children: set[int] = set()
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    buffer = b""
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj == wake_r:
                    os.read(wake_r, 4096)
                    _reap(sock, children)
                    continue
                data = sock.recv(65536)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    request = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        selector.close()
                        _child(request, [sock.fileno(), wake_r, wake_w])
                    children.add(pid)
                    _send(sock, {"spawned": pid})
            _reap(sock, children)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


# -- the worker's side -----------------------------------------------------------------------------


class ZygoteProcess:
    """A server the zygote forked: what the tests use of `subprocess.Popen`."""

    def __init__(self, zygote: Zygote, pid: int, args: list[str]) -> None:
        self.zygote = zygote
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:  # already ended (and reaped): its status is on its way
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.zygote.status(self.pid)
            if self.returncode is not None:
                self._close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            code = self.zygote.wait(self.pid, timeout)
            if code is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode = code
            self._close()
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None and self._pidfd is not None:
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _close(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class Zygote:
    """The worker's end: starts the zygote, asks it for servers, keeps their exit statuses."""

    def __init__(self, cwd: Path) -> None:
        ours, theirs = socket.socketpair()
        self.env = dict(os.environ)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.zygote", str(theirs.fileno())],
            cwd=cwd,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()  # one spawn request at a time
        self.changed = threading.Condition()
        self.spawned: list[int] = []
        self.exited: dict[int, int] = {}
        self.cpu: dict[int, float] = {}  # CPU-s of each ended child (docs/testing.md's figures)
        self.gone = False
        threading.Thread(target=self._read, name="zygote-reader", daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        while True:
            data = self.sock.recv(65536)
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                with self.changed:
                    if "spawned" in message:
                        self.spawned.append(message["spawned"])
                    else:
                        self.exited[message["exited"]] = message["returncode"]
                        self.cpu[message["exited"]] = message["cpu"]
                    self.changed.notify_all()
        with self.changed:
            self.gone = True
            self.changed.notify_all()

    def suits(self, env: dict[str, str]) -> bool:
        return forkable(env, self.env)

    def spawn(self, argv: list[str], *, env: dict[str, str], cwd: Path, log: str) -> ZygoteProcess:
        with self.lock:
            _send(self.sock, {"argv": argv, "env": env, "cwd": str(cwd), "log": log})
            with self.changed:
                if not self.changed.wait_for(lambda: self.spawned or self.gone, timeout=60):
                    raise RuntimeError("the server zygote did not fork within 60 s")
                if not self.spawned:
                    raise RuntimeError("the server zygote has gone")
                pid = self.spawned.pop(0)
        return ZygoteProcess(self, pid, [sys.executable, *argv])

    def status(self, pid: int) -> int | None:
        with self.changed:
            return self._status(pid)

    def _status(self, pid: int) -> int | None:
        if pid in self.exited:
            return self.exited[pid]
        if self.gone:  # its children were killed with it (serve's finally)
            return -signal.SIGKILL
        return None

    def wait(self, pid: int, timeout: float | None) -> int | None:
        with self.changed:
            self.changed.wait_for(lambda: self._status(pid) is not None, timeout=timeout)
            return self._status(pid)

    def close(self) -> None:
        # shutdown, not only close: the reader thread's recv holds the socket open (no FIN).
        self.sock.shutdown(socket.SHUT_RDWR)  # the zygote kills its children and ends
        self.sock.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_zygote: list[Zygote] = []


def zygote(cwd: Path) -> Zygote:
    """This process's zygote, started on first use."""
    if not _zygote or _zygote[0].gone:
        _zygote[:] = [Zygote(cwd)]
    return _zygote[0]


def close() -> None:
    if _zygote:
        _zygote.pop().close()


if __name__ == "__main__":
    serve(int(sys.argv[1]))

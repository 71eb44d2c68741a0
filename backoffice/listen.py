"""The `serve` command's listening socket, open before Django starts (issue 48).

A restarting server used to listen only once Django and the application were loaded (seconds
on a busy machine). Every charger that reconnected meanwhile was refused, and a refused charger
waits out a back-off that doubles on each refusal, so a fleet came back long after the server
did. `manage.py serve` therefore binds and listens first, before anything else is imported: a
charger that connects during the start-up waits in the kernel's accept queue (`BACKLOG`) and is
answered as soon as the application runs. A socket handed over by systemd socket activation
(`LISTEN_FDS`, deploy/systemd/) is taken instead: that one outlives the restart itself.

Only the standard library and backoffice.env are imported here: this runs before Django is set up.
"""

from __future__ import annotations

import argparse
import os
import socket

from backoffice.env import env_int, env_str

# The kernel's accept queue for the connections that arrive before the application accepts
# them (capped by net.core.somaxconn, 4096 on current kernels).
BACKLOG = 4096
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# systemd's socket activation hands its sockets over from this descriptor on (sd_listen_fds).
SD_LISTEN_FDS_START = 3

_early: socket.socket | None = None


def address(argv: list[str]) -> tuple[str, int]:
    """The host and port `serve` will listen on, read as its own options are (HOST, PORT)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default=env_str("HOST", DEFAULT_HOST))
    parser.add_argument("--port", type=int, default=env_int("PORT", DEFAULT_PORT))
    known, _ = parser.parse_known_args(argv)
    return known.host, known.port


def listen_early(argv: list[str]) -> None:
    """Open the listening socket of `manage.py serve <argv>` now; `take()` hands it to uvicorn.

    A socket that cannot be opened here (the port taken, say) is left to uvicorn, which reports
    it the way it always has."""
    global _early
    try:
        _early = _activated() or _bind(*address(argv))
    except (OSError, ValueError):
        _early = None


def take(host: str, port: int) -> socket.socket | None:
    """The socket opened early for host:port (once), or None: uvicorn then binds it itself."""
    global _early
    sock, _early = _early, None
    if sock is None:
        return None
    if sock.fileno() == SD_LISTEN_FDS_START or _same_address(sock, host, port):
        return sock
    sock.close()  # opened for another address than the command ended up with
    return None


def _activated() -> socket.socket | None:
    """The first socket systemd passed to this process (LISTEN_PID is ours), if any."""
    if env_str("LISTEN_PID") != str(os.getpid()) or env_int("LISTEN_FDS", 0) < 1:
        return None
    return socket.socket(fileno=SD_LISTEN_FDS_START)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _same_address(sock: socket.socket, host: str, port: int) -> bool:
    bound = sock.getsockname()
    try:
        wanted = socket.getaddrinfo(host, port, sock.family, socket.SOCK_STREAM)[0][4]
    except OSError:
        return False
    return bound[:2] == wanted[:2]


def serving(host: str, port: int, timeout: float = 10.0) -> bool:
    """Whether the server on host:port answers HTTP (any status), not only accepts: a socket
    opened early accepts long before the application answers. For whoever starts a server
    and must know when it serves (the tests, the bench, a deploy's health check)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(
                b"HEAD / HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n"
            )
            return conn.recv(5) == b"HTTP/"
    except OSError:
        return False

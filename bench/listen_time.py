"""How long after exec `manage.py serve` accepts TCP connections (its early socket,
backoffice/listen.py): the part of a restart during which reconnecting chargers are refused.

    python -m bench.listen_time [--starts 5] [--port 23470]

Starts the server `--starts` times (SQLite unless DATABASE_URL is set; nothing is served, the
socket only has to accept), connects every 5 ms from the exec on and prints the seconds to the
first accepted connection of each start.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seconds_to_listening(port: int) -> float:
    env = {**os.environ, "DEBUG": "true", "PYTHONDONTWRITEBYTECODE": ""}
    argv = [sys.executable, "manage.py", "serve", "--port", str(port), "--simulate", "0"]
    start = time.monotonic()
    server = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return time.monotonic() - start
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("the server exited before it listened") from None
                time.sleep(0.005)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--port", type=int, default=23470)
    args = parser.parse_args()
    found = [seconds_to_listening(args.port) for _ in range(args.starts)]
    print("exec -> listening (s):", ", ".join(f"{value:.3f}" for value in found))


if __name__ == "__main__":
    main()

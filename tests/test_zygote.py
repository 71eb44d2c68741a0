"""The servers' forking parent (tests/zygote.py): each fork runs as a fresh `python script` would,
with its own environment, and the worker learns how it ended."""

from __future__ import annotations

import os
import select
import signal
from pathlib import Path

from tests import zygote

SCRIPT = """
import os, sys, time
print(os.environ["WHO"], sys.argv[1:], __file__, sys.path[0], "django.conf" in sys.modules)
sys.stdout.flush()
if sys.argv[1] == "wait":
    time.sleep(300)
sys.exit(int(sys.argv[1]))
"""


def _run(tmp_path: Path, z: zygote.Zygote, *args: str, who: str) -> zygote.ZygoteProcess:
    script = tmp_path / "script.py"
    if not script.exists():  # written once: a rewrite truncates it under a fork still reading it
        script.write_text(SCRIPT)
    log = tmp_path / f"{who}.log"
    log.touch()
    return z.spawn(["script.py", *args], env={"WHO": who}, cwd=tmp_path, log=str(log))


def test_a_fork_runs_the_script_with_its_own_environment_and_reports_its_exit(tmp_path):
    # The worker's own zygote, the one its servers are forked from (its preload is paid once a
    # worker; the test below starts and closes one of its own).
    z = zygote.zygote(Path(__file__).resolve().parent.parent)
    first = _run(tmp_path, z, "3", who="first")
    second = _run(tmp_path, z, "0", who="second")
    assert first.wait(timeout=60) == 3
    assert second.wait(timeout=60) == 0 and second.poll() == 0
    script = tmp_path / "script.py"
    # Django preloaded (and settings never read there), the script as `python script.py 3`.
    assert (tmp_path / "first.log").read_text().split() == [
        "first",
        "['3']",
        str(script),
        str(tmp_path),
        "True",
    ]
    assert (tmp_path / "second.log").read_text().split()[0] == "second"


def test_a_signal_ends_a_fork_as_it_would_a_child_and_closing_ends_the_rest(tmp_path):
    z = zygote.Zygote(Path(__file__).resolve().parent.parent)
    try:
        stopped = _run(tmp_path, z, "wait", who="stopped")
        left = _run(tmp_path, z, "wait", who="left")
        assert stopped.poll() is None
        try:
            stopped.wait(timeout=0.2)
            raise AssertionError("a sleeping script ended")
        except zygote.subprocess.TimeoutExpired:
            pass
        stopped.terminate()
        assert stopped.wait(timeout=60) == -signal.SIGTERM
        watch = os.pidfd_open(left.pid)
    finally:
        z.close()
    # The worker's end closed, nothing it started outlives it.
    assert select.select([watch], [], [], 60)[0] == [watch]
    os.close(watch)


def test_a_server_whose_import_time_variables_differ_starts_as_a_new_interpreter():
    # prometheus_client picks its multiprocess mode when imported: a fork of a zygote that
    # imported it without the directory would never write the shared files.
    base = {"PATH": "/usr/bin", "PYTHONHASHSEED": "0"}
    assert zygote.forkable({**base, "DATABASE_URL": "postgres://x"}, base)
    assert not zygote.forkable({**base, "PROMETHEUS_MULTIPROC_DIR": "/tmp/m"}, base)
    assert not zygote.forkable({"PATH": "/usr/bin"}, base)  # PYTHONHASHSEED unset
    assert not zygote.forkable({**base, "WEBSOCKETS_MAX_REDIRECTS": "3"}, base)

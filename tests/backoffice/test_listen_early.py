"""`manage.py serve` listens before Django loads (backoffice/listen.py, issue 48): chargers that
reconnect during a restart wait in the accept queue instead of being refused into back-off."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backoffice import listen
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_manage_py_serve_accepts_connections_before_django_runs_the_command():
    port = free_port()
    # manage.py with Django's command line replaced by a probe: whatever serve then does, the
    # port must already accept when Django is about to set up.
    probe = textwrap.dedent(
        f"""
        import socket, sys
        import django.core.management as management

        def probe(argv):
            with socket.create_connection(("127.0.0.1", {port}), timeout=5):
                from django.apps import apps

                print("accepting before Django set up:", not apps.ready)

        management.execute_from_command_line = probe
        sys.argv = ["manage.py", "serve", "--port", "{port}"]
        import manage
        manage.main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "accepting before Django set up: True"


def test_nothing_but_the_environment_reader_is_imported_before_the_port_listens():
    """Each module imported before the early listen is time a restarted server refuses chargers:
    portal/__init__.py alone loads Celery (0.15-0.2 s) and was on this path until the socket
    moved to backoffice/."""
    port = free_port()
    probe = textwrap.dedent(
        f"""
        import socket, sys
        from backoffice import listen

        listen.listen_early(["--port", "{port}"])
        socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
        heavy = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("portal", "celery", "kombu", "channels", "uvicorn")
            or name.startswith(("django.conf", "django.db", "django.apps"))
        )
        print(heavy)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_only_serve_listens_early():
    port = free_port()
    probe = textwrap.dedent(
        f"""
        import socket, sys
        import django.core.management as management

        def probe(argv):
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
                print("listening")
            except OSError:
                print("not listening")

        management.execute_from_command_line = probe
        sys.argv = ["manage.py", "migrate", "--port", "{port}"]
        import manage
        manage.main()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "not listening", done.stderr


def test_the_early_socket_goes_to_the_address_serve_ends_up_with(monkeypatch):
    monkeypatch.delenv("LISTEN_PID", raising=False)
    port = free_port()
    listen.listen_early(["--port", str(port)])
    sock = listen.take("127.0.0.1", port)
    assert sock is not None
    try:
        assert sock.getsockname() == ("127.0.0.1", port)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # listening, with its backlog
        assert listen.take("127.0.0.1", port) is None  # handed over once
    finally:
        sock.close()


def test_a_socket_opened_for_another_address_is_closed_and_left_to_uvicorn(monkeypatch):
    monkeypatch.delenv("LISTEN_PID", raising=False)
    port, other = free_port(), free_port()
    listen.listen_early(["--port", str(port)])
    assert listen.take("127.0.0.1", other) is None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_host_and_port_are_read_as_serve_reads_them(monkeypatch):
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8123")
    assert listen.address([]) == ("0.0.0.0", 8123)
    assert listen.address(["--port", "9000", "--simulate", "3"]) == ("0.0.0.0", 9000)
    assert listen.address(["--host=127.0.0.1"]) == ("127.0.0.1", 8123)


def test_a_port_taken_is_left_to_uvicorn_to_report(monkeypatch):
    monkeypatch.delenv("LISTEN_PID", raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        listen.listen_early(["--port", str(port)])
        assert listen.take("127.0.0.1", port) is None


def test_systemd_socket_activation_is_taken_whatever_the_address(monkeypatch):
    """LISTEN_FDS/LISTEN_PID (sd_listen_fds): the socket systemd holds across restarts."""
    port = free_port()
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen(8)
        # Run in a child whose descriptor 3 is the held socket, as systemd starts a service.
        probe = textwrap.dedent(
            """
            import os
            os.environ["LISTEN_PID"] = str(os.getpid())
            from backoffice import listen
            listen.listen_early(["--port", "1"])
            sock = listen.take("127.0.0.1", 1)
            print(sock.fileno(), sock.getsockname()[1])
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env={**os.environ, "LISTEN_FDS": "1"},
            pass_fds=[3],
            preexec_fn=lambda: os.dup2(held.fileno(), 3),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", str(port)]


def test_serving_means_answering_http_not_only_accepting():
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        assert not listen.serving("127.0.0.1", silent.getsockname()[1], timeout=0.5)

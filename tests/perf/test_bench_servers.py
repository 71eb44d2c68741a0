"""A bench server not started yet measures nothing (typed in issue 50 item 7): no process, so
zero RSS and CPU, as terminate() and kill() already treat it, rather than failing on None."""

from bench.servers import Server


def test_a_server_not_started_has_no_processes_to_measure(tmp_path):
    server = Server("echo", port=1, log_dir=tmp_path)
    assert server.proc is None
    assert server.rss() == 0
    assert server.cpu_seconds() == 0
    assert server.terminate() == 0.0

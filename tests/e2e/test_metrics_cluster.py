"""End to end: GET /metrics of two real server processes behind HAProxy
(deploy/haproxy/ocpp-cluster.cfg) in prometheus_client's multiprocess mode.

Chargers written from the OCPP-J text boot through the balancer and spread over both processes.
A scrape through the balancer (whichever process answers) and a scrape of each process directly
all show every process: the frames of both added up, the connected chargers per process (pid)
matching where the database says each socket is held. A process that stops leaves the
per-process gauges, while what it counted stays in the totals. Needs PostgreSQL and Redis.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    LiveServer,
    release_servers,
    reserve_servers,
    start_live_server,
    stop_live_server,
)
from tests.e2e.test_load_balancer import (  # noqa: F401 - shared_services is a fixture
    Fleet,
    Haproxy,
    _holders,
    _wait_for,
    shared_services,
)
from tests.factories import ChargerFactory, PropertyFactory

pytestmark = pytest.mark.e2e

TOKEN = "cluster-scrape-token-0123456789abcdef"
FLEET = 6


@pytest.fixture
def metrics_cluster(
    transactional_db, tmp_path, request
) -> Iterator[tuple[list[LiveServer], Haproxy]]:
    request.getfixturevalue("shared_services")  # PostgreSQL, Redis and HAProxy, or skipped
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {
        "OCPP_JOURNAL_DIR": tmp_path / "journal",
        "OCPP_TRUSTED_PROXIES": "127.0.0.1",
        "PROMETHEUS_MULTIPROC_DIR": directory,
        "METRICS_TOKEN": TOKEN,
        "METRICS_SAMPLE_SECONDS": "0.5",
    }
    servers: list[LiveServer] = []
    proxy = None
    both = reserve_servers(2)
    try:
        servers.append(start_live_server(**env))
        servers.append(start_live_server(**env))
        proxy = Haproxy(servers)
        _wait_for(
            "HAProxy to see both processes healthy",
            lambda: (
                proxy.server_status().get("app1") == "UP"
                and proxy.server_status().get("app2") == "UP"
            ),
        )
        yield servers, proxy
    finally:
        if proxy is not None:
            proxy.stop()
        for server in servers:
            stop_live_server(server)
        release_servers(both)


def scrape(base_url: str) -> tuple[str, list]:
    response = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text[:200]
    found = [s for f in text_string_to_metric_families(response.text) for s in f.samples]
    return response.text, found


def connected_by_pid(found: list) -> dict[int, float]:
    return {
        int(s.labels["pid"]): s.value
        for s in found
        if s.name == "evportal_ocpp_connected_chargers" and s.labels["version"] == "1.6"
    }


def pool_figures(found: list, name: str, pool: str, **labels: str) -> dict[int, float]:
    wanted = {"pool": pool, **labels}
    return {
        int(s.labels["pid"]): s.value
        for s in found
        if s.name == name and wanted.items() <= s.labels.items()
    }


def boots(found: list) -> float:
    return sum(
        s.value
        for s in found
        if s.name == "evportal_ocpp_messages_total"
        and s.labels
        == {
            "direction": "in",
            "version": "1.6",
            "message_type": "CALL",
            "action": "BootNotification",
        }
    )


def test_a_scrape_through_the_balancer_shows_every_process(metrics_cluster) -> None:
    servers, proxy = metrics_cluster
    balancer = f"http://127.0.0.1:{proxy.port}"
    prop = PropertyFactory()
    station_ids = [f"PM-{n:03d}" for n in range(FLEET)]
    for sid in station_ids:
        ChargerFactory(property=prop, station_id=sid)
    # Closed to a scraper without the token, through the balancer too.
    assert httpx.get(f"{balancer}/metrics", timeout=30).status_code == 401

    pids = {server.process.pid for server in servers}
    with Fleet(proxy.ws_url, station_ids) as fleet:
        holders = _wait_for(
            "every charger's connection recorded",
            lambda: (h := _holders(station_ids)) and len(h) == FLEET and h,
        )
        held_by_pid = {pid: 0 for pid in pids}
        for key in holders.values():
            (pid,) = [pid for pid in pids if f"-{pid}-" in key]
            held_by_pid[pid] += 1
        assert all(held_by_pid.values()), held_by_pid  # leastconn used both

        # Each process samples its own gauges every 0.5 s: wait until both have.
        body, found = _wait_for(
            "both processes' connected chargers in a scrape through the balancer",
            lambda: (r := scrape(balancer)) and connected_by_pid(r[1]) == held_by_pid and r,
        )
        assert boots(found) == FLEET
        # Either process answers for both.
        for server in servers:
            _, direct = scrape(server.url)
            assert boots(direct) == FLEET
            assert connected_by_pid(direct) == held_by_pid
        # Each process's pools: Django's (the health checks use it) and the OCPP path's loop
        # pool (the boots' batched writes), within their bounds.
        for pool in ("django", "event_loop"):
            bounds = pool_figures(found, "evportal_db_pool_max_connections", pool)
            assert set(bounds) == pids and all(bound > 0 for bound in bounds.values()), pool
            idle = pool_figures(found, "evportal_db_pool_connections", pool, state="idle")
            used = pool_figures(found, "evportal_db_pool_connections", pool, state="in_use")
            assert all(0 <= idle[pid] + used[pid] <= bounds[pid] for pid in pids), pool
        assert any(
            pool_figures(found, "evportal_db_pool_connections", "event_loop", state=state)[pid]
            for pid in pids
            for state in ("idle", "in_use")
        )
        for sample in found:
            assert not {"station", "station_id", "charger", "organization"} & set(sample.labels)
        assert not any(sid in body for sid in station_ids)
        assert fleet.errors == []

    # One process stops: its gauges leave the other's scrape, its frames stay counted.
    gone, kept = servers[1], servers[0]
    stop_live_server(gone)
    servers.remove(gone)
    _, found = scrape(kept.url)
    assert gone.process.pid not in connected_by_pid(found)
    assert boots(found) == FLEET

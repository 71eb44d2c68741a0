"""GET /healthz while Redis (the cache) is down or hung: it says which dependency is down, stays
200 (every process shares the one Redis: a 503 would take them all out of the balancer while the
pages still answer), does not wait on a hung Redis at every check, and is "ok" again once Redis
answers."""

from urllib.parse import urlsplit

import pytest

from backoffice import shared_cache
from tests.backoffice.dependencies_down import redis_cache_at, refused_redis_cache, silent_server
from tests.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _ask_the_cache_afresh():
    shared_cache.forget_failure()
    yield
    shared_cache.forget_failure()


def test_healthz_names_the_cache_when_redis_refuses(client, settings):
    settings.CACHES = refused_redis_cache()
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "cache": "unreachable"}
    assert response["Cache-Control"] == "no-store"


def test_healthz_is_ok_again_once_redis_answers(client, settings, monkeypatch):
    if not settings.REDIS_URL:
        pytest.skip("a Redis to restart in front of: REDIS_URL (the CI=true pass)")
    redis_url = urlsplit(settings.REDIS_URL)
    proxy = CuttableProxy(redis_url.hostname, redis_url.port or 6379)
    monkeypatch.setattr(shared_cache, "RETRY_AFTER_S", 0.0)  # ask again at the next check
    try:
        settings.CACHES = redis_cache_at(f"redis://127.0.0.1:{proxy.port}{redis_url.path}")
        assert client.get("/healthz").json() == {"status": "ok"}
        proxy.cut()  # Redis restarting: connections dropped, new ones refused
        assert client.get("/healthz").json() == {"status": "degraded", "cache": "unreachable"}
        proxy.restore()
        assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        proxy.close()


def test_a_hung_redis_is_asked_once_not_at_every_check(client, settings):
    with silent_server() as redis:
        settings.CACHES = redis_cache_at(redis.url, {"socket_timeout": 0.2})
        answers = [client.get("/healthz") for _ in range(5)]
        assert [a.json() for a in answers] == [{"status": "degraded", "cache": "unreachable"}] * 5
        assert redis.accepted == 1

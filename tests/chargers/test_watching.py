"""chargers.plumbing.watching: a process learns within one refresh that a browser follows a charger,
and a refresh in the steady state reads only the few watched chargers, not every charger."""

from django.core.cache import cache

from chargers.messagelog.log import log_watch_key
from chargers.plumbing import watching
from chargers.plumbing.watching import WatchedSet


def test_a_new_watcher_is_seen_at_the_next_refresh_and_an_expired_one_goes():
    view = WatchedSet(log_watch_key)
    everyone = set(range(1, 101))
    assert view.refresh(everyone) == set()
    watching.watch(log_watch_key(42), 60)
    assert view.refresh(everyone) == {42}
    cache.delete(log_watch_key(42))  # the tab closed and its key expired
    assert view.refresh(everyone) == set()


def test_the_steady_state_reads_only_watched_and_new_chargers(monkeypatch):
    view = WatchedSet(log_watch_key)
    watching.watch(log_watch_key(7), 60)
    view.refresh(set(range(1, 1001)))
    asked = []
    real_get_many = cache.get_many
    monkeypatch.setattr(
        cache, "get_many", lambda keys: asked.append(len(keys)) or real_get_many(keys)
    )
    assert view.refresh(set(range(1, 1001))) == {7}
    assert view.refresh(set(range(1, 1002))) == {7}  # charger 1001 connected: asked about once
    assert asked == [1, 2]


def test_a_refreshed_view_answers_without_the_cache_only_for_chargers_it_covers():
    view = WatchedSet(log_watch_key)
    watching.watch(log_watch_key(3), 60)
    view.refresh({1, 2, 3})
    assert view.known({1, 3}) == {3}
    assert view.known({1, 4}) is None  # never asked about 4
    view.forget(3)
    assert view.known({3}) is None

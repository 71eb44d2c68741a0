"""The same thing twice at once: the calls run in threads released together by a barrier, each
thread on its own database connection (closed when it ends), as two requests, two workers or
two deliveries would. Row locks and constraints across connections need PostgreSQL: modules
use the `postgresql_only` fixture (tests/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Each call's result, or the exception it raised, in the calls' order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=60)
            results[index] = calls[index]()
        except BaseException as exc:  # returned to the test
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a call is still running"
    return results


def errors(results: list[Any]) -> list[BaseException]:
    return [r for r in results if isinstance(r, BaseException)]


def all_at_once(*calls: Callable[[], Any]) -> list[Any]:
    """`at_once` for calls none of which may fail."""
    results = at_once(*calls)
    assert not errors(results), errors(results)
    return results

"""One failure class, logged once with a count: not a traceback per charger.

Under a storm one cause (the database unreachable, a batch timing out) fails thousands of
chargers within seconds; a traceback each once wrote a 367 MB log in 12 minutes (issue 48) and
the logging itself slowed the server down. `FailureLog.failed(kind, ...)` logs the first failure
of a kind with its traceback, then only counts, and says how many more there were when the kind
shows up again after `window_s`, or when `flush()` is called (at shutdown).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Seen:
    since: float
    more: int = 0


class FailureLog:
    def __init__(
        self,
        logger: logging.Logger,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.window_s = window_s
        self.clock = clock
        self._seen: dict[str, _Seen] = {}

    def failed(
        self, kind: str, message: str, *args: object, exc: BaseException | None = None
    ) -> None:
        """Log `message % args` (with the traceback of `exc`) unless `kind` was logged within
        the window; then it is only counted."""
        now = self.clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen.since < self.window_s:
            seen.more += 1
            return
        self._say_more(kind)
        self._seen[kind] = _Seen(now)
        self.logger.error(message, *args, exc_info=exc)

    def flush(self) -> None:
        """Log the counts not yet told (a stopping server)."""
        for kind in list(self._seen):
            self._say_more(kind)
        self._seen.clear()

    def _say_more(self, kind: str) -> None:
        seen = self._seen.get(kind)
        if seen is not None and seen.more:
            self.logger.error(
                "%s: %d more of the same in %.0f s", kind, seen.more, self.clock() - seen.since
            )
            seen.more = 0

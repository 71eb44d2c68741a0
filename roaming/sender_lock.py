"""One sender of a partner's pushes at a time (roaming.services.deliveries_send), held in the
cache with the holder's own token: renewed before every push, so a pass slower than the lock's
lifetime (a partner answering each push at its timeout) keeps it, and a holder whose lock ran
out and was taken by another stops before sending again and never removes the other's."""

from __future__ import annotations

import uuid

from django.core.cache import cache

LIFETIME_S = 300  # the longest a dead holder blocks the partner's pushes


class SenderLock:
    def __init__(self, partner_id: int) -> None:
        self.key = f"roaming:deliver:{partner_id}"
        self.token = uuid.uuid4().hex

    def take(self) -> bool:
        """True when this holder now has the partner's pushes to send."""
        return bool(cache.add(self.key, self.token, LIFETIME_S))

    def keep(self) -> bool:
        """Renew the lock before a push; False when it is no longer ours (it ran out and
        another sender took it): then this holder sends nothing more."""
        if cache.get(self.key) != self.token:
            return False
        return bool(cache.touch(self.key, LIFETIME_S))

    def let_go(self) -> None:
        """Give the lock back, if it is still ours (another's is left alone)."""
        if cache.get(self.key) == self.token:
            cache.delete(self.key)

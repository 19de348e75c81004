"""A bounded memory of requests already run, so a replayed Slack request runs once.

Bolt checks the signature and rejects timestamps more than 300 s off, but a valid request sent
again inside that window passes and would run the command again (PROTOCOLS.md). Slack gives every
slash command and click a ``trigger_id`` and every event an ``event_id``; the first sighting wins.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["ReplayGuard"]

# Bolt accepts timestamps up to 300 s in the past and in the future: a replay can arrive up to
# 600 s after the original was first seen.
DEFAULT_TTL = 600.0


class ReplayGuard:
    """``first_time(key)`` is True once per key within ``ttl`` seconds; memory stays bounded."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, key: str) -> bool:
        now = self._clock()
        self._expire(now)
        if key in self._seen:
            return False
        self._seen[key] = now + self._ttl
        if len(self._seen) > self._max:
            # Under a flood the oldest go first; they are the closest to expiring anyway.
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        # Insertion order is expiry order (one ttl for all), so stop at the first live entry.
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]

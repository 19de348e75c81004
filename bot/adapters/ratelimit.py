"""A global request limiter for proactive sends: at most ``rate`` requests in any ``per`` seconds.

Discord allows a bot 50 requests per second across all routes, and discord.py does not throttle
ahead of that limit: it only reacts to the 429 (70 concurrent sends drew 42 global 429s in
shared/PROTOCOLS.md). Per-route buckets are a different matter: discord.py already reads each
response's ``X-RateLimit-*`` headers and waits before a route's bucket runs dry, so this limiter
only keeps the global rate, which no header announces ahead of time. Slack's Web API limits a
workspace's calls the same way, with no header ahead of the 429, so the Slack sender uses one too.

A slot is held from the start of a request until ``per`` seconds after its response arrived.
Counting from the response (not from the start) is what makes the bound hold on the server's
clock too: request k reached Discord before its response came back, and request k + rate starts
only ``per`` seconds after that, so no ``per``-second window on the server sees more than ``rate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

__all__ = ["GlobalLimiter"]


class GlobalLimiter:
    """``async with limiter:`` around each request; waits while ``rate`` are in flight or recent."""

    def __init__(
        self, rate: int = 50, per: float = 1.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate < 1 or per <= 0:
            raise ValueError("rate must be at least 1 and per positive")
        self.rate = rate
        self.per = per
        self._clock = clock
        self._in_flight = 0
        self._finished: deque[float] = deque()  # when recent requests got their response
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            while True:
                now = self._clock()
                while self._finished and self._finished[0] + self.per <= now:
                    self._finished.popleft()
                if self._in_flight + len(self._finished) < self.rate:
                    self._in_flight += 1
                    return
                if self._finished:
                    # Full because of recent requests: wait until the oldest leaves the window
                    # (or an in-flight one finishes, which wakes us through the condition).
                    delay = self._finished[0] + self.per - now
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=delay)
                else:
                    await self._changed.wait()  # full of in-flight requests only

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._finished.append(self._clock())
            self._changed.notify_all()

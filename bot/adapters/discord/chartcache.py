"""One PNG per distinct chart, shared by every reply that shows it.

Drawing a chart costs ~100 ms of CPU (matplotlib), and an outage is exactly when hundreds of
people ask about the same service within a minute. Charts are bucketed by 15 minutes, so those
requests carry equal ``ChartData``: keyed by the data itself, the cache can never show a stale
picture, and concurrent requests for a chart still being drawn wait for the same drawing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from bot.chartprocess import ChartProcess
from bot.charts import ChartData

__all__ = ["ChartCache"]


class ChartCache:
    """``await cache.png(chart)``: drawn once in the helper process, then reused (LRU)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._entries: OrderedDict[ChartData, asyncio.Future[bytes]] = OrderedDict()
        self._process = ChartProcess()

    async def close(self) -> None:
        await self._process.close()

    async def png(self, chart: ChartData) -> bytes:
        drawing = self._entries.get(chart)
        if drawing is None:
            # In the helper process: a thread would hold the event loop's interpreter lock
            # for most of the drawing, and interactions would be acknowledged late.
            drawing = asyncio.ensure_future(self._process.png(chart))
            drawing.add_done_callback(lambda done: self._forget_failure(chart, done))
            self._entries[chart] = drawing
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(chart)
        # Shielded: one caller giving up (its interaction cancelled) must not cancel the
        # drawing the others wait for.
        return await asyncio.shield(drawing)

    def _forget_failure(self, chart: ChartData, done: asyncio.Future[bytes]) -> None:
        if (done.cancelled() or done.exception() is not None) and self._entries.get(chart) is done:
            del self._entries[chart]  # a failed drawing is retried by the next request

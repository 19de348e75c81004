"""Chart drawing in a helper process, so matplotlib never holds the event loop's interpreter.

Drawing a chart is ~100-300 ms of pure-Python CPU. In a thread it holds the GIL in long
stretches, and during an outage (hundreds of questions, several cold charts) the event loop
then answers interactions late; in a separate process it cannot. One worker, started on first
use ("spawn": forking a process that runs threads, the store's, can copy held locks) and
restarted after it dies.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from bot.charts import ChartData, render_png

__all__ = ["ChartProcess"]

log = logging.getLogger(__name__)


class ChartProcess:
    """``await charts.png(chart)``: the PNG, drawn in the helper process."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    async def png(self, chart: ChartData) -> bytes:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, render_png, chart)
        except BrokenProcessPool:
            # Killed or out of memory: this chart is lost, the next one starts a new process.
            log.error("chart drawing process died title=%s; restarting it", chart.title)
            await self.close()
            raise

    async def close(self) -> None:
        """Stop the helper process (safe to call more than once, or when none started)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

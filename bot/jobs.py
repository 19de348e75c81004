"""Scheduled jobs running right now, so a stop lets them finish instead of cancelling them.

APScheduler runs a coroutine job as a task of the loop; ``shutdown(wait=False)`` leaves it to be
cancelled when the loop ends, mid-write, and the cancellation is logged as a job failure with a
traceback. Each of our jobs (incident pass, retention, digests) marks itself here while it runs,
and ``App.close`` pauses the scheduler and waits for them, for a bounded time; a job made of many
short steps (retention) sees ``stopping`` and ends at its next step instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any


class RunningJobs:
    """The tasks of our scheduled jobs that are running now."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        # Set when a stop begins: a job made of many short steps (retention) ends at the next
        # step instead of making the stop wait for all of it.
        self.stopping = False

    def __contains__(self, task: object) -> bool:
        return task in self._tasks

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Mark the current task as one of our jobs for as long as the block runs."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def wait(self, grace: float) -> bool:
        """Ask the jobs running now to stop; wait up to ``grace`` s for them. True if all ended."""
        self.stopping = True
        await asyncio.sleep(0)  # a job the scheduler has just started registers itself
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        return not pending

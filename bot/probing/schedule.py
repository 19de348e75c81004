"""One APScheduler interval job per probe task, derived from the catalog at start.

Memory job store, explicit ids (``probe:<service>:<target>``), ``coalesce`` and
``max_instances=1`` so a slow target never piles up runs. First runs are spread uniformly over
the interval and each run starts up to ``jitter_seconds`` after its slot on a fixed grid, so
thousands of checks do not fire in the same millisecond. ``misfire_grace_time`` is the interval:
APScheduler's default of 1 s would silently skip a run that starts a little late on a busy loop;
late beats missed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.model import utcnow
from bot.probing.tasks import ProbeTask

JOB_PREFIX = "probe:"


class ProbeSchedule:
    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        run: Callable[[ProbeTask], Awaitable[None]],
        *,
        jitter_seconds: float,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._scheduler = scheduler
        self._run = run
        self._jitter = jitter_seconds
        self._rng = rng or random.Random()  # spreading load, not security
        self._clock = clock
        self._tasks: dict[str, ProbeTask] = {}

    async def _jittered(self, task: ProbeTask) -> None:
        # Jitter inside the job, not APScheduler's: its interval trigger adds the interval to
        # the previous, already jittered, run time, so jitter accumulated and a 10 s interval
        # ran every ~12.5 s (measured). Here the grid stays fixed and each run starts up to
        # jitter_seconds after its slot.
        if self._jitter:
            await asyncio.sleep(self._rng.uniform(0, self._jitter))
        await self._run(task)

    @property
    def tasks(self) -> dict[str, ProbeTask]:
        return dict(self._tasks)

    def sync(self, tasks: Sequence[ProbeTask]) -> None:
        """Make the jobs match ``tasks``: add new ones, replace changed ones, drop the rest."""
        wanted = {t.id: t for t in tasks}
        for job_id in list(self._tasks):
            if job_id not in wanted:
                self._scheduler.remove_job(job_id)
                del self._tasks[job_id]
        now = self._clock()
        for job_id, task in wanted.items():
            if self._tasks.get(job_id) == task:
                continue  # unchanged: keep its phase instead of restarting it
            offset = self._rng.uniform(0, task.interval_seconds)
            self._scheduler.add_job(
                self._jittered,
                "interval",
                seconds=task.interval_seconds,
                args=[task],
                id=job_id,
                name=job_id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=task.interval_seconds,
                next_run_time=now + timedelta(seconds=offset),
            )
            self._tasks[job_id] = task

"""Probe scheduling: a few APScheduler jobs ("slots") per interval, each starting its tasks.

One APScheduler job per task was measured to fall behind at 50,000 monitors (benchmarks/
RESULTS.md, "Schedule fidelity"): adding the jobs blocked the loop for ~7 s and each run cost a
job lookup, a wake-up and an executor hop, so starts were up to 6.7 s late at p99. Here each
interval is cut into slots ``slot_seconds`` wide (at most ``MAX_SLOTS``); a task belongs to one
slot by a stable hash of its id (salted with the region), and each slot is one interval job that
starts its tasks with a ``create_task`` each. APScheduler then holds a few hundred jobs whatever
the catalog size, with explicit ids (``probe-slot:<interval>:<slot>``), ``coalesce`` and
``max_instances=1``; ``misfire_grace_time`` is the interval because late beats missed.

Spread without random jitter: the hash places tasks uniformly over the interval, a slot's time
is fixed on a grid anchored at the Unix epoch, so a task keeps its phase across catalog reloads
and restarts, and agents in different regions (different salts) probe one target at different
moments, which shortens the time until some region sees a new failure. Random per-run jitter
was dropped: it cost a sleeping task per run (about a fifth of the scheduler's CPU) and added
its own lateness.

A task's scheduled run never overlaps its previous one: a slot skips tasks still running (the
per-task ``max_instances=1``), and counts the skip.
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.probing.tasks import ProbeTask

__all__ = ["JOB_PREFIX", "MAX_SLOTS", "SLOT_SECONDS", "ProbeSchedule"]

JOB_PREFIX = "probe-slot:"
SLOT_SECONDS = 0.05  # starts every 50 ms: 50,000 tasks at 20 s start 125 at a time
MAX_SLOTS = 1200  # long intervals get wider slots rather than thousands of jobs

SlotKey = tuple[int, int]  # (interval seconds, slot index)
Run = Callable[[ProbeTask, float], Awaitable[None]]


class ProbeSchedule:
    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        run: Run,
        *,
        salt: str = "",
        slot_seconds: float = SLOT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``run(task, scheduled)`` probes ``task`` for the run due at ``scheduled`` (Unix s)."""
        self._scheduler = scheduler
        self._run = run
        self._salt = salt
        self._slot_seconds = slot_seconds
        self._clock = clock
        self._tasks: dict[str, ProbeTask] = {}
        self._members: dict[SlotKey, tuple[ProbeTask, ...]] = {}
        self._running: set[str] = set()
        self._inflight: set[asyncio.Task[None]] = set()
        self.skipped = 0  # starts skipped because the task's previous run was still going

    @property
    def tasks(self) -> dict[str, ProbeTask]:
        return dict(self._tasks)

    def slots_for(self, interval: int) -> int:
        return max(1, min(MAX_SLOTS, round(interval / self._slot_seconds)))

    def slot_of(self, task: ProbeTask) -> SlotKey:
        interval = task.interval_seconds
        digest = zlib.crc32(f"{self._salt}\0{task.id}".encode())
        return interval, digest % self.slots_for(interval)

    def phase_of(self, task: ProbeTask) -> float:
        """Seconds after each multiple of the interval (since the epoch) when ``task`` runs."""
        interval, slot = self.slot_of(task)
        return slot * interval / self.slots_for(interval)

    def next_run(self, task: ProbeTask, after: float) -> float:
        """The first time at or after ``after`` when ``task`` is due."""
        interval = task.interval_seconds
        phase = self.phase_of(task)
        return phase + math.ceil((after - phase) / interval) * interval

    def sync(self, tasks: Sequence[ProbeTask]) -> None:
        """Make the slots match ``tasks``; runs already going finish, unchanged phases stay.

        Cheap enough for the event loop at 50,000 tasks (a hash each and one job per new slot).
        """
        members: dict[SlotKey, list[ProbeTask]] = {}
        for task in tasks:
            members.setdefault(self.slot_of(task), []).append(task)
        for key in self._members.keys() - members.keys():
            self._scheduler.remove_job(_job_id(key))
        now = self._clock()
        for key in members.keys() - self._members.keys():
            interval, slot = key
            phase = slot * interval / self.slots_for(interval)
            first = phase + math.ceil((now - phase) / interval) * interval
            self._scheduler.add_job(
                self._fire,  # a coroutine function: AsyncIOExecutor runs it on the loop
                "interval",
                seconds=interval,
                args=[key],
                id=_job_id(key),
                name=_job_id(key),
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=interval,
                next_run_time=datetime.fromtimestamp(first, UTC),
            )
        # Slots already scheduled pick up their new members at their next run.
        self._members = {key: tuple(group) for key, group in members.items()}
        self._tasks = {t.id: t for t in tasks}

    async def _fire(self, key: SlotKey) -> None:
        interval, slot = key
        phase = slot * interval / self.slots_for(interval)
        # The run this firing stands for: the latest slot time not after now (coalesced).
        # (1 ms of slack: APScheduler keeps run times in whole microseconds.)
        periods = math.floor((self._clock() - phase + 0.001) / interval)
        scheduled = phase + periods * interval
        for task in self._members.get(key, ()):
            if task.id in self._running:
                self.skipped += 1
                continue
            self._running.add(task.id)
            job = asyncio.create_task(self._one(task, scheduled))
            self._inflight.add(job)
            job.add_done_callback(self._inflight.discard)

    async def _one(self, task: ProbeTask, scheduled: float) -> None:
        try:
            await self._run(task, scheduled)
        finally:
            self._running.discard(task.id)


def _job_id(key: SlotKey) -> str:
    return f"{JOB_PREFIX}{key[0]}:{key[1]}"

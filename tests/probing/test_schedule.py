"""ProbeSchedule on a real APScheduler: slots, stable phases, no overlapping runs, clean resyncs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.model import Target
from bot.probing.schedule import JOB_PREFIX, MAX_SLOTS, ProbeSchedule
from bot.probing.tasks import ProbeTask


def _tasks(n: int, interval: int = 1, prefix: str = "svc") -> list[ProbeTask]:
    return [
        ProbeTask(f"{prefix}{i}:web", Target("web", f"http://127.0.0.1/{i}"), interval)
        for i in range(n)
    ]


async def _noop(task: ProbeTask, scheduled: float) -> None:
    return None


def test_many_tasks_share_a_bounded_number_of_jobs() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    schedule = ProbeSchedule(scheduler, _noop)
    schedule.sync(_tasks(5_000, interval=20))
    jobs = scheduler.get_jobs()
    assert 0 < len(jobs) <= schedule.slots_for(20) == 400
    assert all(j.id.startswith(JOB_PREFIX) and j.max_instances == 1 and j.coalesce for j in jobs)
    # Long intervals get wider slots instead of more jobs.
    assert schedule.slots_for(86_400) == MAX_SLOTS


def test_phases_are_stable_spread_and_differ_by_region() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    tasks = _tasks(2_000, interval=20)
    us = ProbeSchedule(scheduler, _noop, salt="US")
    again = ProbeSchedule(scheduler, _noop, salt="US")
    jp = ProbeSchedule(scheduler, _noop, salt="JP")
    assert [us.phase_of(t) for t in tasks] == [again.phase_of(t) for t in tasks]
    assert sum(us.phase_of(t) != jp.phase_of(t) for t in tasks) > 1_900
    # Spread over the whole interval: every 2 s tenth of it holds a fair share of the tasks.
    tenths = Counter(int(us.phase_of(t) // 2) for t in tasks)
    assert set(tenths) == set(range(10))
    assert min(tenths.values()) > 100
    for t in tasks[:50]:
        due = us.next_run(t, 1_000_000.0)
        assert 1_000_000.0 <= due < 1_000_020.0
        assert abs((due % 20) - us.phase_of(t)) < 1e-6


async def test_every_task_runs_once_per_interval_at_its_phase() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    runs: Counter[str] = Counter()
    late: list[float] = []
    done = asyncio.Event()
    tasks = _tasks(300, interval=1)

    async def run(task: ProbeTask, scheduled: float) -> None:
        runs[task.id] += 1
        late.append(time.time() - scheduled)
        if len(runs) == len(tasks) and min(runs.values()) >= 2:
            done.set()

    schedule = ProbeSchedule(scheduler, run, salt="US")
    try:
        schedule.sync(tasks)
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        scheduler.shutdown(wait=False)
    assert set(runs) == {t.id for t in tasks}
    # Each run knows the grid time it stands for: never in the future, never a period behind.
    assert all(-0.01 < x < 1.0 for x in late)


async def test_a_slow_run_is_not_started_again_while_it_is_still_going() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    release = asyncio.Event()
    started: Counter[str] = Counter()
    fired = asyncio.Event()
    firings = Counter[str]()

    def on_executed(event: JobExecutionEvent) -> None:
        firings[event.job_id] += 1
        if firings[event.job_id] >= 3:  # the first start, then two firings that found it busy
            fired.set()

    scheduler.add_listener(on_executed, EVENT_JOB_EXECUTED)

    async def run(task: ProbeTask, scheduled: float) -> None:
        started[task.id] += 1
        await release.wait()

    schedule = ProbeSchedule(scheduler, run, slot_seconds=0.5)
    (task,) = _tasks(1, interval=1)
    try:
        schedule.sync([task])
        async with asyncio.timeout(10):
            await fired.wait()
    finally:
        release.set()
        scheduler.shutdown(wait=False)
    assert started == {task.id: 1}
    assert schedule.skipped >= 2


async def test_resync_drops_removed_tasks_and_their_jobs() -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.start()
    seen: list[str] = []
    kept = _tasks(3, interval=1, prefix="keep")
    gone = _tasks(3, interval=1, prefix="gone")
    second_round = asyncio.Event()
    counts: Counter[str] = Counter()

    async def run(task: ProbeTask, scheduled: float) -> None:
        seen.append(task.id)
        counts[task.id] += 1
        if all(counts[t.id] >= 2 for t in kept):
            second_round.set()

    schedule = ProbeSchedule(scheduler, run, slot_seconds=1.0)  # one slot: one job
    try:
        schedule.sync(kept + gone)
        assert len(scheduler.get_jobs()) == 1
        schedule.sync(kept)
        assert set(schedule.tasks) == {t.id for t in kept}
        async with asyncio.timeout(10):
            await second_round.wait()
        schedule.sync([])
        assert scheduler.get_jobs() == []
    finally:
        scheduler.shutdown(wait=False)
    assert not {t.id for t in gone} & set(seen)

"""Schedule fidelity: many monitors through ``ProbeSchedule`` (slot jobs on APScheduler 3).

The issue's target: 50,000 monitors at a 20 s interval for 5 minutes in one process, at the full
expected rate (2,500 runs/s), with start lateness p99 under 1 s, no missed runs, and memory
reported. Each variant runs in its own interpreter pinned to CPU 0 (as one process of the bot
would be on one core), so its peak RSS is its own; real probes go to nginx pinned to CPU 1.

How a run is timed. ``ProbeSchedule`` hands the run function each run's scheduled time (the slot's
time on its fixed grid); lateness is when the run function starts minus that. The slot job's
``EVENT_JOB_SUBMITTED`` gives when the scheduler woke for it; ``EVENT_JOB_MISSED`` (later than
``misfire_grace_time``) counts slot runs that never started, and ``ProbeSchedule.skipped``
counts task starts skipped because the task's previous run was still going.

Expected runs. Each task's first run is ``ProbeSchedule.next_run(task, now)``; from there the
configured interval says how many runs fall inside the window. Runs are counted by scheduled
time inside ``[now, now + duration)``, against that expectation.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import ProbeSettings
from bot.model import Target
from bot.probes import make_context, run_probe
from bot.probing.schedule import ProbeSchedule
from bot.probing.tasks import ProbeTask

from .common import (
    PROJECT_DIR,
    Section,
    Table,
    human_bytes,
    progress,
    ratio,
)
from .probe_bench import Nginx, make_certs

TARGET_P99_SECONDS = 1.0
SCHEDULER_CPU = 0
SERVER_CPU = 1


@dataclass(frozen=True, slots=True)
class Variant:
    """One run: ``monitors`` jobs every ``interval`` s for ``duration`` s."""

    name: str
    monitors: int
    interval: int
    duration: float
    mode: str = "cheap"  # "cheap": record the start only; "probe": also run_probe a target


@dataclass(frozen=True, slots=True)
class ScheduleBenchConfig:
    variants: tuple[Variant, ...]


QUICK = ScheduleBenchConfig(
    variants=(
        Variant("ProbeSchedule, cheap run", 5_000, 20, 40),
        Variant("ProbeSchedule, real probes", 5_000, 20, 20, mode="probe"),
    )
)
FULL = ScheduleBenchConfig(
    variants=(
        # The case.
        Variant("ProbeSchedule, cheap run", 50_000, 20, 300),
        # Real probes from the schedule (new connection each, to nginx on the other core).
        Variant("ProbeSchedule, real probes", 50_000, 20, 60, mode="probe"),
        Variant("ProbeSchedule, real probes", 10_000, 20, 60, mode="probe"),
    )
)


@dataclass(slots=True)
class VariantResult:
    variant: dict[str, Any]
    sync_seconds: float  # ProbeSchedule.sync of every task, into the running scheduler
    jobs: int  # APScheduler jobs after sync (slots)
    stall_seconds: float  # then until the event loop ran a callback queued after sync
    rss_start: int  # after imports
    rss_tasks: int  # after building the ProbeTasks (catalog-side memory)
    rss_jobs: int  # after sync: the scheduler's jobs
    rss_end: int
    rss_peak: int  # VmHWM
    expected_runs: int
    runs: int  # started, scheduled inside the window
    submitted: int  # submissions inside the window (EVENT_JOB_SUBMITTED)
    missed: int  # EVENT_JOB_MISSED inside the window
    max_instances: int  # EVENT_JOB_MAX_INSTANCES + ProbeSchedule.skipped
    errors: int  # EVENT_JOB_ERROR
    short_jobs: int  # tasks with fewer runs than expected
    runs_per_job: dict[str, int]  # runs -> number of tasks
    lateness: dict[str, float]  # percentile name -> seconds (run start - scheduled)
    # The same for runs scheduled after the first interval: without sync's start-up stall.
    steady_lateness: dict[str, float]
    wake_lateness: dict[str, float]  # the listener's time - scheduled
    per_second: dict[str, float]  # starts per wall second: min / median / max
    cpu_share: float  # the process's CPU over the window, of one core
    others_share: float  # what other processes took of CPU 0 meanwhile
    gc_pauses: dict[str, float] = field(default_factory=dict)  # per generation: count, max s
    loop_lag: dict[str, float] = field(default_factory=dict)  # a 10 ms ticker's overshoot, s
    probes: dict[str, float] = field(default_factory=dict)  # mode "probe": outcomes


# ---- measuring helpers ------------------------------------------------------------------------


def rss_bytes(field_name: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_busy(cpu: int) -> int:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            ticks = [int(v) for v in line.split()[1:9]]
            return sum(ticks) - ticks[3] - ticks[4]
    return 0


def _percentiles(values: array[float] | list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    last = len(ordered) - 1

    def at(q: float) -> float:
        return ordered[min(last, round(q * last))]

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p99.9": at(0.999),
        "max": ordered[-1],
    }


# ---- the worker: one variant, in its own pinned interpreter -----------------------------------


async def _run_variant(v: Variant, target_url: str) -> VariantResult:
    gc.collect()
    rss_start = rss_bytes()
    tasks = [
        ProbeTask(f"svc{i:06d}", Target(kind="web", url=f"{target_url}svc{i:06d}"), v.interval)
        for i in range(v.monitors)
    ]
    gc.collect()
    rss_tasks = rss_bytes()

    # What the run function and the listeners share. Plain containers: cheap to append to.
    lateness = array("d")  # run start - scheduled
    scheduled_at = array("d")  # the same runs' scheduled times
    wake = array("d")
    runs: Counter[str] = Counter()
    starts = array("d")
    events: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    probe_ms = array("d")
    window = [0.0, 0.0]  # [start, end) of scheduled times that count

    def in_window(scheduled: float) -> bool:
        return window[0] <= scheduled < window[1]

    def on_event(event: JobEvent) -> None:
        if isinstance(event, JobSubmissionEvent):
            scheduled = event.scheduled_run_times[-1].timestamp()
            if not in_window(scheduled):
                return
            if event.code == EVENT_JOB_SUBMITTED:
                wake.append(time.time() - scheduled)
                events["submitted"] += 1
            elif event.code == EVENT_JOB_MAX_INSTANCES:
                events["max_instances"] += 1
        elif isinstance(event, JobExecutionEvent) and in_window(
            event.scheduled_run_time.timestamp()
        ):
            events["missed" if event.code == EVENT_JOB_MISSED else "errors"] += 1

    ctx = make_context(ProbeSettings(allow_private=("127.0.0.0/8",))) if v.mode != "cheap" else None

    async def run(task: ProbeTask, scheduled: float) -> None:
        now = time.time()
        if in_window(scheduled):
            lateness.append(now - scheduled)
            scheduled_at.append(scheduled)
            runs[task.id] += 1
            starts.append(now)
        if ctx is not None:
            t0 = time.perf_counter()
            outcome = await run_probe(task.target, ctx)
            probe_ms.append((time.perf_counter() - t0) * 1000)
            outcomes["ok" if outcome.ok else str(outcome.error)] += 1

    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_listener(
        on_event,
        EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR,
    )
    # As the agent does: the scheduler runs before the first assignment is synced into it.
    scheduler.start()
    # The window starts when sync reads the clock: a slot due between an earlier reading and
    # that one is rightly first due a whole interval later.
    reads: list[float] = []

    def clock() -> float:
        now = time.time()
        if not reads:
            reads.append(now)
        return now

    t_sync = time.perf_counter()
    schedule = ProbeSchedule(scheduler, run, salt="US", clock=clock)
    schedule.sync(tasks)
    sync_seconds = time.perf_counter() - t_sync
    now = reads[0]
    window[:] = [now, now + v.duration]
    jobs = len(scheduler.get_jobs())
    first_runs = {task.id: schedule.next_run(task, now) for task in tasks}
    # add_job into a running scheduler queues a wake-up per job; how long until the loop is
    # free again tells what a catalog reload costs.
    loop = asyncio.get_running_loop()
    freed: asyncio.Future[tuple[float, int]] = loop.create_future()
    # RSS in the callback: once it returns, the runs due meanwhile start (and, with real
    # probes, open connections), which is not the jobs' memory.
    loop.call_soon(lambda: freed.set_result((time.perf_counter(), rss_bytes())))
    t_freed, rss_jobs = await freed
    stall_seconds = t_freed - t_sync - sync_seconds

    expected = {
        task_id: _expected_runs(first, now, v.duration, v.interval)
        for task_id, first in first_runs.items()
    }

    # Where lateness comes from: garbage-collector pauses, and how late a 10 ms ticker wakes.
    gc_started: list[float] = [0.0]
    gc_stats: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            gc_stats[info["generation"]].append(time.perf_counter() - gc_started[0])

    lag = array("d")

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lag.append(time.perf_counter() - before - 0.01)

    gc.callbacks.append(on_gc)
    ticking = asyncio.create_task(ticker())
    cpu0 = time.process_time()
    busy0 = _cpu_busy(SCHEDULER_CPU)
    wall0 = time.perf_counter()
    # Until the window's last scheduled time, plus a grace for late starts.
    await asyncio.sleep(max(0.0, window[1] - time.time()) + 5.0)
    wall = time.perf_counter() - wall0
    ticking.cancel()
    gc.callbacks.remove(on_gc)
    cpu_share = (time.process_time() - cpu0) / wall
    others = max(0.0, (_cpu_busy(SCHEDULER_CPU) - busy0) / os.sysconf("SC_CLK_TCK") / wall)
    others = max(0.0, others - cpu_share)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.1)
    if ctx is not None:
        # In-flight probes end within their timeout; the session closes under the rest.
        await asyncio.sleep(min(ctx.timeout, 10.0))
        await ctx.session.close()
    rss_end = rss_bytes()

    # Starts per wall second, over the window's whole seconds.
    per_second = Counter(int(t - now) for t in starts if now <= t < now + v.duration)
    seconds = [per_second.get(s, 0) for s in range(1, int(v.duration) - 1)]
    seconds.sort()
    per_task = Counter(runs[t.id] for t in tasks)
    short = sum(1 for task_id, n in expected.items() if runs[task_id] < n)
    probes: dict[str, float] = {}
    if ctx is not None:
        total = sum(outcomes.values())
        probes = {
            "completed": float(total),
            "ok": float(outcomes.get("ok", 0)),
            "timeout": float(outcomes.get("timeout", 0)),
            "other_failures": float(total - outcomes.get("ok", 0) - outcomes.get("timeout", 0)),
            **{f"ms_{k}": val for k, val in _percentiles(probe_ms).items()},
        }
    return VariantResult(
        variant=asdict(v),
        sync_seconds=sync_seconds,
        jobs=jobs,
        stall_seconds=stall_seconds,
        rss_start=rss_start,
        rss_tasks=rss_tasks,
        rss_jobs=rss_jobs,
        rss_end=rss_end,
        rss_peak=rss_bytes("VmHWM"),
        expected_runs=sum(expected.values()),
        runs=len(lateness),
        submitted=events["submitted"],
        missed=events["missed"],
        max_instances=events["max_instances"] + schedule.skipped,
        errors=events["errors"],
        short_jobs=short,
        runs_per_job={str(k): n for k, n in sorted(per_task.items())},
        lateness=_percentiles(lateness),
        steady_lateness=_percentiles(
            [
                late
                for late, at in zip(lateness, scheduled_at, strict=True)
                if at >= now + v.interval
            ]
        ),
        wake_lateness=_percentiles(wake),
        per_second={
            "min": float(seconds[0]) if seconds else 0.0,
            "median": float(seconds[len(seconds) // 2]) if seconds else 0.0,
            "max": float(seconds[-1]) if seconds else 0.0,
        },
        cpu_share=cpu_share,
        others_share=others,
        gc_pauses={
            f"gen{gen}_{what}": value
            for gen, pauses in gc_stats.items()
            for what, value in (
                ("count", float(len(pauses))),
                ("max", max(pauses, default=0.0)),
                ("total", sum(pauses)),
            )
        },
        loop_lag=_percentiles(lag),
        probes=probes,
    )


def _expected_runs(first: float, start: float, duration: float, interval: float) -> int:
    """Runs due in ``[start, start + duration)`` for a job first due at ``first``."""
    end = start + duration
    if first >= end:
        return 0
    return int((end - first - 1e-9) // interval) + 1


def _worker_main(raw: str) -> None:
    spec = json.loads(raw)
    os.sched_setaffinity(0, {SCHEDULER_CPU})  # one process on one core, as the bot runs
    variant = Variant(**spec["variant"])
    result = asyncio.run(_run_variant(variant, spec["target_url"]))
    print(json.dumps(asdict(result)))


def run_variant(variant: Variant, target_url: str) -> VariantResult:
    spec = json.dumps({"variant": asdict(variant), "target_url": target_url})
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.schedule_bench", "worker", spec],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=variant.duration + 900,
    )
    if done.returncode != 0:
        raise RuntimeError(f"schedule worker failed: {done.stderr[-3000:]}")
    return VariantResult(**json.loads(done.stdout.strip().splitlines()[-1]))


# ---- the benchmark ----------------------------------------------------------------------------


def run(config: ScheduleBenchConfig) -> Section:
    section = Section("schedule", "Schedule fidelity (ProbeSchedule: slot jobs on APScheduler 3)")
    results: list[VariantResult] = []
    with tempfile.TemporaryDirectory(prefix="schedule-bench-") as tmp:
        folder = Path(tmp)
        with Nginx(folder, make_certs(folder)) as nginx:
            url = f"http://127.0.0.1:{nginx.plain_port}/"
            for variant in config.variants:
                progress(
                    f"schedule: {variant.name}, {variant.monitors:,} monitors every "
                    f"{variant.interval} s for {variant.duration:g} s ..."
                )
                result = run_variant(variant, url)
                results.append(result)
                progress(
                    f"schedule:   {result.runs:,}/{result.expected_runs:,} runs, lateness p99 "
                    f"{result.lateness.get('p99', 0):.3f} s, missed {result.missed}, "
                    f"max_instances {result.max_instances}, cpu {result.cpu_share:.0%}, "
                    f"peak RSS {human_bytes(result.rss_peak)}"
                )
    section.facts += _facts(results)
    section.tables += [_fidelity_table(results), _memory_table(results)]
    probe_runs = [r for r in results if r.probes]
    if probe_runs:
        section.tables.append(_probe_table(probe_runs))
    return section


def _label(r: VariantResult) -> str:
    return f"{r.variant['name']} ({r.jobs:,} slot jobs)"


def _facts(results: list[VariantResult]) -> list[str]:
    lines = [
        f"Each variant in its own interpreter pinned to CPU {SCHEDULER_CPU} "
        "(os.sched_setaffinity); AsyncIOScheduler(timezone='UTC'), memory job store, jobs added "
        "by ProbeSchedule.sync into the running scheduler as the agent does; real probes go "
        f"through make_context/run_probe to nginx (plain http) pinned to CPU {SERVER_CPU}.",
        "lateness = when the run function starts − the run's scheduled time (its slot's time on "
        "the fixed grid, which ProbeSchedule passes in); 'wake' = the slot job's "
        "EVENT_JOB_SUBMITTED listener time − scheduled.",
    ]
    main = next(
        (r for r in results if r.variant["mode"] == "cheap" and r.variant["monitors"] >= 50_000),
        results[0] if results else None,
    )
    if main is None:
        return lines
    v = main.variant
    rate = main.runs / v["duration"]
    expected_rate = v["monitors"] / v["interval"]
    p99s = main.lateness.get("p99", float("inf"))
    never = main.missed + main.max_instances
    lines += [
        f"Target {v['monitors']:,} monitors at {v['interval']} s ({expected_rate:,.0f} runs/s) "
        f"for {v['duration']:g} s, {_label(main)}:",
        f"  - full expected rate: {'PASS' if main.runs >= 0.99 * main.expected_runs else 'FAIL'}"
        f" ({rate:,.0f} runs/s = {ratio(main.runs, main.expected_runs)} of the "
        f"{main.expected_runs:,} runs the configured interval gives)",
        f"  - start lateness p99 < {TARGET_P99_SECONDS:g} s: "
        f"{'PASS' if p99s < TARGET_P99_SECONDS else 'FAIL'} (p99 {p99s:.3f} s, "
        f"max {main.lateness.get('max', 0):.3f} s over the whole window; after the first "
        f"interval p99 {main.steady_lateness.get('p99', 0):.3f} s, max "
        f"{main.steady_lateness.get('max', 0):.3f} s: the rest is start-up, sync() "
        f"{main.sync_seconds:.1f} s + {main.stall_seconds:.1f} s of queued wake-ups)",
        f"  - no missed runs: {'PASS' if never == 0 else 'FAIL'} ({main.missed} missed, "
        f"{main.max_instances} skipped as still running; {main.short_jobs:,} monitors ran fewer "
        "times than the configured interval gives)",
        f"  - memory: peak RSS {human_bytes(main.rss_peak)}; {main.jobs:,} APScheduler jobs; "
        f"{human_bytes(max(0, main.rss_jobs - main.rss_tasks))} for the schedule over the "
        "ProbeTasks themselves",
    ]
    return lines


def _fidelity_table(results: list[VariantResult]) -> Table:
    table = Table(
        "Runs and start lateness",
        [
            "variant",
            "monitors",
            "window",
            "expected runs/s",
            "runs/s",
            "÷ expected",
            "starts/s min / median / max",
            "lateness p50 / p99 / max (s)",
            "after 1st interval p99 / max (s)",
            "wake p99 (s)",
            "loop lag p99 / max (ms)",
            "missed",
            "skipped (still running)",
            "monitors short of runs",
            "CPU (others on CPU 0)",
        ],
    )
    for r in results:
        v = r.variant
        late = r.lateness
        table.add(
            _label(r),
            f"{v['monitors']:,}",
            f"{v['duration']:g} s",
            f"{r.expected_runs / v['duration']:,.0f}",
            f"{r.runs / v['duration']:,.0f}",
            ratio(r.runs, r.expected_runs),
            f"{r.per_second['min']:,.0f} / {r.per_second['median']:,.0f} / "
            f"{r.per_second['max']:,.0f}",
            f"{late.get('p50', 0):.3f} / {late.get('p99', 0):.3f} / {late.get('max', 0):.3f}",
            (
                f"{r.steady_lateness['p99']:.3f} / {r.steady_lateness['max']:.3f}"
                if r.steady_lateness
                else "– (window ≤ 1 interval)"
            ),
            f"{r.wake_lateness.get('p99', 0):.3f}",
            f"{r.loop_lag.get('p99', 0) * 1000:,.0f} / {r.loop_lag.get('max', 0) * 1000:,.0f}",
            f"{r.missed:,}",
            f"{r.max_instances:,}",
            f"{r.short_jobs:,}",
            f"{r.cpu_share:.0%} ({r.others_share:.0%})",
        )
    table.notes += [
        "expected runs: from each monitor's first run (ProbeSchedule.next_run: its slot's phase) "
        "at the configured interval, counted by scheduled time inside the window.",
        "CPU: the scheduling process's CPU time ÷ wall time over the window; others: what other "
        "people's processes took of the same CPU (the machine is shared).",
        "wake: when APScheduler submitted the run (listener) − scheduled; loop lag: how late a "
        "10 ms asyncio.sleep ticker woke (the event loop's own responsiveness).",
    ]
    return table


def _memory_table(results: list[VariantResult]) -> Table:
    table = Table(
        "Memory (RSS)",
        [
            "variant",
            "monitors",
            "after imports",
            "ProbeTasks built",
            "slot jobs added",
            "per monitor",
            "peak",
            "sync() time",
            "loop stall after sync",
        ],
    )
    for r in results:
        v = r.variant
        table.add(
            _label(r),
            f"{v['monitors']:,}",
            human_bytes(r.rss_start),
            human_bytes(r.rss_tasks),
            human_bytes(r.rss_jobs),
            human_bytes((r.rss_jobs - r.rss_tasks) // max(1, v["monitors"])),
            human_bytes(r.rss_peak),
            f"{r.sync_seconds:.2f} s",
            f"{r.stall_seconds:.2f} s",
        )
    table.notes.append(
        "per monitor: (RSS after sync − RSS with the ProbeTasks built) ÷ monitors, i.e. the "
        "schedule's own memory per monitor. Peak includes the benchmark's own records "
        "(8 bytes per run for each of three arrays)."
    )
    return table


def _probe_table(results: list[VariantResult]) -> Table:
    table = Table(
        "Real probes from the schedule (run_probe to a loopback nginx)",
        [
            "variant",
            "monitors",
            "expected probes/s",
            "probes completed/s",
            "ok",
            "timeouts",
            "other failures",
            "probe ms p50 / p99",
            "lateness p99 (s)",
        ],
    )
    for r in results:
        v = r.variant
        p = r.probes
        table.add(
            _label(r),
            f"{v['monitors']:,}",
            f"{v['monitors'] / v['interval']:,.0f}",
            f"{p['completed'] / (v['duration'] + 5):,.0f}",
            f"{p['ok']:,.0f}",
            f"{p['timeout']:,.0f}",
            f"{p['other_failures']:,.0f}",
            f"{p.get('ms_p50', 0):,.0f} / {p.get('ms_p99', 0):,.0f}",
            f"{r.lateness.get('p99', 0):.3f}",
        )
    table.notes.append(
        "probes completed/s: every outcome returned while the schedule ran (window + 5 s), "
        "whatever its scheduled time."
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.schedule_bench")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="internal: one variant, pinned, prints JSON")
    worker.add_argument("spec")
    args = parser.parse_args(argv)
    _worker_main(args.spec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Storage growth: probe storage for 1,000 services × 2 targets × 5 regions at 30 s, after 90 days.

First the arithmetic: how many results, minute rows and day rows the fleet produces, and what they
would take as plain SQLite rows (bytes per row measured on this build's tables). Then a simulated
load through the real code path: ``Store.add_probe_results`` once per simulated minute with every
result of that minute, and ``Store.run_retention`` every 5 simulated minutes with the production
windows (hot 15 min, raw 7 days, minutes 90 days), for a subset of the fleet (``services`` full
services, all 10 series each) over whole UTC days. The bytes each tier takes (``dbstat``: pages of
the table and its indexes) per series-day are then scaled to the whole fleet at its largest
moment after 90 days (just before midnight: 7 sealed raw days plus a whole day in hour blocks, 91
minute blocks, a full hot window). Daily aggregates do not exist yet at day 90 (minutes fold on
day 91); their growth per year is shown apart.

Simulated results: each series has its own base latency (log-normal around 120 ms, 5 ms-3 s) and
noise (log-normal, sigma 5-20%) with 1% spikes of 1.5-4×; start times at a fixed phase + 30 s steps
+ up to 5 s of scheduler jitter + loop delay, in milliseconds; 0.2% isolated failures (timeout,
connection, HTTP 5xx), and per service a 10% chance per day of an incident of 5-60 min in some
regions and targets where 90% of probes fail.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import math
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bot.model import Catalog, Service, Target
from bot.store import ProbeRow, Store
from bot.store import probes as probe_sql
from bot.store.retention import HOT_MARGIN_SECONDS, INTERVAL_SECONDS

from .common import (
    Section,
    Table,
    data_dir,
    human_bytes,
    median,
    p99,
    progress,
    remove_database,
)

FLEET_SERVICES = 1000
TARGETS = ("web", "api")
REGIONS = ("US", "GB", "DE", "JP", "BR")
SERIES_PER_SERVICE = len(TARGETS) * len(REGIONS)
FLEET_SERIES = FLEET_SERVICES * SERIES_PER_SERVICE
INTERVAL_MS = 30_000
RESULTS_PER_SERIES_DAY = 86_400_000 // INTERVAL_MS
HOT_SECONDS = 10 * 60 + HOT_MARGIN_SECONDS  # [verdict] probe_window_minutes = 10, the default
RAW_DAYS = 7
MINUTE_DAYS = 90
CEILING = 10**9  # 1 GB; 1 GiB would allow 7% more
DAY = 86_400
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC
TIERS = ("probe_results", "probe_raw", "probe_minutes", "probe_days", "probe_errors")
# The probe_minutes layout before this change: one row per (service, target, region, minute).
_ROW_MINUTES = """
CREATE TABLE row_minutes (
    service_id  INTEGER NOT NULL,
    target      TEXT NOT NULL,
    region      TEXT NOT NULL,
    minute      INTEGER NOT NULL,
    ok          INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    latency_sum REAL NOT NULL,
    latency_max REAL,
    PRIMARY KEY (service_id, minute, target, region)
) WITHOUT ROWID
"""

# (at_ms, service id, target, region, ok, status, latency_ms, error)
ResultRow = tuple[int, int, str, str, bool, int | None, float | None, str | None]


@dataclass(frozen=True, slots=True)
class StorageScenario:
    services: int  # simulated services, each with every target and region
    days: int  # whole UTC days simulated
    seed: int = 20_260_105


QUICK = StorageScenario(services=10, days=1)
FULL = StorageScenario(services=100, days=3)


def run(sc: StorageScenario) -> Section:
    return asyncio.run(_run(sc))


# ---- the simulated fleet --------------------------------------------------------------------


@dataclass(slots=True)
class _Series:
    service_id: int
    target: str
    region: str
    phase_ms: int
    base_ms: float
    noise: float


class Fleet:
    """Probe results of ``services`` services, generated one UTC day at a time."""

    def __init__(self, sc: StorageScenario, ids: dict[str, int]) -> None:
        self._rng = random.Random(sc.seed)
        rng = self._rng
        self.series = [
            _Series(
                ids[key],
                target,
                region,
                rng.randrange(INTERVAL_MS - 5_100),  # every result stays inside its day
                min(3000.0, max(5.0, 120 * math.exp(rng.gauss(0, 0.8)))),
                rng.uniform(0.05, 0.2),
            )
            for key in sorted(ids)
            for target in TARGETS
            for region in REGIONS
        ]

    def day(self, day_ms: int) -> list[ResultRow]:
        """Every result of the day, sorted by time: (at_ms, sid, target, region, ok, status,
        latency_ms, error)."""
        rng = self._rng
        incidents = self._incidents(day_ms)
        out: list[ResultRow] = []
        for s in self.series:
            windows = incidents.get((s.service_id, s.target, s.region), ())
            for k in range(RESULTS_PER_SERIES_DAY):
                at = day_ms + s.phase_ms + k * INTERVAL_MS + rng.randrange(5000)
                at += int(rng.expovariate(1 / 3))
                failing = any(a <= at < b for a, b in windows) and rng.random() < 0.9
                if failing or rng.random() < 0.002:
                    kind = rng.random()
                    if kind < 0.4:
                        out.append(
                            (at, s.service_id, s.target, s.region, False, None, None, "timeout")
                        )
                    elif kind < 0.6:
                        out.append(
                            (at, s.service_id, s.target, s.region, False, None, None, "connection")
                        )
                    else:
                        latency = s.base_ms * math.exp(rng.gauss(0, s.noise))
                        status = rng.choice((500, 502, 503, 503, 503))
                        out.append(
                            (at, s.service_id, s.target, s.region, False, status, latency, "status")
                        )
                    continue
                latency = s.base_ms * math.exp(rng.gauss(0, s.noise))
                if rng.random() < 0.01:
                    latency *= rng.uniform(1.5, 4)
                out.append((at, s.service_id, s.target, s.region, True, 200, latency, None))
        out.sort()
        return out

    def _incidents(self, day_ms: int) -> dict[tuple[int, str, str], list[tuple[int, int]]]:
        rng = self._rng
        windows: dict[tuple[int, str, str], list[tuple[int, int]]] = {}
        for sid in sorted({s.service_id for s in self.series}):
            if rng.random() >= 0.1:
                continue
            start = day_ms + rng.randrange(86_400_000)
            end = start + rng.randrange(5, 61) * 60_000
            regions = rng.sample(REGIONS, rng.randint(1, len(REGIONS)))
            targets = rng.sample(TARGETS, rng.randint(1, len(TARGETS)))
            for target in targets:
                for region in regions:
                    windows.setdefault((sid, target, region), []).append((start, end))
        return windows


def _minutes(
    day: list[tuple[int, int, str, str, bool, int | None, float | None, str | None]],
    day_ms: int,
) -> Iterator[tuple[int, list[ProbeRow]]]:
    """(end of minute in epoch seconds, that minute's results as ProbeRows), in order."""
    times = [r[0] for r in day]
    for minute in range(1440):
        lo = bisect.bisect_left(times, day_ms + minute * 60_000)
        hi = bisect.bisect_left(times, day_ms + (minute + 1) * 60_000)
        rows = [
            ProbeRow(sid, t, reg, at, ok, st, lat, err)
            for at, sid, t, reg, ok, st, lat, err in day[lo:hi]
        ]
        yield day_ms // 1000 + (minute + 1) * 60, rows


# ---- measuring ------------------------------------------------------------------------------


class LoopLag:
    """How late a 5 ms timer fires while retention runs: the event loop's stall."""

    def __init__(self) -> None:
        self.active = False
        self.lags_ms: list[float] = []
        self._stop = False

    async def run(self) -> None:
        while not self._stop:
            started = time.perf_counter()
            await asyncio.sleep(0.005)
            if self.active:
                self.lags_ms.append((time.perf_counter() - started) * 1000 - 5)

    def stop(self) -> None:
        self._stop = True


def tier_bytes(path: Path) -> dict[str, int]:
    """Bytes of pages per probe table, its indexes included (dbstat)."""
    with sqlite3.connect(path) as conn:
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master"))
        out = dict.fromkeys(TIERS, 0)
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            if table in out:
                out[table] += int(size)
        return out


def _count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0] or 0)


@dataclass(slots=True)
class _Measured:
    results: int = 0
    insert_seconds: float = 0.0
    runs_ms: list[float] = field(default_factory=list)
    chunks: int = 0
    longest_chunk_ms: list[float] = field(default_factory=list)  # per run
    longest_by_phase: dict[str, float] = field(default_factory=dict)
    sealed: int = 0
    hours_merged: int = 0
    midnight_runs_ms: list[float] = field(default_factory=list)
    before_midnight: dict[str, int] = field(default_factory=dict)
    hot_rows_before_midnight: int = 0
    final: dict[str, int] = field(default_factory=dict)
    folded: dict[str, int] = field(default_factory=dict)
    day_rows: int = 0
    file_bytes: int = 0
    raw_plain: int = 0  # sealed raw blocks before compression
    raw_packed: int = 0
    minute_plain: int = 0
    minute_packed: int = 0
    per_minute_latency: int = 0  # the same minute blocks with latency per minute
    quarter_latency: int = 0  # ... per 15 minutes
    hourly_latency: int = 0  # ... per hour, as stored (recomputed the same way)
    sampled_series_days: int = 0
    row_minute_bytes: int = 0
    row_minute_rows: int = 0
    lags_ms: list[float] = field(default_factory=list)


async def _simulate(sc: StorageScenario, path: Path) -> _Measured:
    remove_database(path)
    catalog = Catalog(
        tuple(
            Service(
                f"svc{i:04d}",
                f"Service {i}",
                (),
                tuple(Target(t, f"https://svc{i}.invalid/{t}") for t in TARGETS),
            )
            for i in range(sc.services)
        )
    )
    store = await Store.open(path, catalog)
    m = _Measured()
    lag = LoopLag()
    heartbeat = asyncio.create_task(lag.run())
    fleet = Fleet(sc, store.service_ids())
    start = int(START.timestamp())

    async def retain(now: int, **windows: int) -> None:
        lag.active = True
        started = time.perf_counter()
        report = await store.run_retention(
            datetime.fromtimestamp(now, UTC),
            hot_seconds=windows.get("hot_seconds", HOT_SECONDS),
            raw_days=windows.get("raw_days", RAW_DAYS),
            minute_days=windows.get("minute_days", MINUTE_DAYS),
        )
        elapsed = (time.perf_counter() - started) * 1000
        lag.active = False
        m.runs_ms.append(elapsed)
        if now % DAY < INTERVAL_SECONDS * 4 and report.sealed:
            m.midnight_runs_ms.append(elapsed)
        m.chunks += report.chunks
        m.longest_chunk_ms.append(report.longest_chunk_ms)
        for phase, ms in report.longest_by_phase.items():
            m.longest_by_phase[phase] = max(m.longest_by_phase.get(phase, 0.0), ms)
        m.sealed += report.sealed
        m.hours_merged += report.hours_merged

    try:
        for d in range(sc.days):
            day_ms = (start + d * DAY) * 1000
            generated = fleet.day(day_ms)
            # Millions of generated tuples: keep the collector off them, or its full passes
            # would show up as event-loop stalls that the bot itself does not have.
            gc.freeze()
            progress(f"storage: day {d + 1}/{sc.days}, {len(generated):,} results")
            for now, rows in _minutes(generated, day_ms):
                started = time.perf_counter()
                m.results += await store.add_probe_results(rows)
                m.insert_seconds += time.perf_counter() - started
                if now % INTERVAL_SECONDS == 0:
                    await retain(now)
            if d == sc.days - 1:  # the largest moment: a whole day in hour blocks
                m.before_midnight = tier_bytes(path)
                m.hot_rows_before_midnight = _count(path, "SELECT count(*) FROM probe_results")
        end = start + sc.days * DAY
        for now in range(
            end + INTERVAL_SECONDS, end + HOT_SECONDS + 2 * INTERVAL_SECONDS, INTERVAL_SECONDS
        ):
            await retain(now)
        m.final = tier_bytes(path)
        m.file_bytes = path.stat().st_size
        m.lags_ms = lag.lags_ms
        _sample_blocks(path, m)
        _row_minutes(path, m)
    finally:
        lag.stop()
        await heartbeat
        await store.close()
        gc.unfreeze()
    await _fold_copy(path, catalog, end, m)
    return m


async def _fold_copy(path: Path, catalog: Catalog, end: int, m: _Measured) -> None:
    """The fold, measured on a copy of the same data: minutes of every simulated day into
    probe_days (the simulated database keeps its tiers for inspection)."""
    copy = path.with_name(path.stem + "-fold.db")
    remove_database(copy)
    with sqlite3.connect(path) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    store = await Store.open(copy, catalog)
    try:
        await store.run_retention(
            datetime.fromtimestamp(end + 2 * DAY, UTC),
            hot_seconds=HOT_SECONDS,
            raw_days=1,
            minute_days=1,
        )
    finally:
        await store.close()
    m.folded = tier_bytes(copy)
    m.day_rows = _count(copy, "SELECT count(*) FROM probe_days")
    remove_database(copy)


def _sample_blocks(path: Path, m: _Measured) -> None:
    """Compression of the sealed blocks, and what the minute blocks would take with latency per
    minute or per 15 minutes (rebuilt from the raw results of a sample of services)."""
    with sqlite3.connect(path) as conn:
        for (data,) in conn.execute(
            "SELECT data FROM probe_raw WHERE part = ?", (probe_sql.SEALED,)
        ):
            m.raw_packed += len(data)
            m.raw_plain += len(probe_sql._decompress(data))
        for (data,) in conn.execute("SELECT data FROM probe_minutes"):
            m.minute_packed += len(data)
            m.minute_plain += len(probe_sql._decompress(data))
        sample = conn.execute(
            "SELECT day, data FROM probe_raw WHERE part = ? ORDER BY service_id, day LIMIT 60",
            (probe_sql.SEALED,),
        ).fetchall()
    for day, data in sample:
        raw = probe_sql.decode_raw(data, day * 1000)
        entries = {key: list(s.entries()) for key, s in raw.items()}
        for slot, attr in (
            (1, "per_minute_latency"),
            (15, "quarter_latency"),
            (60, "hourly_latency"),
        ):
            block = probe_sql.MinuteBlock(slot)
            block.add(entries, day * 1000)
            setattr(m, attr, getattr(m, attr) + len(probe_sql.encode_minutes(block)))
        m.sampled_series_days += len(raw)


def _row_minutes(path: Path, m: _Measured) -> None:
    """Bytes per row of the one-row-per-minute layout, filled with a day of the same rollups."""
    scratch = path.with_name(path.stem + "-rows.db")
    remove_database(scratch)
    rows = []
    with sqlite3.connect(path) as conn:
        first = conn.execute("SELECT min(day) FROM probe_minutes").fetchone()[0]
        for sid, day, data in conn.execute(
            "SELECT service_id, day, data FROM probe_minutes WHERE day = ? LIMIT 20", (first,)
        ):
            block = probe_sql.decode_minutes(data)
            for (target, region), s in block.series.items():
                for i in range(probe_sql.MINUTES_PER_DAY):
                    if s.ok[i] or s.failed[i]:
                        slot = i // block.slot_minutes
                        n = max(1, s.latency_n[slot])
                        rows.append(
                            (
                                sid,
                                target,
                                region,
                                day + 60 * i,
                                s.ok[i],
                                s.failed[i],
                                s.latency_sum[slot] / n * (s.ok[i] + s.failed[i]),
                                (s.latency_max[slot] or 1) - 1 + 0.123,
                            )
                        )
    with sqlite3.connect(scratch) as conn:
        conn.execute(_ROW_MINUTES)
        conn.executemany("INSERT INTO row_minutes VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
        m.row_minute_bytes = int(
            conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'row_minutes'").fetchone()[0]
        )
    m.row_minute_rows = len(rows)
    remove_database(scratch)


# ---- the report -----------------------------------------------------------------------------


async def _run(sc: StorageScenario) -> Section:
    path = data_dir() / f"storage-{sc.services}s-{sc.days}d.db"
    started = time.perf_counter()
    m = await _simulate(sc, path)
    seconds = time.perf_counter() - started
    series = sc.services * SERIES_PER_SERVICE
    series_days = series * sc.days
    hot_rows = max(1, m.hot_rows_before_midnight)
    hot_per_row = m.before_midnight["probe_results"] / hot_rows
    raw_sealed = m.final["probe_raw"] / series_days
    # Before midnight the raw table held days-1 sealed days and (almost) a whole day in hour
    # blocks: 00:00 to 23:45, the hot window being the rest.
    open_part = (m.before_midnight["probe_raw"] - raw_sealed * series * (sc.days - 1)) / series
    open_day = open_part * DAY / (DAY - HOT_SECONDS)
    minute = m.final["probe_minutes"] / series_days
    day_row = m.folded["probe_days"] / max(1, m.day_rows)
    errors = m.final["probe_errors"]

    # The fleet at its largest moment after 90 days.
    hot_window_rows = FLEET_SERIES * (HOT_SECONDS + INTERVAL_SECONDS) // (INTERVAL_MS // 1000)
    projected = {
        "hot": hot_window_rows * hot_per_row,
        "raw": FLEET_SERIES * (RAW_DAYS * raw_sealed + open_day),
        "minutes": FLEET_SERIES * (MINUTE_DAYS + 1) * minute,
        "days": 0.0,
        "errors": float(errors),
    }
    total = sum(projected.values())

    section = Section("storage", "Storage growth")
    section.facts += [
        f"Fleet: {FLEET_SERVICES:,} services × {len(TARGETS)} targets × {len(REGIONS)} regions "
        f"= {FLEET_SERIES:,} series at {INTERVAL_MS // 1000} s; retention as configured by "
        f"default: hot {HOT_SECONDS // 60} min, raw {RAW_DAYS} days, minutes {MINUTE_DAYS} days, "
        "days forever",
        f"Simulated: {sc.services} services ({series:,} series, "
        f"{series / FLEET_SERIES:.0%} of the fleet) for {sc.days} whole UTC days = "
        f"{m.results:,} results through Store.add_probe_results (one call per simulated "
        f"minute) and Store.run_retention every {INTERVAL_SECONDS // 60} simulated minutes "
        f"({len(m.runs_ms):,} runs), in {seconds:,.0f} s; database {path.name}, "
        f"{human_bytes(m.file_bytes)} on disk",
        "Extrapolated: bytes per series-day of each tier (dbstat pages, indexes included) × "
        f"{FLEET_SERIES:,} series × the days each tier holds at its largest moment after 90 "
        f"days: {RAW_DAYS} sealed raw days + a whole day in hour blocks, {MINUTE_DAYS + 1} minute "
        f"blocks, {(HOT_SECONDS + INTERVAL_SECONDS) // 60} min of hot rows",
        f"Projected probe storage after {MINUTE_DAYS} days: {total / 1e6:,.0f} MB of the "
        f"{CEILING / 1e6:,.0f} MB ceiling: {'PASS' if total < CEILING else 'FAIL'} "
        f"({total / CEILING:.0%})",
    ]

    arithmetic = Table(
        "The arithmetic: the fleet's probe data as plain rows",
        ["what", "count", "bytes per row (measured)", "as rows"],
    )
    results_day = FLEET_SERIES * RESULTS_PER_SERIES_DAY
    raw_results = results_day * RAW_DAYS
    minute_rows = FLEET_SERIES * 1440 * MINUTE_DAYS
    row_minute = m.row_minute_bytes / max(1, m.row_minute_rows)
    arithmetic.add("results per day", f"{results_day:,}", "", "")
    arithmetic.add(
        f"raw results, {RAW_DAYS} days",
        f"{raw_results:,}",
        f"{hot_per_row:.1f}",
        _mb(raw_results * hot_per_row),
    )
    arithmetic.add(
        f"minute rows, {MINUTE_DAYS} days",
        f"{minute_rows:,}",
        f"{row_minute:.1f}",
        _mb(minute_rows * row_minute),
    )
    arithmetic.add(
        "day rows per year",
        f"{FLEET_SERIES * 365:,}",
        f"{day_row:.1f}",
        _mb(FLEET_SERIES * 365 * day_row),
    )
    arithmetic.notes += [
        "bytes per row: the hot table probe_results with its unique index, as measured in the "
        "simulation; minute rows: the previous one-row-per-minute probe_minutes layout "
        f"(WITHOUT ROWID), filled with {m.row_minute_rows:,} of the simulated rollups",
        "Either tier alone is over 1 GB as rows: hence the packed blocks below.",
    ]

    tiers = Table(
        "Measured per tier, projected to the fleet after 90 days",
        ["tier", "kept", "bytes per series-day", "÷ rows", "fleet after 90 days"],
    )
    rows_per_series_day = RESULTS_PER_SERIES_DAY * hot_per_row
    tiers.add(
        "hot rows (probe_results)",
        f"{(HOT_SECONDS + INTERVAL_SECONDS) // 60} min",
        f"{hot_per_row:.1f} per row",
        "1.00×",
        _mb(projected["hot"]),
    )
    tiers.add(
        "raw, sealed day blocks (probe_raw)",
        f"{RAW_DAYS} days",
        f"{raw_sealed:,.0f}",
        f"{raw_sealed / rows_per_series_day:.3f}×",
        _mb(FLEET_SERIES * RAW_DAYS * raw_sealed),
    )
    tiers.add(
        "raw, today's hour blocks (probe_raw)",
        "up to 1 day",
        f"{open_day:,.0f}",
        f"{open_day / rows_per_series_day:.3f}×",
        _mb(FLEET_SERIES * open_day),
    )
    tiers.add(
        "per-minute counts (probe_minutes)",
        f"{MINUTE_DAYS + 1} days",
        f"{minute:,.0f}",
        f"{minute / (1440 * row_minute):.3f}×",
        _mb(projected["minutes"]),
    )
    tiers.add(
        "daily aggregates (probe_days)",
        "forever",
        f"{day_row:.1f}",
        "1.00×",
        f"0 (+{_mb(FLEET_SERIES * 365 * day_row)} per year)",
    )
    tiers.add("error strings (probe_errors)", "forever", "", "", _mb(errors))
    tiers.add("**total**", "", "", "", f"**{_mb(total)}**")
    extra_per_minute = (m.per_minute_latency - m.hourly_latency) / max(1, m.sampled_series_days)
    tiers.notes += [
        "÷ rows: the packed bytes divided by the same data as rows (raw: results × hot bytes per "
        "row; minutes: 1,440 rows × minute-row bytes).",
        f"Compression of the sealed raw blocks: {m.raw_plain / max(1, m.raw_packed):.1f}× "
        f"({m.raw_packed / max(1, m.results):.2f} bytes per result packed, "
        f"{m.raw_plain / max(1, m.results):.1f} unpacked); minute blocks "
        f"{m.minute_plain / max(1, m.minute_packed):.0f}×.",
        "Minute blocks hold latency per hour (counts per minute). Rebuilt from "
        f"{m.sampled_series_days:,} simulated series-days, latency per minute would take "
        f"{m.per_minute_latency / max(1, m.sampled_series_days):,.0f} bytes per series-day "
        f"(+{_mb(FLEET_SERIES * (MINUTE_DAYS + 1) * extra_per_minute)} "
        "for the fleet), per 15 minutes "
        f"{m.quarter_latency / max(1, m.sampled_series_days):,.0f}, per hour "
        f"{m.hourly_latency / max(1, m.sampled_series_days):,.0f} (payload only).",
        "After 90 days the total grows only by the daily aggregates (and stays flat otherwise): "
        f"{_mb(total + FLEET_SERIES * 365 * day_row)} after 455 days.",
    ]

    job = Table(
        "The retention job (simulated runs; store worker thread)",
        ["measure", "value"],
    )
    job.add("insert rate, add_probe_results", f"{m.results / m.insert_seconds:,.0f} results/s")
    job.add("service-days sealed / hourly merges", f"{m.sealed:,} / {m.hours_merged:,}")
    job.add(
        "run every 5 min: median / p99 / max",
        " / ".join(f"{v:,.0f} ms" for v in (median(m.runs_ms), p99(m.runs_ms), max(m.runs_ms))),
    )
    if m.midnight_runs_ms:
        job.add(
            "run that seals the day (per fleet subset)",
            f"{statistics.mean(m.midnight_runs_ms):,.0f} ms",
        )
    job.add("chunks, all runs", f"{m.chunks:,}")
    job.add(
        "longest chunk per run: median / p99 / max",
        " / ".join(
            f"{v:,.0f} ms"
            for v in (median(m.longest_chunk_ms), p99(m.longest_chunk_ms), max(m.longest_chunk_ms))
        ),
    )
    job.add(
        "longest chunk by phase",
        ", ".join(f"{phase} {ms:,.0f} ms" for phase, ms in m.longest_by_phase.items()),
    )
    if m.lags_ms:
        job.add(
            "event loop: 5 ms timer late by, p99 / max",
            f"{p99(m.lags_ms):.1f} / {max(m.lags_ms):.1f} ms",
        )
    scale = FLEET_SERIES / series
    job.notes += [
        f"Run times are for {series:,} series; the fleet is {scale:.0f}× more work per run, in "
        f"{scale:.0f}× as many chunks of the same bounded size (the loop waits for none of them).",
        "Loop lateness is measured by a 5 ms timer task while retention runs: the chunks run on "
        "the store's worker thread and hold the GIL only in short stretches.",
    ]
    section.tables += [arithmetic, tiers, job]
    return section


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"

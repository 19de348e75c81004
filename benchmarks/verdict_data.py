"""The verdict benchmark's database: many services, months of reports, one ongoing outage.

Built once through the public ``Store.import_batch`` (the path ``outagebot import`` takes, so the
rollups are the bot's own) and cached in ``benchmarks/data/`` beside a JSON fingerprint; it is
rebuilt when the schema, the generator or the scenario changes. Data is generated with numpy from
a fixed seed and written in time order, as a live bot would receive it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from bot.config import Settings, parse_settings
from bot.model import Problem, to_epoch
from bot.store import ImportBatch, ProbeRow, ReportRow, StatusRow, Store, WorksForMeRow
from bot.store.schema import LATEST, MIGRATIONS

from .common import data_dir, database_bytes, progress, remove_database

# Bump when the generated data changes shape, so cached databases are rebuilt.
GENERATOR_VERSION = 1

# "Now" is fixed at the end of the data, so every run asks the same question of the same rows.
NOW = datetime(2025, 3, 31, 18, 40, tzinfo=UTC)
# When the benchmark asks: 37 s after the newest data, as a bot asks "now" between reports, so
# the window's oldest minute is cut (and read partly from raw rows) as it usually is.
ASKED = NOW + timedelta(seconds=37)

REGIONS = ("US", "GB", "JP", "FR", "DE")
REGION_WEIGHTS = (0.40, 0.15, 0.15, 0.15, 0.15)
PROBLEMS = tuple(p.value for p in Problem)
PROBLEM_WEIGHTS = (0.40, 0.25, 0.15, 0.05, 0.05, 0.10)  # website, app, login, notif., api, other
PROBE_REGIONS = ("US", "GB", "JP")
PROBE_MINUTES_AGO = (9, 7, 5, 3, 1)
# Reports peak in the evening (UTC) and bottom out in the early morning: the daily rhythm that
# makes "the usual level for this hour" differ from a flat mean.
PEAK_HOUR = 20
RHYTHM_AMPLITUDE = 0.6


@dataclass(frozen=True, slots=True)
class VerdictScenario:
    """What the database holds. Every field is part of the cache fingerprint."""

    services: int
    reports: int  # all reports, the outage's included
    days: int
    outage_reports: int
    outage_minutes: int
    user_pool: int  # background reports pick users from this many ("unique-ish")
    seed: int = 7
    batch_size: int = 50_000

    @property
    def outage_index(self) -> int:
        # A service of middling popularity (Zipf rank 43): neither the busiest nor a quiet one.
        return min(42, self.services - 1)

    def key(self, index: int) -> str:
        return f"svc{index:04d}"

    @property
    def outage_key(self) -> str:
        return self.key(self.outage_index)


FULL = VerdictScenario(
    services=1000,
    reports=10_000_000,
    days=90,
    outage_reports=100_000,
    outage_minutes=120,
    user_pool=3_000_000,
)
QUICK = VerdictScenario(
    services=100,
    reports=200_000,
    days=90,
    outage_reports=10_000,
    outage_minutes=120,
    user_pool=100_000,
)


@dataclass(frozen=True, slots=True)
class BuiltDatabase:
    path: Path
    meta: dict[str, Any]
    reused: bool


def scenario_settings(sc: VerdictScenario, database: Path) -> Settings:
    """Settings with ``sc.services`` generated services (their URLs are never contacted)."""
    services = [
        {
            "key": sc.key(i),
            "name": f"Service {i:04d}",
            "targets": {"web": f"https://svc{i}.example/"},
        }
        for i in range(sc.services)
    ]
    return parse_settings({"bot": {"database": str(database)}, "services": services})


def fingerprint(sc: VerdictScenario) -> dict[str, Any]:
    schema = hashlib.sha256("\n".join(MIGRATIONS).encode()).hexdigest()
    return {
        "generator": GENERATOR_VERSION,
        "schema_version": LATEST,
        "schema_sha256": schema,
        "scenario": asdict(sc),
        "now": NOW.isoformat(),
    }


def database_path(sc: VerdictScenario) -> Path:
    return data_dir() / f"verdict-{sc.services}s-{sc.reports}r.db"


async def ensure_database(sc: VerdictScenario, settings: Settings) -> BuiltDatabase:
    """The cached database for ``sc``, built first if missing or stale."""
    path = database_path(sc)
    meta_path = path.with_suffix(".json")
    expected = fingerprint(sc)
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == expected:
            return BuiltDatabase(path, meta, reused=True)
        progress(f"{path.name}: cached database is stale (schema or parameters changed)")
    meta = await _build(sc, settings, path)
    meta["fingerprint"] = expected
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return BuiltDatabase(path, meta, reused=False)


async def _build(sc: VerdictScenario, settings: Settings, path: Path) -> dict[str, Any]:
    # Build under a temporary name: an interrupted build must never look like a cached one.
    tmp = path.with_name(path.name + ".building")
    remove_database(tmp)
    remove_database(path)
    progress(f"building {path.name}: {sc.services:,} services, {sc.reports:,} reports")
    started = time.perf_counter()
    store = await Store.open(tmp, settings.catalog())
    try:
        ids = store.service_ids()
        dedupe = settings.reports.dedupe_minutes * 60
        rates = await _write_reports(store, sc, ids, dedupe)
        await store.import_batch(_recent_signals(sc, ids), dedupe)
    finally:
        await store.close()
    seconds = time.perf_counter() - started
    tmp.rename(path)
    progress(f"built {path.name} in {seconds:,.0f} s ({database_bytes(path) / 2**20:,.0f} MiB)")
    return {
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
        "reports": sc.reports,
        "batch_rates": rates,
    }


async def _write_reports(
    store: Store, sc: VerdictScenario, ids: dict[str, int], dedupe_seconds: int
) -> list[float]:
    """Write every report in time order; return the reports/s of each batch."""
    arrays = _generate(sc)
    sids = [ids[sc.key(i)] for i in range(sc.services)]
    batches = _batches(arrays, sids, sc.batch_size)
    rates: list[float] = []
    done = 0
    started = time.perf_counter()
    rows = next(batches, None)
    while rows is not None:
        task = asyncio.ensure_future(store.import_batch(ImportBatch(reports=rows), dedupe_seconds))
        pending = _Pending(task, len(rows), time.perf_counter())
        # Two cores: build the next batch on another thread while the store's worker thread
        # writes this one (SQLite releases the GIL while it works), keeping the loop free.
        rows = await asyncio.to_thread(next, batches, None)
        done += await pending.finish(rates)
        _report_progress(done, sc.reports, started, rates[-1])
    return rates


class _Pending:
    """A batch being written by the store's thread; its rate counts only the write itself."""

    def __init__(self, task: asyncio.Future[Any], size: int, started: float) -> None:
        self.task = task
        self.size = size
        self.started = started
        self.ended = started
        # Stamp completion as it happens (the loop is idle meanwhile): awaiting later, after
        # the next batch is built, would add the build time to the write time.
        task.add_done_callback(self._stamp)

    def _stamp(self, _task: asyncio.Future[Any]) -> None:
        self.ended = time.perf_counter()

    async def finish(self, rates: list[float]) -> int:
        await self.task
        rates.append(round(self.size / (self.ended - self.started)))
        return self.size


def _report_progress(done: int, total: int, started: float, last_rate: float) -> None:
    elapsed = time.perf_counter() - started
    progress(
        f"  {done:>12,} / {total:,} reports  {elapsed:7.0f} s  "
        f"avg {done / elapsed:9,.0f}/s  last batch {last_rate:9,.0f}/s"
    )


@dataclass(frozen=True, slots=True)
class _Arrays:
    at: np.ndarray
    service: np.ndarray
    region: np.ndarray
    problem: np.ndarray
    user: np.ndarray


def _generate(sc: VerdictScenario) -> _Arrays:
    """Every report as columns, sorted by time: background traffic plus the outage."""
    rng = np.random.default_rng(sc.seed)
    now = to_epoch(NOW)
    start = now - sc.days * 86_400
    n = sc.reports - sc.outage_reports

    hour_starts = start + np.arange(sc.days * 24, dtype=np.int64) * 3600
    hour_of_day = (hour_starts // 3600) % 24
    rhythm = 1 + RHYTHM_AMPLITUDE * np.cos(2 * math.pi * (hour_of_day - PEAK_HOUR) / 24)
    hours = rng.choice(len(hour_starts), size=n, p=rhythm / rhythm.sum())
    at = hour_starts[hours] + rng.integers(0, 3600, size=n)

    # Zipf-like popularity: a few services draw most reports, as on Downdetector.
    popularity = 1 / np.arange(1, sc.services + 1)
    service = rng.choice(sc.services, size=n, p=popularity / popularity.sum())
    user = rng.integers(0, sc.user_pool, size=n)

    # The outage: reports rise linearly to "now" (density grows with time), every user new.
    k = sc.outage_reports
    span = sc.outage_minutes * 60
    outage_at = now - span + np.floor(span * np.sqrt(rng.random(k))).astype(np.int64)
    at = np.concatenate([at, outage_at])
    service = np.concatenate([service, np.full(k, sc.outage_index)])
    user = np.concatenate([user, sc.user_pool + np.arange(k)])
    total = n + k
    region = rng.choice(len(REGIONS), size=total, p=REGION_WEIGHTS)
    problem = rng.choice(len(PROBLEMS), size=total, p=PROBLEM_WEIGHTS)

    order = np.argsort(at, kind="stable")
    return _Arrays(at[order], service[order], region[order], problem[order], user[order])


def _batches(arrays: _Arrays, sids: list[int], size: int) -> Iterator[list[ReportRow]]:
    total = len(arrays.at)
    for lo in range(0, total, size):
        hi = min(lo + size, total)
        columns = zip(
            arrays.at[lo:hi].tolist(),
            arrays.service[lo:hi].tolist(),
            arrays.region[lo:hi].tolist(),
            arrays.problem[lo:hi].tolist(),
            arrays.user[lo:hi].tolist(),
            strict=True,
        )
        yield [
            ReportRow(sids[s], at, REGIONS[r], PROBLEMS[p], "import", "", f"u{u}")
            for at, s, r, p, u in columns
        ]


def _recent_signals(sc: VerdictScenario, ids: dict[str, int]) -> ImportBatch:
    """Probes, a status snapshot and a few works-for-me per service, so every query has rows.

    The outage service's last three probes fail everywhere and its status page says "major".
    """
    now = to_epoch(NOW)
    batch = ImportBatch()
    for i in range(sc.services):
        sid = ids[sc.key(i)]
        outage = i == sc.outage_index
        for region_no, region in enumerate(PROBE_REGIONS):
            for minutes in PROBE_MINUTES_AGO:
                failing = outage and minutes <= 5
                batch.probes.append(
                    ProbeRow(
                        service_id=sid,
                        target="web",
                        region=region,
                        at_ms=(now - minutes * 60) * 1000 + 137 * region_no,
                        ok=not failing,
                        status=503 if failing else 200,
                        latency_ms=None if failing else 80.0 + (i * 7 + minutes) % 300,
                        error="HTTP 503" if failing else None,
                    )
                )
        indicator, text = ("major", "Partial outage") if outage else ("none", "All good")
        batch.status.append(StatusRow(sid, now - 240, indicator, text))
        for k, ago in enumerate((600, 300)):
            batch.works_for_me.append(WorksForMeRow(sid, now - ago, "US", "import", "", f"w{k}"))
    return batch

"""Warm evidence reads on the event loop (bot/store/inline.py): same answers, never a wait.

A verdict whose report counts are cached is read on the calling thread instead of the store's
worker thread. These tests pin what makes that safe: the answer is the one the worker thread
would give; a busy connection, a cold cache, a lock or a read over budget sends the read to the
worker thread instead of making the loop wait; a read given up leaves the connection as it was.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from pathlib import Path

import pytest

from bot.config import EXAMPLE_CONFIG, load_settings
from bot.model import Catalog, Service, Target, from_epoch
from bot.store import EvidenceWindows, ImportBatch, ProbeRow, ReportRow, Store, StoreClosed
from bot.store.connection import BUSY_TIMEOUT_MS, immediate, open_connection
from bot.store.inline import InlineBudget
from bot.store.report_cache import NotCached, ReportCache
from bot.store.reports import insert_reports
from bot.verdicts import VerdictService

CATALOG = Catalog(
    (
        Service("twitter", "Twitter / X", ("x",), (Target("web", "https://x.invalid/"),)),
        Service("github", "GitHub", (), (Target("web", "https://gh.invalid/"),)),
    )
)
TWITTER = CATALOG.services[0]
T0 = 1_672_263_037  # 2022-12-28 21:30:37 UTC
WINDOWS = EvidenceWindows(
    probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=6 * 3600
)
DEDUPE = 3600
# SQLite checks this budget at its first step: every read is given up, as an over-long one is.
NEVER = InlineBudget(cpu_ms=0.0, wall_ms=0.0, every=1)
# Tests that expect a read inline must not depend on the machine's speed: a minute of budget.
ROOMY = InlineBudget(cpu_ms=60_000.0, wall_ms=60_000.0)


def reports(sid: int, n: int, prefix: str) -> list[ReportRow]:
    rng = random.Random(prefix)
    return [
        ReportRow(
            sid,
            T0 - rng.randrange(1700),  # all inside the 30-minute window
            rng.choice(("US", "GB", "JP")),
            rng.choice(("website", "app")),
            "import",
            "",
            f"{prefix}{i}",
        )
        for i in range(n)
    ]


def probes(sid: int, per_region: int = 10) -> list[ProbeRow]:
    """``per_region`` results per region over the probe window (10 minutes) before T0."""
    step_ms = 600_000 // per_region
    return [
        ProbeRow(sid, "web", region, T0 * 1000 - step_ms * k, k % 3 != 0, 200, 80.0 + k, None)
        for region in ("US", "JP")
        for k in range(per_region)
    ]


async def seeded(path: Path, budget: InlineBudget = ROOMY, *, probe_rows: int = 10) -> Store:
    store = await Store.open(path, CATALOG, inline=budget)
    sid = store.service_id("twitter")
    assert sid is not None
    await store.add_probe_results(probes(sid, probe_rows))
    await store.import_batch(ImportBatch(reports=reports(sid, 300, f"s{path.name}")), DEDUPE)
    return store


async def test_a_warm_read_runs_inline_and_matches_the_worker_threads(tmp_path: Path) -> None:
    path = tmp_path / "inline.db"
    store = await seeded(path)
    worker_only = await Store.open(path, CATALOG, inline=NEVER)
    try:
        at = from_epoch(T0)
        cold = await store.evidence(TWITTER, at, WINDOWS)
        assert (store.inline_stats.inline, store.inline_stats.cold) == (0, 1)
        warm = await store.evidence(TWITTER, at, WINDOWS)
        assert store.inline_stats.inline == 1
        assert warm == cold
        # The same question through a store that never reads inline.
        await worker_only.evidence(TWITTER, at, WINDOWS)  # warms its cache: the read then tries
        on_worker = await worker_only.evidence(TWITTER, at, WINDOWS)
        assert worker_only.inline_stats.inline == 0
        assert worker_only.inline_stats.refused >= 1
        assert on_worker == warm
        assert sum(warm.reports.values()) == 300
        assert len(warm.probes) == 20
    finally:
        await worker_only.close()
        await store.close()


async def test_a_read_given_up_leaves_the_connection_as_it_was(tmp_path: Path) -> None:
    store = await seeded(tmp_path / "given-up.db", NEVER)
    try:
        at = from_epoch(T0)
        first = await store.evidence(TWITTER, at, WINDOWS)
        again = await store.evidence(TWITTER, at, WINDOWS)
        assert again == first
        assert store.inline_stats.refused == 1 and store.inline_stats.inline == 0

        def state(conn: sqlite3.Connection) -> tuple[bool, int]:
            timeout = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
            return conn.in_transaction, timeout

        # Outside any transaction, and writers wait for a lock again instead of failing.
        assert await store._call(state) == (False, BUSY_TIMEOUT_MS)
        sid = store.service_id("twitter")
        assert sid is not None
        await store.import_batch(ImportBatch(reports=reports(sid, 5, "later")), DEDUPE)
        assert sum((await store.evidence(TWITTER, at, WINDOWS)).reports.values()) == 305
    finally:
        await store.close()


async def test_a_busy_connection_is_never_waited_for(tmp_path: Path) -> None:
    store = await seeded(tmp_path / "busy.db")
    at = from_epoch(T0)
    await store.evidence(TWITTER, at, WINDOWS)  # warm
    entered, hold = threading.Event(), threading.Event()
    # Should the loop block on the lock after all, release the worker anyway so the test fails
    # on its assertion instead of hanging.
    safety = threading.Timer(30, hold.set)
    safety.start()

    def long_job(conn: object) -> None:
        entered.set()
        hold.wait()

    try:
        job = asyncio.ensure_future(store._call(long_job))
        await asyncio.to_thread(entered.wait)

        async def release() -> None:
            # Runs once the evidence read reached its first await: it must not have waited.
            assert store.inline_stats.busy == 1
            assert not hold.is_set()
            hold.set()

        ev, _ = await asyncio.gather(store.evidence(TWITTER, at, WINDOWS), release())
        await job
        assert sum(ev.reports.values()) == 300
        assert store.inline_stats.inline == 0
    finally:
        safety.cancel()
        hold.set()
        await store.close()


async def test_another_writer_holding_the_lock_does_not_stop_a_warm_read(tmp_path: Path) -> None:
    path = tmp_path / "writer.db"
    store = await seeded(path)
    at = from_epoch(T0)
    sid = store.service_id("twitter")
    assert sid is not None
    await store.evidence(TWITTER, at, WINDOWS)  # warm
    other = open_connection(path)
    try:
        with immediate(other):
            insert_reports(other, reports(sid, 40, "other"), dedupe_seconds=DEDUPE, tenant_cap=None)
            # Uncommitted: the inline read sees the committed state, without waiting.
            during = await store.evidence(TWITTER, at, WINDOWS)
            assert store.inline_stats.inline == 1
            assert sum(during.reports.values()) == 300
        # Committed by another connection: the cache is dropped and the worker thread re-reads.
        after = await store.evidence(TWITTER, at, WINDOWS)
        assert store.inline_stats.cold == 2
        assert sum(after.reports.values()) == 340
    finally:
        other.close()
        await store.close()


async def test_a_closed_store_refuses_reads(tmp_path: Path) -> None:
    store = await seeded(tmp_path / "closed.db")
    at = from_epoch(T0)
    await store.evidence(TWITTER, at, WINDOWS)
    await store.close()
    with pytest.raises(StoreClosed):
        await store.evidence(TWITTER, at, WINDOWS)


def test_remembered_only_raises_on_a_miss_and_caches_nothing() -> None:
    cache = ReportCache()
    computed: list[int] = []

    def compute() -> dict[tuple[str, str], int]:
        computed.append(1)
        return {("US", "website"): 3}

    with cache.remembered_only(), pytest.raises(NotCached):
        cache.counts(1, 0, 59, compute)
    assert computed == []
    assert cache.counts(1, 0, 59, compute) == {("US", "website"): 3}
    with cache.remembered_only():
        assert cache.counts(1, 0, 59, compute) == {("US", "website"): 3}
    assert computed == [1]


async def test_verdicts_read_in_a_row_leave_the_loop_its_turn(tmp_path: Path) -> None:
    # The incident pass asks for every service in a row; inline reads must not turn that into
    # one long step of the event loop that holds up chat interactions.
    settings = load_settings(EXAMPLE_CONFIG)
    store = await Store.open(tmp_path / "turns.db", settings.catalog(), inline=ROOMY)
    verdicts = VerdictService(store, settings)
    services = list(settings.catalog().services)
    at = from_epoch(T0)
    try:
        for svc in services:
            await verdicts.verdict(svc, at=at)  # warms the report cache
        ticks, done = 0, False

        async def other_work() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        other = asyncio.ensure_future(other_work())
        inline_before = store.inline_stats.inline
        for svc in services:
            await verdicts.verdict(svc, at=at)
        done = True
        await other
        assert store.inline_stats.inline - inline_before == len(services)
        assert ticks >= len(services)  # at least one turn for other work per verdict
    finally:
        await store.close()


def connection_state(conn: sqlite3.Connection) -> tuple[bool, int]:
    return conn.in_transaction, int(conn.execute("PRAGMA busy_timeout").fetchone()[0])


async def test_reads_given_up_at_any_step_leave_the_connection_clean(tmp_path: Path) -> None:
    # With a zero budget a read is given up at the first check, and which statement that falls
    # in (BEGIN, a query, the read's own COMMIT) depends on ``every`` and on how many steps
    # each prepared statement has run so far: sweeping both reaches every kind of step.
    path = tmp_path / "steps.db"
    await (await seeded(path)).close()
    at = from_epoch(T0)
    expected = None
    for every in range(1, 41):
        store = await Store.open(path, CATALOG, inline=InlineBudget(0.0, 0.0, every))
        try:
            first = await store.evidence(TWITTER, at, WINDOWS)  # cold: the worker thread
            expected = expected or first
            for _ in range(8):
                assert await store.evidence(TWITTER, at, WINDOWS) == expected
                assert await store._call(connection_state) == (False, BUSY_TIMEOUT_MS), every
            assert store.inline_stats.refused >= 1
        finally:
            await store.close()


async def test_a_long_statement_is_interrupted_and_the_read_handed_over(tmp_path: Path) -> None:
    # Thousands of probe results in the window: the probe query alone takes milliseconds of CPU,
    # the rest of the read a fraction of the half-millisecond budget, so only the probe query
    # can be over it when SQLite checks (at the default interval).
    budget = InlineBudget(cpu_ms=0.5, wall_ms=60_000.0)
    store = await seeded(tmp_path / "long.db", budget, probe_rows=3000)
    try:
        at = from_epoch(T0)
        cold = await store.evidence(TWITTER, at, WINDOWS)
        again = await store.evidence(TWITTER, at, WINDOWS)
        assert len(again.probes) == 6000 and again == cold
        assert (store.inline_stats.refused, store.inline_stats.inline) == (1, 0)
    finally:
        await store.close()


async def test_no_read_inside_a_transaction_left_open(tmp_path: Path) -> None:
    store = await seeded(tmp_path / "open-tx.db")
    at = from_epoch(T0)
    try:
        await store.evidence(TWITTER, at, WINDOWS)  # warm
        await store._call(lambda conn: conn.execute("BEGIN"))
        with pytest.raises(sqlite3.OperationalError):  # the worker's own BEGIN fails, loudly
            await store.evidence(TWITTER, at, WINDOWS)
        assert (store.inline_stats.busy, store.inline_stats.inline) == (1, 0)
        await store._call(lambda conn: conn.execute("ROLLBACK"))
        assert sum((await store.evidence(TWITTER, at, WINDOWS)).reports.values()) == 300
        assert store.inline_stats.inline == 1
    finally:
        await store.close()


async def test_a_read_never_overtakes_a_write_queued_before_it(tmp_path: Path) -> None:
    store = await seeded(tmp_path / "order.db")
    at = from_epoch(T0)
    sid = store.service_id("twitter")
    assert sid is not None
    entered, hold = threading.Event(), threading.Event()
    safety = threading.Timer(30, hold.set)  # never a hang, whatever the code does
    safety.start()

    def occupy() -> None:  # the worker thread busy without the connection: a write queued
        entered.set()  # behind it leaves the connection free, as between two jobs
        hold.wait()

    try:
        await store.evidence(TWITTER, at, WINDOWS)  # warm
        busy = asyncio.get_running_loop().run_in_executor(store._pool, occupy)
        await asyncio.to_thread(entered.wait)
        writing = asyncio.ensure_future(
            store.import_batch(ImportBatch(reports=reports(sid, 5, "queued")), DEDUPE)
        )
        await asyncio.sleep(0)  # one turn of the loop: the write is submitted
        reading = asyncio.ensure_future(store.evidence(TWITTER, at, WINDOWS))
        await asyncio.sleep(0)  # one turn: the read tried inline, and queued behind the write
        assert store.inline_stats.busy == 1
        hold.set()
        await busy
        await writing
        assert sum((await reading).reports.values()) == 305
    finally:
        safety.cancel()
        hold.set()
        await store.close()

"""The verdict's report cache never goes stale: every count matches a plain count of raw rows.

The cache (bot/store/report_cache.py) keeps per-minute and per-hour report counts between
verdicts. Each test here changes reports behind a warm cache in one of the ways the bot can meet
(another connection, another process, an aborted import, a rolled-back write, a deleted service
whose id is reused, its own chat reports) and compares the evidence with what the raw ``reports``
rows say for the same bounds.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.model import Catalog, Service, Target, from_epoch
from bot.store import EvidenceWindows, ImportBatch, ReportRow, ReportRules, Store
from bot.store import reports as report_sql
from bot.store.connection import immediate, open_connection, snapshot
from bot.store.report_cache import ReportCache
from bot.store.schema import migrate

CATALOG = Catalog(
    (
        Service("twitter", "Twitter / X", ("x",), (Target("web", "https://x.invalid/"),)),
        Service("github", "GitHub", (), (Target("web", "https://gh.invalid/"),)),
    )
)
TWITTER = CATALOG.services[0]
# 2022-12-28 21:30:37 UTC: the window's oldest minute is cut, as for a verdict between reports.
T0 = 1_672_263_037
WINDOWS = EvidenceWindows(
    probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=6 * 3600
)
RULES = ReportRules(dedupe_seconds=3600, tenant_cap=10**6, user_hourly_limit=10**6)
DEDUPE = 3600
REGIONS = ("US", "GB", "JP")
PROBLEMS = ("website", "app", "login")


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "cache.db", CATALOG)
    yield s
    await s.close()


def sid_of(store: Store, key: str = "twitter") -> int:
    sid = store.service_id(key)
    assert sid is not None
    return sid


def rows_around(sid: int, at: int, n: int, *, prefix: str, spread: int = 1900) -> list[ReportRow]:
    """``n`` reports from new users over the ``spread`` seconds before ``at``."""
    rng = random.Random(f"{prefix}{sid}{at}{n}")
    return [
        ReportRow(
            sid,
            at - rng.randrange(spread),
            rng.choice(REGIONS),
            rng.choice(PROBLEMS),
            "import",
            "",
            f"{prefix}{i}",
        )
        for i in range(n)
    ]


def raw_counts(
    path: str, sid: int, at: int
) -> tuple[dict[tuple[str, str], int], dict[str, tuple[int, ...]]]:
    """The window and the same-hour history counted straight from raw rows, like the benchmark."""
    conn = sqlite3.connect(path)
    try:
        recent = {
            (region, problem): n
            for region, problem, n in conn.execute(
                "SELECT region, problem, count(*) FROM reports WHERE service_id = ? "
                "AND at > ? AND at <= ? AND counted = 1 GROUP BY region, problem",
                (sid, at - WINDOWS.report_seconds, at),
            )
        }
        days = WINDOWS.baseline_days
        hour = at // 3600 * 3600
        history: dict[str, list[int]] = {}
        for d in range(days, 0, -1):
            start = hour - d * 86_400
            for region, n in conn.execute(
                "SELECT region, count(*) FROM reports WHERE service_id = ? AND at >= ? "
                "AND at < ? AND counted = 1 GROUP BY region",
                (sid, start, start + 3600),
            ):
                history.setdefault(region, [0] * days)[days - d] = n
        return recent, {region: tuple(v) for region, v in history.items()}
    finally:
        conn.close()


async def assert_exact(store: Store, service: Service, at: int) -> dict[tuple[str, str], int]:
    ev = await store.evidence(service, from_epoch(at), WINDOWS)
    recent, history = raw_counts(store.path, sid_of(store, service.key), at)
    assert dict(ev.reports) == recent, at
    assert dict(ev.history) == history, at
    return recent


def write_elsewhere(path: str, rows: list[ReportRow]) -> None:
    """Insert reports (and their rollups) through another connection, as another process would."""
    conn = open_connection(path)
    try:
        with immediate(conn):
            report_sql.insert_reports(conn, rows, dedupe_seconds=DEDUPE, tenant_cap=None)
    finally:
        conn.close()


async def test_reports_written_by_another_connection_are_counted(store: Store) -> None:
    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 300, prefix="a")), DEDUPE)
    before = await assert_exact(store, TWITTER, T0)
    # Into the cut oldest minute, the newest minute, the whole minutes and a baseline hour.
    first_minute = (T0 - WINDOWS.report_seconds + 1) // 60 * 60
    later = [
        ReportRow(sid, first_minute + 50, "US", "app", "import", "", "edge"),
        ReportRow(sid, T0 - 3, "JP", "website", "import", "", "newest"),
        ReportRow(sid, T0 - 2 * 86_400 - 60, "GB", "login", "import", "", "history"),
        *rows_around(sid, T0, 40, prefix="b"),
    ]
    write_elsewhere(store.path, later)
    after = await assert_exact(store, TWITTER, T0)
    inside = sum(1 for r in later if T0 - WINDOWS.report_seconds < r.at <= T0)
    assert sum(after.values()) == sum(before.values()) + inside


_IMPORTER = textwrap.dedent("""
    import asyncio, sys
    from bot.model import Catalog, Service
    from bot.store import ImportBatch, ReportRow, Store
    async def main():
        store = await Store.open(sys.argv[1], Catalog((Service("twitter", "Twitter"),)))
        sid = store.service_id("twitter")
        at = int(sys.argv[2])
        rows = [ReportRow(sid, at - 7 * i, "US", "app", "import", "", f"cli{i}")
                for i in range(200)]
        await store.import_batch(ImportBatch(reports=rows), 3600)
        await store.close()
    asyncio.run(main())
""")


async def test_an_import_by_another_process_is_counted(store: Store) -> None:
    """``outagebot import`` beside a running bot: the bot's next verdict includes it."""
    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 100, prefix="a")), DEDUPE)
    before = await assert_exact(store, TWITTER, T0)
    done = subprocess.run(
        [sys.executable, "-c", _IMPORTER, store.path, str(T0)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    after = await assert_exact(store, TWITTER, T0)
    assert sum(after.values()) > sum(before.values())


async def test_an_aborted_import_is_taken_back_out(store: Store) -> None:
    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 100, prefix="a")), DEDUPE)
    before = await assert_exact(store, TWITTER, T0)
    job = await store.begin_import("0" * 64, "file.jsonl", 500)
    batch = ImportBatch(reports=rows_around(sid, T0, 500, prefix="imp", spread=15 * 86_400))
    await store.import_batch(batch, DEDUPE, job=job, number=1)
    during = await assert_exact(store, TWITTER, T0)
    assert sum(during.values()) > sum(before.values())
    await store.abort_import(job)
    assert await assert_exact(store, TWITTER, T0) == before


async def test_own_chat_reports_anywhere_in_the_window(store: Store) -> None:
    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 300, prefix="a")), DEDUPE)
    await assert_exact(store, TWITTER, T0)
    first = T0 - WINDOWS.report_seconds + 1
    for n, at in enumerate([T0, T0 - 1, first, first + 5, first - 1, T0 - 900, T0 - 86_400]):
        row = ReportRow(sid, at, REGIONS[n % 3], "app", "discord", "g1", f"chat{n}")
        await store.add_report(row, RULES)
        await assert_exact(store, TWITTER, T0)
        # "As of" a second inside the window's newest minute too (raw rows after it exist).
        await assert_exact(store, TWITTER, T0 - 20)


async def test_a_rolled_back_write_leaves_the_counts_exact(tmp_path: Path) -> None:
    path = tmp_path / "rollback.db"
    store = await Store.open(path, CATALOG)
    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 200, prefix="a")), DEDUPE)
    await store.close()

    conn = open_connection(path)
    cache = ReportCache()
    cache.attach(conn)

    def counts() -> dict[tuple[str, str], int]:
        with snapshot(conn):
            cache.check(conn)
            return report_sql.recent_reports(
                conn, sid, T0 - WINDOWS.report_seconds, T0, cache=cache
            )

    before = counts()
    with pytest.raises(RuntimeError), immediate(conn):
        report_sql.insert_reports(
            conn, rows_around(sid, T0, 50, prefix="gone"), dedupe_seconds=DEDUPE, tenant_cap=None
        )
        raise RuntimeError("the transaction fails after its rollups were written")
    assert counts() == before == raw_counts(str(path), sid, T0)[0]
    conn.close()


async def test_a_deleted_tenant_service_leaves_nothing_for_its_reused_id(store: Store) -> None:
    scope = "discord:g1"
    mine = Service(f"{scope}/intranet", "Intranet", (), (Target("web", "https://i.invalid/"),))
    await store.save_tenant_service(scope, mine)
    sid = sid_of(store, mine.key)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 200, prefix="a")), DEDUPE)
    assert sum((await assert_exact(store, mine, T0)).values()) > 0
    assert await store.remove_tenant_service(scope, mine.key)
    # SQLite hands the highest id out again: the new service must not inherit the old counts.
    other = Service(f"{scope}/wiki", "Wiki", (), (Target("web", "https://w.invalid/"),))
    await store.save_tenant_service(scope, other)
    assert sid_of(store, other.key) == sid
    assert await assert_exact(store, other, T0) == {}


async def test_random_writes_and_verdicts_agree_with_raw_rows(store: Store) -> None:
    """Writes of every kind, from here and elsewhere, between verdicts at moving times."""
    rng = random.Random(20221228)
    sids = [sid_of(store, s.key) for s in CATALOG.services]
    await store.import_batch(
        ImportBatch(reports=[r for sid in sids for r in rows_around(sid, T0, 150, prefix="a")]),
        DEDUPE,
    )
    jobs = []
    for step in range(60):
        at = T0 + rng.randrange(-120, 120)
        service = rng.choice(CATALOG.services)
        sid = sid_of(store, service.key)
        kind = rng.randrange(5)
        if kind == 0:
            row = ReportRow(sid, at - rng.randrange(2000), "US", "app", "slack", "T", f"c{step}")
            await store.add_report(row, RULES)
        elif kind == 1:
            write_elsewhere(store.path, rows_around(sid, at, 10, prefix=f"e{step}-"))
        elif kind == 2:
            job = await store.begin_import(f"{step:064d}", "f", 20)
            rows = rows_around(sid, at, 20, prefix=f"j{step}-", spread=3 * 86_400)
            await store.import_batch(ImportBatch(reports=rows), DEDUPE, job=job, number=1)
            jobs.append(job)
        elif kind == 3 and jobs:
            await store.abort_import(jobs.pop(rng.randrange(len(jobs))))
        await assert_exact(store, service, at)


async def test_a_process_that_never_asks_for_a_verdict_pays_nothing_on_writes(
    store: Store,
) -> None:
    """The import CLI writes millions of rollup rows: no trigger may fire for them there."""

    def triggers(conn: sqlite3.Connection) -> tuple[int, int]:
        # Temporary triggers live in the connection (sqlite_temp_master), never in the file.
        temp = conn.execute("SELECT count(*) FROM sqlite_temp_master WHERE type = 'trigger'")
        main = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'")
        return int(temp.fetchone()[0]), int(main.fetchone()[0])

    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 50, prefix="a")), DEDUPE)
    assert await store._call(triggers) == (0, 0)
    await store.evidence(TWITTER, from_epoch(T0), WINDOWS)
    assert await store._call(triggers) == (6, 0)


async def test_verdicts_stay_exact_when_sqlite_refuses_the_triggers(store: Store) -> None:
    """``PRAGMA query_only`` refuses even temporary triggers: verdicts then skip the cache."""

    def query_only(conn: sqlite3.Connection, on: bool) -> None:
        conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")

    sid = sid_of(store)
    await store.import_batch(ImportBatch(reports=rows_around(sid, T0, 100, prefix="a")), DEDUPE)
    await store._call(query_only, True)
    before = await assert_exact(store, TWITTER, T0)
    await store._call(query_only, False)
    await store.add_report(ReportRow(sid, T0 - 5, "US", "app", "discord", "g1", "late"), RULES)
    after = await assert_exact(store, TWITTER, T0)  # now attached, and still exact
    assert sum(after.values()) == sum(before.values()) + 1


def test_the_cache_keeps_a_bounded_number_of_services(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "bounded.db")
    migrate(conn)
    cache = ReportCache(max_services=3)
    cache.attach(conn)
    with snapshot(conn):
        cache.check(conn)
        for sid in range(1, 11):
            report_sql.recent_reports(conn, sid, T0 - 1800, T0, cache=cache)
    assert len(cache) == 3

"""The store: migrations, connection settings, report de-duplication and limits, rollups, locks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.model import Catalog, Service, Target, from_epoch, to_epoch
from bot.store import (
    EvidenceWindows,
    ImportBatch,
    ProbeRow,
    ReportOutcome,
    ReportRow,
    ReportRules,
    StatusRow,
    Store,
    WorksForMeRow,
)
from bot.store.connection import open_connection
from bot.store.schema import LATEST, SchemaMismatch, SchemaTooNew, current_version, migrate

CATALOG = Catalog(
    (
        Service("twitter", "Twitter / X", ("x",), (Target("web", "https://x.invalid/"),)),
        Service("github", "GitHub", (), (Target("web", "https://gh.invalid/"),)),
    )
)
AT = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
T0 = to_epoch(AT)
RULES = ReportRules(dedupe_seconds=3600, tenant_cap=3, user_hourly_limit=5)
WINDOWS = EvidenceWindows(
    probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=6 * 3600
)


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "t.db", CATALOG)
    yield s
    await s.close()


def report(
    store: Store,
    user: str,
    *,
    tenant: str = "g1",
    at: int = T0,
    region: str = "US",
    service: str = "twitter",
    problem: str = "website",
) -> ReportRow:
    sid = store.service_id(service)
    assert sid is not None
    return ReportRow(sid, at, region, problem, "discord", tenant, user)


def test_migrations_are_numbered_and_idempotent(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "m.db")
    assert migrate(conn) == list(range(1, LATEST + 1))
    assert current_version(conn) == LATEST
    assert migrate(conn) == []  # a second run applies nothing
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {
        "services",
        "probe_results",
        "probe_minutes",
        "reports",
        "report_minutes",
        "report_hours",
        "works_for_me",
        "status_snapshots",
        "incidents",
        "subscriptions",
        "outbox",
        "digest_runs",
        "tenant_settings",
        "maintenance_windows",
    } <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "n.db")
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    with pytest.raises(SchemaTooNew, match="upgrade outagebot"):
        migrate(conn)


def test_connection_settings(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "p.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_report_counts_once_per_user_and_window(store: Store) -> None:
    assert await store.add_report(report(store, "alice"), RULES) is ReportOutcome.COUNTED
    second = report(store, "alice", at=T0 + 60)
    assert await store.add_report(second, RULES) is ReportOutcome.COMMENT
    # Another service is another count; the next window counts again.
    assert (
        await store.add_report(report(store, "alice", service="github"), RULES)
        is ReportOutcome.COUNTED
    )
    assert (
        await store.add_report(report(store, "alice", at=T0 + 3600), RULES) is ReportOutcome.COUNTED
    )
    ev = await store.evidence(CATALOG.services[0], AT.replace(minute=59), WINDOWS)
    assert sum(ev.reports.values()) == 1  # the comment is stored but not counted


async def test_same_report_twice_in_one_second_is_a_comment(store: Store) -> None:
    # A double click: the second one is kept, not counted.
    assert await store.add_report(report(store, "bob"), RULES) is ReportOutcome.COUNTED
    assert await store.add_report(report(store, "bob"), RULES) is ReportOutcome.COMMENT


async def test_one_guild_is_capped(store: Store) -> None:
    outcomes = [await store.add_report(report(store, f"u{i}"), RULES) for i in range(5)]
    assert outcomes == [ReportOutcome.COUNTED] * 3 + [ReportOutcome.CAPPED] * 2
    # Another guild still counts; direct messages (no tenant) are not capped together.
    assert await store.add_report(report(store, "z", tenant="g2"), RULES) is ReportOutcome.COUNTED
    dms = [await store.add_report(report(store, f"dm{i}", tenant=""), RULES) for i in range(5)]
    assert dms == [ReportOutcome.COUNTED] * 5


async def test_user_rate_limit(store: Store) -> None:
    rules = ReportRules(dedupe_seconds=60, tenant_cap=100, user_hourly_limit=3)
    outcomes = [
        await store.add_report(report(store, "spam", at=T0 + i * 61), rules) for i in range(5)
    ]
    assert outcomes[:3] == [ReportOutcome.COUNTED] * 3
    assert outcomes[3:] == [ReportOutcome.RATE_LIMITED] * 2


async def test_works_for_me_once_per_window(store: Store) -> None:
    sid = store.service_id("twitter")
    assert sid is not None
    row = WorksForMeRow(sid, T0, "US", "slack", "T1", "U1")
    assert await store.add_works_for_me(row, 3600) is True
    assert (
        await store.add_works_for_me(WorksForMeRow(sid, T0 + 5, "US", "slack", "T1", "U1"), 3600)
        is False
    )


async def test_rollups_match_raw_counts(store: Store) -> None:
    sid = store.service_id("twitter")
    assert sid is not None
    batch = ImportBatch(
        reports=[
            ReportRow(
                sid,
                T0 - i * 7,
                ("US", "JP", "GB")[i % 3],
                ("website", "app")[i % 2],
                "import",
                "",
                f"u{i % 400}",
            )
            for i in range(1000)
        ]
    )
    counts = await store.import_batch(batch, 3600)
    assert counts.reports == 1000
    conn = sqlite3.connect(store.path)
    raw = dict(
        conn.execute(
            "SELECT region, count(*) FROM reports WHERE counted = 1 GROUP BY region"
        ).fetchall()
    )
    hours = dict(conn.execute("SELECT region, sum(n) FROM report_hours GROUP BY region").fetchall())
    minutes = dict(
        conn.execute("SELECT region, sum(n) FROM report_minutes GROUP BY region").fetchall()
    )
    assert raw == hours == minutes
    assert sum(raw.values()) == counts.counted < 1000  # users repeat inside an hour


async def test_evidence_reads_every_signal(store: Store) -> None:
    sid = store.service_id("twitter")
    assert sid is not None
    batch = ImportBatch(
        reports=[ReportRow(sid, T0 - 60, "US", "website", "import", "", f"u{i}") for i in range(7)]
        + [
            ReportRow(sid, T0 - 86_400 * d, "US", "app", "import", "", f"h{d}") for d in range(1, 4)
        ],
        works_for_me=[WorksForMeRow(sid, T0 - 30, "JP", "import", "", "w")],
        probes=[ProbeRow(sid, "web", "US", (T0 - 10) * 1000, True, 200, 80.0, None)],
        status=[StatusRow(sid, T0 - 100, "minor", "Degraded")],
    )
    await store.import_batch(batch, 3600)
    ev = await store.evidence(CATALOG.services[0], AT, WINDOWS)
    assert ev.reports == {("US", "website"): 7}
    assert ev.history["US"][-3:] == (1, 1, 1) and len(ev.history["US"]) == 14
    assert ev.works_for_me == {"JP": 1}
    assert [p.ok for p in ev.probes] == [True]
    assert ev.status is not None and ev.status.description == "Degraded"
    # As of a moment before any of it, none of it is visible: "status --at" is honest.
    early = await store.evidence(CATALOG.services[0], AT.replace(hour=20), WINDOWS)
    assert early.reports == {} and early.probes == () and early.status is None


async def test_catalog_sync_keeps_ids_stable(tmp_path: Path) -> None:
    first = await Store.open(tmp_path / "c.db", CATALOG)
    ids = first.service_ids()
    await first.close()
    renamed = Catalog((Service("github", "GitHub!", ()), *CATALOG.services[:1]))
    second = await Store.open(tmp_path / "c.db", renamed)
    assert second.service_ids() == ids
    await second.close()


_WRITER = textwrap.dedent("""
    import asyncio, sys
    from bot.model import Catalog, Service
    from bot.store import Store, ReportRow, ReportRules
    async def main():
        store = await Store.open(sys.argv[1], Catalog((Service("twitter", "Twitter"),)))
        sid = store.service_id("twitter")
        rules = ReportRules(dedupe_seconds=3600, tenant_cap=10**6, user_hourly_limit=10**6)
        for i in range(300):
            await store.add_report(ReportRow(sid, 1_700_000_000 + i, "US", "app", "discord",
                                             "g", f"{sys.argv[2]}-{i}"), rules)
        await store.close()
    asyncio.run(main())
""")


def test_concurrent_processes_never_see_database_locked(tmp_path: Path) -> None:
    """Three processes doing read-then-write inserts at once (RELIABILITY: BEGIN IMMEDIATE)."""
    db = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db), f"w{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), sum(counted) FROM reports").fetchone() == (900, 900)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_report_window_is_exact_to_the_second(store: Store) -> None:
    """As of a past second, reports after it never count, nor those before the window."""
    sid = store.service_id("twitter")
    assert sid is not None
    # One report every 7 s for 40 minutes around the moment, each from a new user.
    times = [T0 - 1500 + 7 * i for i in range(400)]
    await store.import_batch(
        ImportBatch(reports=[ReportRow(sid, t, "US", "app", "import", "", f"e{t}") for t in times]),
        3600,
    )
    # A second report from one user in its window is kept but not counted.
    await store.import_batch(
        ImportBatch(
            reports=[ReportRow(sid, t + 1, "US", "app", "import", "", f"e{t}") for t in times]
        ),
        3600,
    )
    # Every second over two minutes: each edge read from either side of its cut minute.
    for at in [*range(T0 - 60, T0 + 62), T0 - 30, T0 + 1500]:
        ev = await store.evidence(CATALOG.services[0], from_epoch(at), WINDOWS)
        expected = sum(1 for t in times if at - WINDOWS.report_seconds < t <= at)
        assert sum(ev.reports.values()) == expected, at
        newest = max(x for t in times for x in (t, t + 1) if x <= at)
        assert ev.last_report_at == from_epoch(newest)


def test_a_development_database_with_missing_tables_is_refused(tmp_path: Path) -> None:
    conn = open_connection(tmp_path / "dev.db")
    migrate(conn)
    conn.execute("DROP TABLE imports")  # as if made by a build whose migration lacked it
    with pytest.raises(SchemaMismatch, match="imports"):
        migrate(conn)

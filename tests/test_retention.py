"""Probe retention: packing, sealing, expiry and folding keep every count, once, on a real file."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.model import Catalog, Service, Target, to_epoch
from bot.store import EvidenceWindows, ImportBatch, ProbeRow, Store
from bot.store import probes as probe_sql
from bot.store.retention import CHUNK_ROWS, RetentionReport

CATALOG = Catalog(
    (
        Service(
            "alpha",
            "Alpha",
            (),
            (Target("web", "https://a.invalid/"), Target("api", "https://api.a.invalid/")),
        ),
        Service("beta", "Beta", (), (Target("web", "https://b.invalid/"),)),
    )
)
REGIONS = ("US", "GB")
DAY = 86_400
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
T_NOW = to_epoch(NOW)
HOT = 900
RAW_DAYS = 2
MINUTE_DAYS = 4
WINDOWS = EvidenceWindows(
    probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=3600
)
ERRORS = ("timeout", "refused", "status", "dns")


@pytest.fixture
async def store(tmp_path: Path):
    s = await Store.open(tmp_path / "r.db", CATALOG)
    yield s
    await s.close()


def probes(
    store: Store, start: int, end: int, *, interval: int = 60, seed: int = 1
) -> list[ProbeRow]:
    """Every series of every service from ``start`` to ``end`` (seconds), with jitter, noise and
    some failures."""
    rng = random.Random(seed)
    rows = []
    for service in CATALOG.services:
        sid = store.service_id(service.key)
        assert sid is not None
        for target in service.targets:
            for region in REGIONS:
                for t in range(start, end, interval):
                    at_ms = t * 1000 + rng.randrange(5000)
                    if rng.random() < 0.05:
                        rows.append(
                            ProbeRow(
                                sid,
                                target.kind,
                                region,
                                at_ms,
                                False,
                                None,
                                None,
                                rng.choice(ERRORS),
                            )
                        )
                    else:
                        latency = 80 * rng.lognormvariate(0, 0.2)
                        rows.append(
                            ProbeRow(sid, target.kind, region, at_ms, True, 200, latency, None)
                        )
    return rows


def by_minute(rows: Iterable[ProbeRow], sid: int) -> dict[int, tuple[int, int]]:
    counts: dict[int, list[int]] = {}
    for r in rows:
        if r.service_id == sid:
            cell = counts.setdefault(r.at_ms // 60_000 * 60, [0, 0])
            cell[0 if r.ok else 1] += 1
    return {m: (ok, failed) for m, (ok, failed) in sorted(counts.items())}


def by_day(rows: Iterable[ProbeRow]) -> Counter[tuple[int, str, str, int, bool]]:
    return Counter(
        (r.service_id, r.target, r.region, r.at_ms // 1000 // DAY * DAY, r.ok) for r in rows
    )


async def retain(store: Store, at: datetime = NOW, **kw: int) -> RetentionReport:
    report = await store.run_retention(
        at, hot_seconds=HOT, raw_days=RAW_DAYS, minute_days=MINUTE_DAYS, **kw
    )
    assert report.finished
    return report


def db(store: Store) -> sqlite3.Connection:
    return sqlite3.connect(store.path)


def day_totals(store: Store) -> Counter[tuple[int, str, str, int, bool]]:
    """Results per (service, target, region, day, ok) as stored in every tier together."""
    out: Counter[tuple[int, str, str, int, bool]] = Counter()
    with db(store) as conn:
        for sid, target, region, day, ok, failed in conn.execute(
            "SELECT service_id, target, region, day, ok, failed FROM probe_days"
        ):
            out[(sid, target, region, day, True)] += ok
            out[(sid, target, region, day, False)] += failed
        for sid, day, data in conn.execute("SELECT service_id, day, data FROM probe_minutes"):
            for (target, region), s in probe_sql.decode_minutes(data).series.items():
                out[(sid, target, region, day, True)] += sum(s.ok)
                out[(sid, target, region, day, False)] += sum(s.failed)
        for sid, target, region, at_ms, ok in conn.execute(
            "SELECT service_id, target, region, at_ms, ok FROM probe_results"
        ):
            out[(sid, target, region, at_ms // 1000 // DAY * DAY, bool(ok))] += 1
    return +out


def count(store: Store, sql: str) -> int:
    with db(store) as conn:
        return int(conn.execute(sql).fetchone()[0])


# ---- packing --------------------------------------------------------------------------------


async def test_old_results_are_packed_and_still_answer_charts_and_windows(store: Store) -> None:
    rows = probes(store, T_NOW - 2 * 3600, T_NOW)
    assert await store.add_probe_results(rows) == len(rows)
    sid = store.service_id("alpha")
    assert sid is not None
    since, until = NOW - timedelta(hours=3), NOW + timedelta(minutes=1)
    chart_before = await store.probe_minutes("alpha", since, until)
    window = (T_NOW - 5400, T_NOW - 3600)  # an old window: packed after the run
    with db(store) as conn:
        old_before = probe_sql.recent_probes(conn, sid, *window)
        live_before = probe_sql.recent_probes(conn, sid, T_NOW - 600, T_NOW)

    report = await retain(store)

    hot_left = count(store, "SELECT count(*) FROM probe_results")
    assert report.packed == len(rows) - hot_left and report.duplicates == 0
    assert count(store, "SELECT min(at_ms) FROM probe_results") >= (T_NOW - HOT) * 1000
    # Today's finished hour (10:00-11:00) is merged into the day's block; 11:00-11:45 is open.
    with db(store) as conn:
        parts = {r[0] for r in conn.execute("SELECT part FROM probe_raw")}
    assert parts == {probe_sql.OPEN_DAY, 11}
    assert await store.probe_minutes("alpha", since, until) == chart_before == by_minute(rows, sid)
    with db(store) as conn:
        old_after = probe_sql.recent_probes(conn, sid, *window)
        assert probe_sql.recent_probes(conn, sid, T_NOW - 600, T_NOW) == live_before
    # Packed results keep everything but latency precision (whole milliseconds).
    assert len(old_after) == len(old_before) > 0
    for a, b in zip(old_after, old_before, strict=True):
        assert (a.target, a.region, a.at, a.ok, a.status, a.error) == (
            b.target,
            b.region,
            b.at,
            b.ok,
            b.status,
            b.error,
        )
        assert (a.latency_ms is None) == (b.latency_ms is None)
        if a.latency_ms is not None and b.latency_ms is not None:
            assert abs(a.latency_ms - b.latency_ms) <= 0.5
    assert {p.error for p in old_after if not p.ok} <= set(ERRORS)


async def test_verdict_evidence_is_the_same_before_and_after_packing(store: Store) -> None:
    await store.add_probe_results(probes(store, T_NOW - 3 * 3600, T_NOW))
    alpha = CATALOG.get("alpha")
    assert alpha is not None
    past = NOW - timedelta(hours=2)
    before = [await store.evidence(alpha, at, WINDOWS) for at in (NOW, past)]
    await retain(store)
    after = [await store.evidence(alpha, at, WINDOWS) for at in (NOW, past)]
    assert [len(e.probes) for e in after] == [len(e.probes) for e in before]
    assert [e.last_probe_at for e in after] == [e.last_probe_at for e in before]
    assert [[(p.at, p.ok, p.error) for p in e.probes] for e in after] == [
        [(p.at, p.ok, p.error) for p in e.probes] for e in before
    ]


async def test_days_move_through_every_tier_with_identical_totals(store: Store) -> None:
    start = T_NOW - 6 * DAY
    rows = probes(store, start, T_NOW)
    await store.add_probe_results(rows)
    expected = by_day(rows)
    # Run every six hours of simulated time, as the bot would (more often, in fact).
    for at in range(start + 6 * 3600, T_NOW + 1, 6 * 3600):
        report = await retain(store, datetime.fromtimestamp(at, UTC))
        assert report.duplicates == 0
        assert day_totals(store) == expected
    raw_days = {r[0] for r in db(store).execute("SELECT DISTINCT day FROM probe_raw")}
    minute_days = {r[0] for r in db(store).execute("SELECT DISTINCT day FROM probe_minutes")}
    folded_days = {r[0] for r in db(store).execute("SELECT DISTINCT day FROM probe_days")}
    today = T_NOW // DAY * DAY
    # Raw: days that ended less than RAW_DAYS ago; minutes: less than MINUTE_DAYS ago.
    assert raw_days == {today - d * DAY for d in range(RAW_DAYS + 1)}
    assert minute_days == {today - d * DAY for d in range(MINUTE_DAYS + 1)}
    assert folded_days == {today - d * DAY for d in range(MINUTE_DAYS + 1, 7)}
    # Finished days inside the raw retention are one sealed block per service.
    assert {
        (day, part)
        for day, part in db(store).execute("SELECT day, part FROM probe_raw")
        if day < today
    } == {(today - d * DAY, probe_sql.SEALED) for d in (1, 2)}
    # Latency survives the fold too (whole milliseconds per result).
    with db(store) as conn:
        folded = conn.execute(
            "SELECT sum(latency_sum), max(latency_max) FROM probe_days WHERE day = ?",
            (today - 6 * DAY,),
        ).fetchone()
    old = [r for r in rows if r.at_ms // 1000 // DAY * DAY == today - 6 * DAY and r.latency_ms]
    assert folded[0] == pytest.approx(sum(r.latency_ms or 0 for r in old), abs=len(old) * 0.5)
    assert folded[1] == round(max(r.latency_ms or 0 for r in old))


async def test_repeated_runs_change_nothing(store: Store) -> None:
    rows = probes(store, T_NOW - 3 * DAY, T_NOW)
    await store.add_probe_results(rows)
    await retain(store)
    with db(store) as conn:
        tables = [
            conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
            for t in ("probe_results", "probe_raw", "probe_minutes", "probe_days")
        ]
    again = await retain(store)
    assert (again.packed, again.sealed, again.raw_expired, again.minutes_folded) == (0, 0, 0, 0)
    with db(store) as conn:
        assert tables == [
            conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
            for t in ("probe_results", "probe_raw", "probe_minutes", "probe_days")
        ]


# ---- duplicates -----------------------------------------------------------------------------


async def test_duplicates_are_ignored_in_every_tier(store: Store) -> None:
    rows = probes(store, T_NOW - 6 * DAY, T_NOW)
    await store.add_probe_results(rows)
    await retain(store)
    expected = by_day(rows)
    assert day_totals(store) == expected
    # Hot and packed raw results are checked at insert time: nothing new.
    first_raw_day = (T_NOW - RAW_DAYS * DAY) // DAY * DAY
    recent = [r for r in rows if r.at_ms >= first_raw_day * 1000]
    assert await store.add_probe_results(recent) == 0
    # Older ones are checked when packed, against the minute or day tier.
    older = [r for r in rows if r.at_ms < first_raw_day * 1000]
    await store.add_probe_results(older)
    report = await retain(store)
    assert report.packed == 0 and report.duplicates == len(older)
    assert day_totals(store) == expected
    # Every hot row left is a live one.
    assert count(store, "SELECT min(at_ms) FROM probe_results") >= (T_NOW - HOT) * 1000


async def test_a_replayed_batch_of_recent_results_adds_nothing(store: Store) -> None:
    rows = probes(store, T_NOW - 1200, T_NOW)
    assert await store.add_probe_results(rows) == len(rows)
    await retain(store)
    assert await store.add_probe_results(rows) == 0
    assert await store.add_probe_results(rows[:10] + probes(store, T_NOW, T_NOW + 60)) == len(
        probes(store, T_NOW, T_NOW + 60)
    )


# ---- imports --------------------------------------------------------------------------------


async def test_an_import_of_old_results_is_packed_into_every_tier(store: Store) -> None:
    live = probes(store, T_NOW - 3600, T_NOW, seed=2)
    await store.add_probe_results(live)
    await retain(store)
    # History from five days ago to now, imported after the bot has been running.
    history = probes(store, T_NOW - 6 * DAY, T_NOW - 3600, seed=3)
    job = await store.begin_import("sha-history", "history.jsonl", 5000)
    for number, i in enumerate(range(0, len(history), 5000), start=1):
        await store.import_batch(
            ImportBatch(probes=history[i : i + 5000]), 3600, job=job, number=number
        )
    # While the import is unfinished its rows stay hot: it could still be taken back out.
    waiting = await retain(store)
    assert waiting.packed == 0 and waiting.importing == len(history)
    await store.finish_import(job, len(history))
    report = await retain(store)
    assert report.packed == len(history) and report.duplicates == 0
    assert day_totals(store) == by_day(live + history)
    sid = store.service_id("beta")
    assert sid is not None
    since, until = NOW - timedelta(hours=30), NOW
    assert await store.probe_minutes("beta", since, until) == {
        m: c
        for m, c in by_minute(live + history, sid).items()
        if to_epoch(since) <= m < to_epoch(until)
    }


async def test_an_aborted_import_takes_its_results_back_out(store: Store) -> None:
    live = probes(store, T_NOW - 3600, T_NOW, seed=2)
    await store.add_probe_results(live)
    history = probes(store, T_NOW - 3 * DAY, T_NOW - 2 * DAY, seed=3)
    job = await store.begin_import("sha-bad", "bad.jsonl", 1000)
    await store.import_batch(ImportBatch(probes=history[:1000]), 3600, job=job, number=1)
    await retain(store)  # runs while the import is still checking the rest of its file
    await store.import_batch(ImportBatch(probes=history[1000:2000]), 3600, job=job, number=2)
    await store.abort_import(job)
    await retain(store)
    assert day_totals(store) == by_day(live)


# ---- bounds and the other jobs --------------------------------------------------------------


async def test_chunks_are_bounded_and_interleave(store: Store) -> None:
    rows = probes(store, T_NOW - 2 * DAY, T_NOW)
    await store.add_probe_results(rows)
    per_service_day = 2 * len(REGIONS) * DAY // 60  # alpha: two targets, one result a minute
    report = await store.run_retention(
        NOW,
        hot_seconds=HOT,
        raw_days=RAW_DAYS,
        minute_days=MINUTE_DAYS,
        chunk_rows=500,
        chunk_blocks=1,
    )
    assert report.finished
    assert report.largest_chunk_rows <= 500 + 2 * per_service_day  # + one service-day sealed
    assert report.chunks >= report.sealed + 5  # + pack, seal, expire, fold, agent batches
    # With a chunk limit, a run stops early and the next one carries on.
    await store.add_probe_results(probes(store, T_NOW, T_NOW + DAY, seed=5))
    later = NOW + timedelta(days=1)
    first = await store.run_retention(
        later, hot_seconds=HOT, raw_days=RAW_DAYS, minute_days=MINUTE_DAYS, max_chunks=1
    )
    assert not first.finished and first.chunks == 1
    await retain(store, later)
    assert day_totals(store) == by_day(rows + probes(store, T_NOW, T_NOW + DAY, seed=5))


async def test_a_stop_ends_a_run_between_chunks_and_the_next_run_carries_on(
    store: Store,
) -> None:
    # The bot stopping: a long run must not hold the stop up (nor be cut mid-chunk).
    rows = probes(store, T_NOW - 2 * DAY, T_NOW)
    await store.add_probe_results(rows)
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3

    cut = await store.run_retention(
        NOW,
        hot_seconds=HOT,
        raw_days=RAW_DAYS,
        minute_days=MINUTE_DAYS,
        chunk_rows=200,
        chunk_blocks=1,
        stop=stop,
    )
    assert (cut.chunks, cut.finished) == (3, False)
    await retain(store)
    assert day_totals(store) == by_day(rows)


async def test_other_store_calls_run_between_chunks(store: Store) -> None:
    await store.add_probe_results(probes(store, T_NOW - 3 * DAY, T_NOW))
    done: list[str] = []

    async def pings() -> None:
        for _ in range(3):
            assert await store.ping()
        done.append("pings")

    async def retention() -> None:
        await store.run_retention(
            NOW,
            hot_seconds=HOT,
            raw_days=RAW_DAYS,
            minute_days=MINUTE_DAYS,
            chunk_rows=200,
            chunk_blocks=1,
        )
        done.append("retention")

    await asyncio.gather(retention(), pings())
    assert done == ["pings", "retention"]


async def test_agent_batch_ids_are_kept_as_long_as_raw_results(store: Store) -> None:
    # A spooled batch may be resent hours later; its id must still be known then.
    day = 86_400
    ages = (0, 3600, RAW_DAYS * day - 60, RAW_DAYS * day + 60, (RAW_DAYS + 3) * day)
    with db(store) as conn:
        conn.executemany(
            "INSERT INTO agent_batches (agent_id, batch_id, received_at) VALUES (?, ?, ?)",
            [("a1", f"b{i}", T_NOW - age) for i, age in enumerate(ages)],
        )
    report = await retain(store)
    assert report.agent_batches == 2
    with db(store) as conn:
        assert sorted(r[0] for r in conn.execute("SELECT batch_id FROM agent_batches")) == [
            "b0",
            "b1",
            "b2",
        ]


def test_bad_windows_are_refused() -> None:
    from bot.store.retention import Horizons

    with pytest.raises(ValueError, match="raw_days <= minute_days"):
        Horizons.at(T_NOW, hot_seconds=HOT, raw_days=10, minute_days=5)
    assert Horizons.at(T_NOW, hot_seconds=HOT, raw_days=7, minute_days=90).chunk_rows == CHUNK_ROWS


def test_blocks_round_trip() -> None:
    rng = random.Random(9)
    block: dict[tuple[str, str], probe_sql.Series] = {}
    day_ms = (T_NOW // DAY * DAY) * 1000
    for key in (("web", "US"), ("api", "GB"), ("web", "JP")):
        entries = sorted(
            probe_sql.to_entry(
                day_ms + rng.randrange(DAY * 1000),
                rng.random() < 0.9,
                rng.choice((200, 503, None)),
                rng.choice((12.4, None, 70000.0)),
                rng.choice((0, 1, 70000)),
            )
            for _ in range(500)
        )
        block.setdefault(key, probe_sql.Series()).merge(entries)
    decoded = probe_sql.decode_raw(probe_sql.encode_raw(block, day_ms), day_ms)
    assert {k: list(s.entries()) for k, s in decoded.items()} == {
        k: list(s.entries()) for k, s in block.items()
    }
    minutes = probe_sql.MinuteBlock()
    minutes.add({k: list(s.entries()) for k, s in block.items()}, day_ms)
    again = probe_sql.decode_minutes(probe_sql.encode_minutes(minutes))
    assert {k: s.totals() for k, s in again.series.items()} == {
        k: s.totals() for k, s in minutes.series.items()
    }


async def test_the_scheduled_job_uses_the_configured_windows(store: Store) -> None:
    from bot.config import Settings
    from bot.model import utcnow
    from bot.store.retention import hot_seconds, retention_job

    settings = Settings()
    assert hot_seconds(settings) == settings.verdict.probe_window_minutes * 60 + 300
    now = to_epoch(utcnow())
    rows = probes(store, now - 3600, now - 1800)
    await store.add_probe_results(rows)
    report = await retention_job(store, settings)
    assert report.finished and report.packed == len(rows)
    assert count(store, "SELECT count(*) FROM probe_results") == 0

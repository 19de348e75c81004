"""The retention job: moves probe results down the storage tiers in small transactions.

One run goes through five phases, each in chunks:

1. pack: hot rows (``probe_results``) older than the hot window go into the packed raw blocks
   and the per-minute counts of their service and UTC day, and leave the hot table;
2. seal: a day that is over gets one block per service, compressed hardest; finished hours of
   the current day are merged into one block per service every hour;
3. expire raw: raw blocks of days that ended more than ``raw_days`` ago are deleted (their
   minute counts stay);
4. fold: minute blocks of days that ended more than ``minute_days`` ago are added to
   ``probe_days`` and deleted;
5. agent batches: replay-protection rows older than the signature window are deleted.

Every chunk is one BEGIN IMMEDIATE transaction of bounded size (``chunk_rows`` hot rows or results
rewritten, or one service-day when that is larger; ``chunk_blocks`` blocks to expire or fold),
run by the Store on its worker thread,
one chunk per call: the bot's other reads and writes take turns with it, and the event loop never
waits on it. A crash between chunks loses nothing: each chunk moves its rows and deletes them in
the same transaction, and the next run carries on. Rows of an import that is still running (or was
interrupted) stay hot, so ``abort_import`` can always take them back out.
"""

from __future__ import annotations

import bisect
import enum
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.model import utcnow
from bot.store import probes as probe_sql
from bot.store.connection import immediate
from bot.store.probes import DAY_MS, DAY_S, ErrorCodes, Key, to_entry

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from bot.config import Settings
    from bot.store import Store

log = logging.getLogger(__name__)

# Accepted agent batch ids are kept as long as raw results: an agent may resend a spooled batch
# hours after a lost response, and it must be recognised as a duplicate, not counted again.
# (The signature replay window, 300 s, is enforced separately, in memory.)
# The hot window is the verdict's probe window plus this: the verdict then never reads packed
# blocks, and a result arriving a little late still lands before its minute is packed.
HOT_MARGIN_SECONDS = 300
INTERVAL_SECONDS = 300  # how often the app should run retention_job
CHUNK_ROWS = 20_000
CHUNK_MS = 50.0  # a chunk takes no new group after this long (each group is a few ms)
CHUNK_BLOCKS = 25
MAX_CHUNKS = 100_000
_FIRST_MS = -(1 << 62)
_LAST_ID = 1 << 63


class Phase(enum.IntEnum):
    PACK = 1
    SEAL = 2
    EXPIRE_RAW = 3
    FOLD = 4
    AGENT_BATCHES = 5
    DONE = 6


@dataclass(frozen=True, slots=True)
class Horizons:
    """One run's boundaries, fixed at its start."""

    pack_before_ms: int  # hot rows with at_ms before this are packed
    raw_from_ms: int  # a day's raw block is kept while the day ends after this
    minutes_from_ms: int  # a day's minute block is kept while the day ends after this
    agent_batches_before: int  # epoch seconds
    chunk_rows: int = CHUNK_ROWS
    chunk_blocks: int = CHUNK_BLOCKS
    chunk_ms: float = CHUNK_MS

    @classmethod
    def at(
        cls,
        now: int,
        *,
        hot_seconds: int,
        raw_days: int,
        minute_days: int,
        chunk_rows: int = CHUNK_ROWS,
        chunk_blocks: int = CHUNK_BLOCKS,
        chunk_ms: float = CHUNK_MS,
    ) -> Horizons:
        if hot_seconds <= 0 or raw_days <= 0 or minute_days < raw_days:
            raise ValueError(
                "retention needs hot_seconds > 0 and 0 < raw_days <= minute_days "
                f"(got {hot_seconds}, {raw_days}, {minute_days})"
            )
        return cls(
            pack_before_ms=(now - hot_seconds) * 1000,
            raw_from_ms=(now - raw_days * DAY_S) * 1000,
            minutes_from_ms=(now - minute_days * DAY_S) * 1000,
            agent_batches_before=now - raw_days * DAY_S,
            chunk_rows=max(1, chunk_rows),
            chunk_blocks=max(1, chunk_blocks),
            chunk_ms=chunk_ms,
        )


@dataclass(slots=True)
class Cursor:
    """Where a run is: its phase and, while packing, the next (service, time) to look at."""

    phase: Phase = Phase.PACK
    service_id: int = -1
    from_ms: int = _FIRST_MS


@dataclass(slots=True)
class RetentionReport:
    chunks: int = 0
    packed: int = 0  # hot rows moved into the packed tiers
    duplicates: int = 0  # hot rows dropped because the packed tiers already had them
    importing: int = 0  # hot rows left in place: their import has not finished
    sealed: int = 0  # service-days sealed (over, in one block), or late results added to one
    hours_merged: int = 0  # service-days whose finished hours joined the day's block
    raw_expired: int = 0  # raw blocks deleted
    minutes_folded: int = 0  # minute blocks folded into probe_days
    agent_batches: int = 0  # replay-protection rows deleted
    largest_chunk_rows: int = 0  # hot rows read, or results rewritten, by the largest chunk
    longest_chunk_ms: float = 0.0
    longest_by_phase: dict[str, float] = field(default_factory=dict)  # ms, per phase name
    finished: bool = False  # False: stopped by max_chunks, the next run continues

    def summary(self) -> str:
        return (
            f"{self.chunks} chunks (longest {self.longest_chunk_ms:.0f} ms): packed "
            f"{self.packed}, duplicates {self.duplicates}, waiting for imports {self.importing}, "
            f"sealed {self.sealed}, hours merged {self.hours_merged}, raw expired "
            f"{self.raw_expired}, minutes folded {self.minutes_folded}, agent batches "
            f"{self.agent_batches}" + ("" if self.finished else "; more to do")
        )


def run_chunk(
    conn: sqlite3.Connection, h: Horizons, cursor: Cursor, report: RetentionReport
) -> None:
    """Run one bounded transaction of the current phase; advance ``cursor``, add to ``report``."""
    phase = cursor.phase
    step = _STEPS.get(phase)
    if step is None:
        return
    started = time.perf_counter()
    step(conn, h, cursor, report)
    elapsed = (time.perf_counter() - started) * 1000
    report.chunks += 1
    report.longest_chunk_ms = max(report.longest_chunk_ms, elapsed)
    name = phase.name.lower()
    report.longest_by_phase[name] = max(report.longest_by_phase.get(name, 0.0), elapsed)


# ---- 1. pack --------------------------------------------------------------------------------


def _pack(conn: sqlite3.Connection, h: Horizons, cursor: Cursor, report: RetentionReport) -> None:
    read = 0
    deadline = time.perf_counter() + h.chunk_ms / 1000
    with immediate(conn):
        importing = _importing_ranges(conn)
        codes = ErrorCodes(conn)
        while read < h.chunk_rows and time.perf_counter() < deadline:
            group = _next_group(conn, cursor, h.pack_before_ms)
            if group is None:
                cursor.phase = Phase.SEAL
                break
            service_id, day = group
            day_ms = day * 1000
            rows = conn.execute(
                "SELECT id, target, region, at_ms, ok, status, latency_ms, error "
                "FROM probe_results WHERE service_id = ? AND at_ms >= ? AND at_ms < ?",
                (service_id, day_ms, min(day_ms + DAY_MS, h.pack_before_ms)),
            ).fetchall()
            cursor.service_id, cursor.from_ms = service_id, day_ms + DAY_MS
            read += len(rows)
            if importing:
                kept = [r for r in rows if not _in_ranges(r[0], importing)]
                report.importing += len(rows) - len(kept)
                rows = kept
            if rows:
                if day_ms + DAY_MS <= h.pack_before_ms:  # sealing: the whole day is rewritten
                    read += _results(conn, service_id, day)
                    report.sealed += day_ms + DAY_MS > h.raw_from_ms
                added = _pack_day(conn, h, service_id, day, rows, codes)
                conn.executemany("DELETE FROM probe_results WHERE id = ?", [(r[0],) for r in rows])
                report.packed += added
                report.duplicates += len(rows) - added
    report.largest_chunk_rows = max(report.largest_chunk_rows, read)


def _next_group(conn: sqlite3.Connection, cursor: Cursor, before_ms: int) -> tuple[int, int] | None:
    """The next (service, UTC day) with hot rows to pack, in service order, from the cursor."""
    service_id, from_ms = cursor.service_id, cursor.from_ms
    while True:
        row = conn.execute(
            "SELECT at_ms FROM probe_results WHERE service_id = ? AND at_ms >= ? "
            "ORDER BY at_ms LIMIT 1",
            (service_id, from_ms),
        ).fetchone()
        if row is not None and row[0] < before_ms:
            return service_id, int(row[0]) // DAY_MS * DAY_S
        following = conn.execute(
            "SELECT service_id FROM probe_results WHERE service_id > ? ORDER BY service_id LIMIT 1",
            (service_id,),
        ).fetchone()
        if following is None:
            return None
        service_id, from_ms = int(following[0]), _FIRST_MS


def _pack_day(
    conn: sqlite3.Connection,
    h: Horizons,
    service_id: int,
    day: int,
    rows: list[tuple[int, str, str, int, int, int | None, float | None, str | None]],
    codes: ErrorCodes,
) -> int:
    """Move one service-day's hot rows into the tiers its age calls for; return how many were
    new (the rest were duplicates)."""
    incoming: dict[Key, list[probe_sql.Entry]] = {}
    for _id, target, region, at_ms, ok, status, latency, error in rows:
        incoming.setdefault((target, region), []).append(
            to_entry(at_ms, ok, status, latency, codes.code(error))
        )
    for entries in incoming.values():
        entries.sort()
    day_end_ms = (day + DAY_S) * 1000
    over = day_end_ms <= h.pack_before_ms
    if day_end_ms > h.raw_from_ms:
        added = probe_sql.pack_raw(conn, service_id, day, incoming, seal=over)
        minutes = probe_sql.load_minutes(conn, service_id, day)
        count = minutes.add(added, day * 1000)
        probe_sql.save_minutes(conn, service_id, day, minutes, final=over)
        return count
    if day_end_ms > h.minutes_from_ms:
        minutes = probe_sql.load_minutes(conn, service_id, day)
        count = minutes.fill(incoming, day * 1000)
        probe_sql.save_minutes(conn, service_id, day, minutes, final=True)
        return count
    return probe_sql.fill_days(conn, service_id, day, incoming)


def _importing_ranges(conn: sqlite3.Connection) -> list[tuple[int, int]]:
    """Hot-row id ranges written by imports that have not finished."""
    return [
        (int(first), int(last))
        for first, last in conn.execute(
            "SELECT b.first_id, b.last_id FROM import_batches AS b "
            "JOIN imports AS i ON i.id = b.import_id "
            "WHERE i.finished_at IS NULL AND b.kind = 'probes' ORDER BY b.first_id"
        )
    ]


def _in_ranges(row_id: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether ``row_id`` is in one of ``ranges`` (sorted, disjoint)."""
    i = bisect.bisect_right(ranges, (row_id, _LAST_ID)) - 1
    return i >= 0 and ranges[i][0] <= row_id <= ranges[i][1]


# ---- 2. seal --------------------------------------------------------------------------------


def _seal(conn: sqlite3.Connection, h: Horizons, cursor: Cursor, report: RetentionReport) -> None:
    """Seal days that are over; merge the finished hours of the day that is not into its block.

    Bounded by work: results in the blocks rewritten, at least one service-day per chunk.
    """
    last_day = h.pack_before_ms // 1000 - DAY_S  # days ending at or before the pack boundary
    assert (probe_sql.OPEN_DAY, probe_sql.SEALED, probe_sql.HOUR_MS) == (24, 25, 3_600_000)
    work = 0
    deadline = time.perf_counter() + h.chunk_ms / 1000
    with immediate(conn):
        while work < h.chunk_rows and time.perf_counter() < deadline:
            # "part < 25" literally: the partial index probe_raw_unsealed covers only those rows.
            row = conn.execute(
                "SELECT service_id, day FROM probe_raw WHERE part < 25 AND day <= ? "
                "ORDER BY day, service_id LIMIT 1",
                (last_day,),
            ).fetchone()
            if row is not None:
                sid, day = int(row[0]), int(row[1])
                work += _results(conn, sid, day) + 1
                probe_sql.pack_raw(conn, sid, day, {}, seal=True)
                minutes = probe_sql.load_minutes(conn, sid, day)
                probe_sql.save_minutes(conn, sid, day, minutes, final=True)
                report.sealed += 1
                continue
            row = conn.execute(
                "SELECT service_id, day FROM probe_raw WHERE part < 25 AND day > ? "
                "AND part < 24 AND day * 1000 + (part + 1) * 3600000 <= ? "
                "ORDER BY day, service_id LIMIT 1",
                (last_day, h.pack_before_ms),
            ).fetchone()
            if row is None:
                cursor.phase = Phase.EXPIRE_RAW
                break
            work += probe_sql.merge_hours(conn, int(row[0]), int(row[1]), h.pack_before_ms) + 1
            report.hours_merged += 1
    report.largest_chunk_rows = max(report.largest_chunk_rows, work)


def _results(conn: sqlite3.Connection, service_id: int, day: int) -> int:
    return int(
        conn.execute(
            "SELECT coalesce(sum(results), 0) FROM probe_raw WHERE service_id = ? AND day = ?",
            (service_id, day),
        ).fetchone()[0]
    )


# ---- 3. expire raw --------------------------------------------------------------------------


def _expire_raw(
    conn: sqlite3.Connection, h: Horizons, cursor: Cursor, report: RetentionReport
) -> None:
    last_day = h.raw_from_ms // 1000 - DAY_S
    with immediate(conn):
        deleted = conn.execute(
            "DELETE FROM probe_raw WHERE id IN "
            "(SELECT id FROM probe_raw WHERE day <= ? ORDER BY day LIMIT ?)",
            (last_day, h.chunk_blocks),
        ).rowcount
    report.raw_expired += deleted
    if deleted < h.chunk_blocks:
        cursor.phase = Phase.FOLD


# ---- 4. fold --------------------------------------------------------------------------------


def _fold(conn: sqlite3.Connection, h: Horizons, cursor: Cursor, report: RetentionReport) -> None:
    last_day = h.minutes_from_ms // 1000 - DAY_S
    with immediate(conn):
        blocks = conn.execute(
            "SELECT id, service_id, day, data FROM probe_minutes WHERE day <= ? "
            "ORDER BY day LIMIT ?",
            (last_day, h.chunk_blocks),
        ).fetchall()
        for _id, service_id, day, data in blocks:
            probe_sql.fold_minutes(conn, int(service_id), int(day), probe_sql.decode_minutes(data))
        conn.executemany("DELETE FROM probe_minutes WHERE id = ?", [(b[0],) for b in blocks])
    report.minutes_folded += len(blocks)
    if len(blocks) < h.chunk_blocks:
        cursor.phase = Phase.AGENT_BATCHES


# ---- 5. agent batches -----------------------------------------------------------------------


def _agent_batches(
    conn: sqlite3.Connection, h: Horizons, cursor: Cursor, report: RetentionReport
) -> None:
    with immediate(conn):
        deleted = conn.execute(
            "DELETE FROM agent_batches WHERE (agent_id, batch_id) IN "
            "(SELECT agent_id, batch_id FROM agent_batches WHERE received_at < ? LIMIT ?)",
            (h.agent_batches_before, h.chunk_rows),
        ).rowcount
    report.agent_batches += deleted
    if deleted < h.chunk_rows:
        cursor.phase = Phase.DONE


_STEPS = {
    Phase.PACK: _pack,
    Phase.SEAL: _seal,
    Phase.EXPIRE_RAW: _expire_raw,
    Phase.FOLD: _fold,
    Phase.AGENT_BATCHES: _agent_batches,
}


# ---- the scheduled job ----------------------------------------------------------------------


def hot_seconds(settings: Settings) -> int:
    return settings.verdict.probe_window_minutes * 60 + HOT_MARGIN_SECONDS


async def retention_job(
    store: Store, settings: Settings, stop: Callable[[], bool] | None = None
) -> RetentionReport:
    """One retention run with the configured windows; schedule every ``INTERVAL_SECONDS`` with
    ``max_instances=1, coalesce=True``. Chunks interleave with the bot's other store calls; the
    run ends early at a chunk boundary once ``stop()`` is true (the bot is stopping)."""
    report = await store.run_retention(
        utcnow(),
        hot_seconds=hot_seconds(settings),
        raw_days=settings.probes.raw_retention_days,
        minute_days=max(settings.probes.minute_retention_days, settings.probes.raw_retention_days),
        stop=stop,
    )
    log.info("retention: %s", report.summary())
    return report

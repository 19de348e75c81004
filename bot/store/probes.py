"""SQL for probe results in storage tiers, status snapshots and maintenance windows.

Probe results live in exactly one of two places at any committed moment:

- ``probe_results``, the hot table: one row per result, for results younger than the hot window
  (a little longer than the verdict's probe window) and for anything just inserted, whatever its
  age (imports of history land here too);
- the packed tiers, written by the retention job (``bot.store.retention``): ``probe_raw`` holds the
  raw results per service and UTC day as a compressed column block, ``probe_minutes`` the
  per-minute counts (and per-slot latency) per service and day, ``probe_days`` daily totals per
  (service, target, region) once the minutes expire.

Reads add the hot rows to the packed data, so moving results between tiers never changes an
answer. The layout, its arithmetic and what is approximate are in docs/storage.md.
"""

from __future__ import annotations

import bisect
import lzma
import math
import operator
import sqlite3
import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain

from bot.evidence import ProbeSample

DAY_S = 86_400
DAY_MS = DAY_S * 1000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
MINUTES_PER_DAY = 1440
# probe_raw.part: 0-23 are hours of a day that is not over, written as results are packed;
# OPEN_DAY holds that day's finished hours, merged once an hour; SEALED is a day that is over.
OPEN_DAY = 24
SEALED = 25
# Minute blocks keep latency per slot of this many minutes (counts are always per minute): see
# docs/storage.md for why per-minute latency does not fit the budget.
LATENCY_SLOT_MINUTES = 60
MAX_LATENCY_MS = 65_534  # packed latencies are whole milliseconds, clamped here (probes time out
# long before)
_MAX_COUNT = 65_535

# The first byte of every packed block says how the rest is compressed.
_DEFLATE = 1  # raw deflate: minute blocks (level 1 while the day is open, 9 once it is over)
_LZMA = 2  # raw LZMA2: raw blocks; ~11% smaller than deflate on them, as fast at preset 0
_LZMA_DICT = 1 << 20  # a day of one service unpacks to ~300 KB
FAST = 0  # LZMA preset for blocks that are rewritten (hour parts, the open day)
SMALL = 6  # LZMA preset for sealed days, written once: 3% smaller, 2.5x the time
_BIG_ENDIAN = sys.byteorder == "big"
_TYPECODE = {size: next(c for c in "BHILQ" if array(c).itemsize == size) for size in (2, 4, 8)}

Key = tuple[str, str]  # (target, region): one series of a service
# One packed result: (at_ms, ok 0/1, status or 0, latency ms + 1 or 0, probe_errors.id or 0).
Entry = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class ProbeRow:
    service_id: int
    target: str
    region: str
    at_ms: int
    ok: bool
    status: int | None
    latency_ms: float | None
    error: str | None


# ---- the hot table --------------------------------------------------------------------------


def insert_probes(conn: sqlite3.Connection, rows: Sequence[ProbeRow]) -> int:
    """Insert probe results inside the caller's transaction; return how many were new.

    A result is a duplicate when one with the same (service, at_ms, target, region) is in the hot
    table or in a packed raw block. Results older than the raw retention can only be checked
    against the minute or day tier, which the retention job does when it packs them.
    """
    before = int(conn.execute("SELECT coalesce(max(id), 0) FROM probe_results").fetchone()[0])
    conn.executemany(
        "INSERT OR IGNORE INTO probe_results "
        "(service_id, target, region, at_ms, ok, status, latency_ms, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (r.service_id, r.target, r.region, r.at_ms, int(r.ok), r.status, r.latency_ms, r.error)
            for r in rows
        ],
    )
    _drop_already_packed(conn, before)
    return int(
        conn.execute("SELECT count(*) FROM probe_results WHERE id > ?", (before,)).fetchone()[0]
    )


# New hot rows that fall inside a packed raw block's time span: candidates for duplicates. Live
# results are newer than every block, so this is one index probe per row that finds nothing.
_PACKED_CANDIDATES = """
SELECT r.id, r.target, r.region, r.at_ms, b.id
FROM probe_results AS r
JOIN probe_raw AS b
  ON b.service_id = r.service_id
 AND b.day = r.at_ms / 86400000 * 86400
 AND b.part IN (r.at_ms % 86400000 / 3600000, 24, 25)
 AND r.at_ms BETWEEN b.first_ms AND b.last_ms
WHERE r.id > ?
"""


def _drop_already_packed(conn: sqlite3.Connection, after_id: int) -> None:
    by_block: dict[int, list[tuple[int, Key, int]]] = {}
    for row_id, target, region, at_ms, block_id in conn.execute(_PACKED_CANDIDATES, (after_id,)):
        by_block.setdefault(int(block_id), []).append((int(row_id), (target, region), at_ms))
    duplicates = []
    for block_id, candidates in by_block.items():
        day, data = conn.execute(
            "SELECT day, data FROM probe_raw WHERE id = ?", (block_id,)
        ).fetchone()
        block = decode_raw(data, int(day) * 1000)
        for row_id, key, at_ms in candidates:
            series = block.get(key)
            if series is not None and series.contains(at_ms):
                duplicates.append((row_id,))
    conn.executemany("DELETE FROM probe_results WHERE id = ?", duplicates)


def recent_probes(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> tuple[ProbeSample, ...]:
    """Probe results with since < at <= until (seconds; ``until`` takes its whole second)."""
    lo, hi = since * 1000, until * 1000 + 999
    rows = conn.execute(
        "SELECT target, region, at_ms, ok, status, latency_ms, error FROM probe_results "
        "WHERE service_id = ? AND at_ms > ? AND at_ms <= ? ORDER BY at_ms, id",
        (service_id, lo, hi),
    )
    hot = [
        ProbeSample(target, region, at_ms / 1000, bool(ok), status, latency_ms, error)
        for target, region, at_ms, ok, status, latency_ms, error in rows
    ]
    # Packed blocks overlapping the window: none for the verdict's window, which the hot table
    # covers, so the common case costs one index probe.
    blocks = conn.execute(
        "SELECT day, data FROM probe_raw WHERE service_id = ? AND last_ms > ? AND first_ms <= ?",
        (service_id, lo, hi),
    ).fetchall()
    if not blocks:
        return tuple(hot)
    packed = _packed_samples(conn, blocks, lo, hi)
    # Stable: packed results first at equal times, like their lower ids in the hot table.
    return tuple(sorted([*packed, *hot], key=lambda s: s.at))


def _packed_samples(
    conn: sqlite3.Connection, blocks: Iterable[tuple[int, bytes]], lo: int, hi: int
) -> list[ProbeSample]:
    picked: list[tuple[Key, Entry]] = []
    for day, data in blocks:
        for key, series in decode_raw(data, int(day) * 1000).items():
            start = bisect.bisect_right(series.at, lo)
            end = bisect.bisect_right(series.at, hi)
            picked += [(key, series.entry(i)) for i in range(start, end)]
    texts = error_texts(conn, {e[4] for _, e in picked if e[4]})
    return [
        ProbeSample(
            target,
            region,
            at_ms / 1000,
            bool(ok),
            status or None,
            float(latency - 1) if latency else None,
            texts.get(error) if error else None,
        )
        for (target, region), (at_ms, ok, status, latency, error) in sorted(
            picked, key=lambda p: p[1][0]
        )
    ]


def failing_minutes(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> dict[int, tuple[int, int]]:
    """(ok, failed) probe counts per minute, all targets and regions together.

    Keys are epoch seconds of minute starts with since <= minute < until; minutes without
    results are left out.
    """
    totals: dict[int, list[int]] = {}
    first_day = since // DAY_S * DAY_S
    for day, data in conn.execute(
        "SELECT day, data FROM probe_minutes WHERE service_id = ? AND day >= ? AND day < ?",
        (service_id, first_day, until),
    ):
        block = decode_minutes(data)
        lo = max(0, -((day - since) // 60))  # first slot whose minute is >= since
        hi = min(MINUTES_PER_DAY, -((day - until) // 60))  # first slot whose minute >= until
        if lo >= hi or not block.series:
            continue
        oks = map(sum, zip(*(s.ok[lo:hi] for s in block.series.values()), strict=True))
        fails = map(sum, zip(*(s.failed[lo:hi] for s in block.series.values()), strict=True))
        for i, (ok, failed) in enumerate(zip(oks, fails, strict=True)):
            if ok or failed:
                cell = totals.setdefault(day + (lo + i) * 60, [0, 0])
                cell[0] += ok
                cell[1] += failed
    # Minutes whose start is in [since, until) are the results with at_ms in this range.
    lo_ms, hi_ms = -(-since // 60) * MINUTE_MS, -(-until // 60) * MINUTE_MS
    for minute, ok, failed in conn.execute(
        "SELECT at_ms / 60000 * 60, sum(ok), sum(1 - ok) FROM probe_results "
        "WHERE service_id = ? AND at_ms >= ? AND at_ms < ? GROUP BY 1",
        (service_id, lo_ms, hi_ms),
    ):
        cell = totals.setdefault(int(minute), [0, 0])
        cell[0] += int(ok)
        cell[1] += int(failed)
    return {m: (ok, failed) for m, (ok, failed) in sorted(totals.items())}


def availability(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> dict[str, tuple[int, int]]:
    """(ok, failed) probe counts per region with since <= minute < until, all targets together.

    From the per-minute rollups and the recent rows, like ``failing_minutes``; for digests.
    """
    totals: dict[str, list[int]] = {}
    first_day = since // DAY_S * DAY_S
    for day, data in conn.execute(
        "SELECT day, data FROM probe_minutes WHERE service_id = ? AND day >= ? AND day < ?",
        (service_id, first_day, until),
    ):
        block = decode_minutes(data)
        lo = max(0, -((day - since) // 60))
        hi = min(MINUTES_PER_DAY, -((day - until) // 60))
        if lo >= hi:
            continue
        for (_target, region), series in block.series.items():
            cell = totals.setdefault(region, [0, 0])
            cell[0] += sum(series.ok[lo:hi])
            cell[1] += sum(series.failed[lo:hi])
    lo_ms, hi_ms = -(-since // 60) * MINUTE_MS, -(-until // 60) * MINUTE_MS
    for region, ok, failed in conn.execute(
        "SELECT region, sum(ok), sum(1 - ok) FROM probe_results "
        "WHERE service_id = ? AND at_ms >= ? AND at_ms < ? GROUP BY region",
        (service_id, lo_ms, hi_ms),
    ):
        cell = totals.setdefault(region, [0, 0])
        cell[0] += int(ok)
        cell[1] += int(failed)
    return {r: (ok, failed) for r, (ok, failed) in sorted(totals.items()) if ok or failed}


def delete_probes(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    """Remove the hot rows with ids in [first_id, last_id] (an import being taken back out).

    Ids exist only in the hot table. That covers every import that can be aborted: the retention
    job never packs the rows of an unfinished import (see ``bot.store.retention``), and nothing
    derived from hot rows is stored, so there is nothing else to adjust.
    """
    conn.execute("DELETE FROM probe_results WHERE id BETWEEN ? AND ?", (first_id, last_id))


# ---- packed raw blocks ----------------------------------------------------------------------


@dataclass(slots=True)
class Series:
    """The packed results of one (target, region) of a service, as columns sorted by time."""

    at: array[int] = field(default_factory=lambda: array("q"))
    ok: bytearray = field(default_factory=bytearray)
    status: array[int] = field(default_factory=lambda: array(_TYPECODE[2]))
    latency: array[int] = field(default_factory=lambda: array(_TYPECODE[2]))
    error: array[int] = field(default_factory=lambda: array(_TYPECODE[4]))

    def __len__(self) -> int:
        return len(self.at)

    def entry(self, i: int) -> Entry:
        return (self.at[i], self.ok[i], self.status[i], self.latency[i], self.error[i])

    def entries(self) -> Iterator[Entry]:
        return zip(self.at, self.ok, self.status, self.latency, self.error, strict=True)

    def contains(self, at_ms: int) -> bool:
        i = bisect.bisect_left(self.at, at_ms)
        return i < len(self.at) and self.at[i] == at_ms

    def absorb(self, other: Series) -> None:
        """Add another series' results (usually all later than these: then no sorting)."""
        if not len(other):
            return
        if not self.at or other.at[0] > self.at[-1]:
            self.at.extend(other.at)
            self.ok.extend(other.ok)
            self.status.extend(other.status)
            self.latency.extend(other.latency)
            self.error.extend(other.error)
        else:
            self.merge(list(other.entries()))

    def merge(self, entries: Sequence[Entry]) -> list[Entry]:
        """Add the entries (sorted by time) whose time is not here yet; return those added."""
        if not entries:
            return []
        if not self.at or entries[0][0] > self.at[-1]:
            fresh = _unique_times(entries)
            self._extend(fresh)
            return fresh
        have = set(self.at)
        fresh = _unique_times([e for e in entries if e[0] not in have])
        if fresh:
            merged = sorted([*self.entries(), *fresh])
            self.at, self.ok, self.status, self.latency, self.error = Series._columns(merged)
        return fresh

    def _extend(self, entries: Sequence[Entry]) -> None:
        at, ok, status, latency, error = Series._columns(entries)
        self.at.extend(at)
        self.ok.extend(ok)
        self.status.extend(status)
        self.latency.extend(latency)
        self.error.extend(error)

    @staticmethod
    def _columns(
        entries: Sequence[Entry],
    ) -> tuple[array[int], bytearray, array[int], array[int], array[int]]:
        return (
            array("q", [e[0] for e in entries]),
            bytearray(e[1] for e in entries),
            array(_TYPECODE[2], [e[2] for e in entries]),
            array(_TYPECODE[2], [e[3] for e in entries]),
            array(_TYPECODE[4], [e[4] for e in entries]),
        )


def _unique_times(entries: Sequence[Entry]) -> list[Entry]:
    out: list[Entry] = []
    for e in entries:
        if not out or e[0] != out[-1][0]:
            out.append(e)
    return out


RawBlock = dict[Key, Series]


def encode_raw(block: Mapping[Key, Series], base_ms: int, preset: int = FAST) -> bytes:
    """Pack a block: series header, then columns over all series, each byte plane apart.

    Times are deltas from the previous result of the series (the first from ``base_ms``, the
    block's day), so a 30 s probe with jitter stores ~13 bits of time per result.
    """
    keys = sorted(k for k, s in block.items() if len(s))
    out = [struct.pack("<H", len(keys))]
    deltas: list[int] = []
    ok = bytearray()
    status, latency = array(_TYPECODE[2]), array(_TYPECODE[2])
    error = array(_TYPECODE[4])
    for key in keys:
        s = block[key]
        out += [_key_bytes(key), struct.pack("<I", len(s))]
        deltas += map(operator.sub, s.at, chain((base_ms,), s.at))
        ok += s.ok
        status += s.status
        latency += s.latency
        error += s.error
    if deltas and (min(deltas) < 0 or max(deltas) >= 1 << 32):
        raise ValueError("probe results outside their block's day")
    out += [
        _planes(array(_TYPECODE[4], deltas)),
        bytes(ok),
        _planes(status),
        _planes(latency),
        _planes(error),
    ]
    return _compress_lzma(b"".join(out), preset)


def decode_raw(blob: bytes, base_ms: int) -> RawBlock:
    r = _Reader(_decompress(blob))
    keys = [(r.key(), r.u32()) for _ in range(r.u16())]
    total = sum(n for _, n in keys)
    deltas = r.planes(total, 4)
    ok = r.take(total)
    status, latency, error = r.planes(total, 2), r.planes(total, 2), r.planes(total, 4)
    block: RawBlock = {}
    pos = 0
    for key, n in keys:
        end = pos + n
        at = array("q", accumulate(deltas[pos:end], initial=base_ms))
        del at[0]
        block[key] = Series(
            at, bytearray(ok[pos:end]), status[pos:end], latency[pos:end], error[pos:end]
        )
        pos = end
    return block


def save_raw(
    conn: sqlite3.Connection,
    service_id: int,
    day: int,
    part: int,
    block: Mapping[Key, Series],
) -> int:
    """Write (or delete, when empty) one raw block; return its size in bytes."""
    series = [s for s in block.values() if len(s)]
    if not series:
        conn.execute(
            "DELETE FROM probe_raw WHERE service_id = ? AND day = ? AND part = ?",
            (service_id, day, part),
        )
        return 0
    data = encode_raw(block, day * 1000, SMALL if part == SEALED else FAST)
    conn.execute(
        "INSERT INTO probe_raw (service_id, day, part, first_ms, last_ms, results, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service_id, day, part) DO UPDATE SET "
        "first_ms = excluded.first_ms, last_ms = excluded.last_ms, "
        "results = excluded.results, data = excluded.data",
        (
            service_id,
            day,
            part,
            min(s.at[0] for s in series),
            max(s.at[-1] for s in series),
            sum(len(s) for s in series),
            data,
        ),
    )
    return len(data)


@dataclass(frozen=True, slots=True)
class _Part:
    part: int
    last_ms: int
    results: int
    data: bytes


def _parts(conn: sqlite3.Connection, service_id: int, day: int) -> dict[int, _Part]:
    return {
        int(part): _Part(int(part), int(last_ms), int(results), data)
        for part, last_ms, results, data in conn.execute(
            "SELECT part, last_ms, results, data FROM probe_raw WHERE service_id = ? AND day = ?",
            (service_id, day),
        )
    }


def _merged(parts: Iterable[_Part], base_ms: int) -> RawBlock:
    """The union of blocks; the open day's hours first, so that hours append without sorting."""
    block: RawBlock = {}
    order = {OPEN_DAY: 0, SEALED: 2}
    for part in sorted(parts, key=lambda p: (order.get(p.part, 1), p.part)):
        for key, series in decode_raw(part.data, base_ms).items():
            block.setdefault(key, Series()).absorb(series)
    return block


def pack_raw(
    conn: sqlite3.Connection,
    service_id: int,
    day: int,
    incoming: Mapping[Key, Sequence[Entry]],
    *,
    seal: bool,
) -> dict[Key, list[Entry]]:
    """Merge entries (of one service and UTC day) into its raw blocks; return those added.

    While the day is not over, entries go to the block of their hour (small, rewritten by every
    run) and ``merge_hours`` later moves finished hours into the day's OPEN_DAY block. ``seal``
    (the day is over) merges every block of the day and ``incoming`` into the SEALED block.
    """
    base_ms = day * 1000
    parts = _parts(conn, service_id, day)
    added: dict[Key, list[Entry]] = {}
    if seal or SEALED in parts:
        block = _merged(parts.values(), base_ms)
        for key, entries in incoming.items():
            added[key] = block.setdefault(key, Series()).merge(entries)
        save_raw(conn, service_id, day, SEALED, block)
        if any(part != SEALED for part in parts):
            conn.execute(
                "DELETE FROM probe_raw WHERE service_id = ? AND day = ? AND part < ?",
                (service_id, day, SEALED),
            )
        return added
    open_day = parts.get(OPEN_DAY)
    merged_hours: RawBlock | None = None
    by_hour: dict[int, dict[Key, list[Entry]]] = {}
    for key, entries in incoming.items():
        if open_day is not None and entries[0][0] <= open_day.last_ms:
            # Late results for hours already merged: drop those the open day already has.
            if merged_hours is None:
                merged_hours = decode_raw(open_day.data, base_ms)
            have = merged_hours.get(key)
            if have is not None:
                entries = [e for e in entries if not have.contains(e[0])]
        for e in entries:
            by_hour.setdefault((e[0] - base_ms) // HOUR_MS, {}).setdefault(key, []).append(e)
    for hour, hour_entries in sorted(by_hour.items()):
        block = decode_raw(parts[hour].data, base_ms) if hour in parts else {}
        for key, entries in hour_entries.items():
            added.setdefault(key, []).extend(block.setdefault(key, Series()).merge(entries))
        save_raw(conn, service_id, day, hour, block)
    return added


def merge_hours(conn: sqlite3.Connection, service_id: int, day: int, before_ms: int) -> int:
    """Move a day's hour blocks that end by ``before_ms`` into its OPEN_DAY block (one larger
    block compresses better and fills its pages); return the results in the blocks touched."""
    parts = _parts(conn, service_id, day)
    base_ms = day * 1000
    done = [
        p
        for p in parts.values()
        if p.part < OPEN_DAY and base_ms + (p.part + 1) * HOUR_MS <= before_ms
    ]
    if not done:
        return 0
    chosen = [*done, *([parts[OPEN_DAY]] if OPEN_DAY in parts else [])]
    save_raw(conn, service_id, day, OPEN_DAY, _merged(chosen, base_ms))
    conn.executemany(
        "DELETE FROM probe_raw WHERE service_id = ? AND day = ? AND part = ?",
        [(service_id, day, p.part) for p in done],
    )
    return sum(p.results for p in chosen)


# ---- packed minute blocks -------------------------------------------------------------------


@dataclass(slots=True)
class MinuteSeries:
    """Counts per minute and latency per slot of one (target, region) over one UTC day."""

    ok: array[int]
    failed: array[int]
    latency_n: array[int]
    latency_sum: array[int]  # whole milliseconds
    latency_max: array[int]  # 0: none, else milliseconds + 1

    @classmethod
    def empty(cls, slots: int) -> MinuteSeries:
        return cls(
            array(_TYPECODE[2], bytes(2 * MINUTES_PER_DAY)),
            array(_TYPECODE[2], bytes(2 * MINUTES_PER_DAY)),
            array(_TYPECODE[4], bytes(4 * slots)),
            array(_TYPECODE[8], bytes(8 * slots)),
            array(_TYPECODE[2], bytes(2 * slots)),
        )

    def add(self, entries: Iterable[Entry], day_ms: int, slot_minutes: int) -> None:
        for at, ok, _status, latency, _error in entries:
            minute = (at - day_ms) // MINUTE_MS
            if ok:
                self.ok[minute] = min(_MAX_COUNT, self.ok[minute] + 1)
            else:
                self.failed[minute] = min(_MAX_COUNT, self.failed[minute] + 1)
            if latency:
                slot = minute // slot_minutes
                self.latency_n[slot] += 1
                self.latency_sum[slot] += latency - 1
                self.latency_max[slot] = max(self.latency_max[slot], latency)

    def totals(self) -> tuple[int, int, float, float | None]:
        """(ok, failed, latency sum ms, latency max ms or None) over the day."""
        top = max(self.latency_max, default=0)
        return (
            sum(self.ok),
            sum(self.failed),
            float(sum(self.latency_sum)),
            float(top - 1) if top else None,
        )


@dataclass(slots=True)
class MinuteBlock:
    slot_minutes: int = LATENCY_SLOT_MINUTES
    series: dict[Key, MinuteSeries] = field(default_factory=dict)

    def get(self, key: Key) -> MinuteSeries:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = MinuteSeries.empty(MINUTES_PER_DAY // self.slot_minutes)
        return series

    def add(self, entries: Mapping[Key, Sequence[Entry]], day_ms: int) -> int:
        for key, rows in entries.items():
            if rows:
                self.get(key).add(rows, day_ms, self.slot_minutes)
        return sum(len(rows) for rows in entries.values())

    def fill(self, entries: Mapping[Key, Sequence[Entry]], day_ms: int) -> int:
        """Add results only to minutes that have none yet for their series; return how many.

        For results older than the raw retention: without the raw results, a minute that already
        has counts is taken to hold these same results (re-imported history), not new ones.
        """
        added = 0
        for key, rows in entries.items():
            series = self.get(key)
            by_minute: dict[int, list[Entry]] = {}
            for e in rows:
                by_minute.setdefault((e[0] - day_ms) // MINUTE_MS, []).append(e)
            for minute, group in by_minute.items():
                if series.ok[minute] == 0 and series.failed[minute] == 0:
                    series.add(group, day_ms, self.slot_minutes)
                    added += len(group)
        return added


def encode_minutes(block: MinuteBlock, *, final: bool = True) -> bytes:
    """Pack a minute block; ``final`` (the day is over) compresses ~30% smaller, 13x slower."""
    keys = sorted(block.series)
    out = [struct.pack("<HH", len(keys), block.slot_minutes), *map(_key_bytes, keys)]
    for name in ("ok", "failed", "latency_n", "latency_sum", "latency_max"):
        column = getattr(block.series[keys[0]], name)[:0] if keys else array(_TYPECODE[2])
        for key in keys:
            column += getattr(block.series[key], name)
        out.append(_planes(column))
    return _compress_deflate(b"".join(out), 9 if final else 1)


def decode_minutes(blob: bytes) -> MinuteBlock:
    r = _Reader(_decompress(blob))
    n, slot_minutes = r.u16(), r.u16()
    keys = [r.key() for _ in range(n)]
    slots = MINUTES_PER_DAY // slot_minutes
    ok = r.planes(n * MINUTES_PER_DAY, 2)
    failed = r.planes(n * MINUTES_PER_DAY, 2)
    lat_n, lat_sum, lat_max = r.planes(n * slots, 4), r.planes(n * slots, 8), r.planes(n * slots, 2)
    block = MinuteBlock(slot_minutes)
    for i, key in enumerate(keys):
        m = slice(i * MINUTES_PER_DAY, (i + 1) * MINUTES_PER_DAY)
        s = slice(i * slots, (i + 1) * slots)
        block.series[key] = MinuteSeries(ok[m], failed[m], lat_n[s], lat_sum[s], lat_max[s])
    return block


def load_minutes(conn: sqlite3.Connection, service_id: int, day: int) -> MinuteBlock:
    row = conn.execute(
        "SELECT data FROM probe_minutes WHERE service_id = ? AND day = ?", (service_id, day)
    ).fetchone()
    return MinuteBlock() if row is None else decode_minutes(row[0])


def save_minutes(
    conn: sqlite3.Connection, service_id: int, day: int, block: MinuteBlock, *, final: bool
) -> int:
    if not block.series:
        conn.execute(
            "DELETE FROM probe_minutes WHERE service_id = ? AND day = ?", (service_id, day)
        )
        return 0
    data = encode_minutes(block, final=final)
    if final:
        # A new row at the end of the table: the day's final blocks fill pages densely, instead
        # of staying in the pages that the growing open-day block split all day long.
        conn.execute(
            "DELETE FROM probe_minutes WHERE service_id = ? AND day = ?", (service_id, day)
        )
    conn.execute(
        "INSERT INTO probe_minutes (service_id, day, data) VALUES (?, ?, ?) "
        "ON CONFLICT (service_id, day) DO UPDATE SET data = excluded.data",
        (service_id, day, data),
    )
    return len(data)


# ---- daily aggregates -----------------------------------------------------------------------

_ADD_DAY = """
INSERT INTO probe_days (service_id, target, region, day, ok, failed, latency_sum, latency_max)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (service_id, day, target, region) DO UPDATE SET
    ok = ok + excluded.ok,
    failed = failed + excluded.failed,
    latency_sum = latency_sum + excluded.latency_sum,
    latency_max = CASE WHEN latency_max IS NULL THEN excluded.latency_max
                       WHEN excluded.latency_max IS NULL THEN latency_max
                       ELSE max(latency_max, excluded.latency_max) END
"""


def fold_minutes(conn: sqlite3.Connection, service_id: int, day: int, block: MinuteBlock) -> None:
    """Add a minute block's daily totals to probe_days (the caller deletes the block)."""
    conn.executemany(
        _ADD_DAY,
        [
            (service_id, target, region, day, *s.totals())
            for (target, region), s in block.series.items()
        ],
    )


def fill_days(
    conn: sqlite3.Connection, service_id: int, day: int, entries: Mapping[Key, Sequence[Entry]]
) -> int:
    """Results older than the minute retention: a new probe_days row per series, unless the
    series already has that day (then they are taken to be re-imported history). Returns how many
    results were added."""
    added = 0
    for (target, region), rows in entries.items():
        if not rows:
            continue
        series = MinuteSeries.empty(1)
        series.add(rows, day * 1000, MINUTES_PER_DAY)
        cursor = conn.execute(
            "INSERT OR IGNORE INTO probe_days "
            "(service_id, target, region, day, ok, failed, latency_sum, latency_max) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (service_id, target, region, day, *series.totals()),
        )
        added += len(rows) if cursor.rowcount == 1 else 0
    return added


# ---- error strings --------------------------------------------------------------------------


class ErrorCodes:
    """Error strings as probe_errors ids, inside the caller's transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._ids: dict[str, int] = {}

    def code(self, text: str | None) -> int:
        if text is None:
            return 0
        known = self._ids.get(text)
        if known is not None:
            return known
        self._conn.execute("INSERT OR IGNORE INTO probe_errors (text) VALUES (?)", (text,))
        row = self._conn.execute("SELECT id FROM probe_errors WHERE text = ?", (text,)).fetchone()
        self._ids[text] = int(row[0])
        return self._ids[text]


def error_texts(conn: sqlite3.Connection, codes: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    return {
        int(i): str(text)
        for i, text in conn.execute(
            f"SELECT id, text FROM probe_errors WHERE id IN ({marks})",  # noqa: S608 - only "?"
            wanted,
        )
    }


def to_entry(
    at_ms: int, ok: object, status: int | None, latency_ms: float | None, error: int
) -> Entry:
    """A hot row's values as a packed entry: latency to whole ms, status 0 for none."""
    lat = 0
    if latency_ms is not None and math.isfinite(latency_ms):
        lat = min(MAX_LATENCY_MS, max(0, round(latency_ms))) + 1
    code = status if status is not None and 0 < status <= 0xFFFF else 0
    return (at_ms, 1 if ok else 0, code, lat, error)


# ---- byte planes and compression ------------------------------------------------------------


def _key_bytes(key: Key) -> bytes:
    out = b""
    for part in key:
        raw = part.encode()
        if len(raw) > 255:
            raise ValueError(f"probe target or region too long to pack: {part[:40]!r}")
        out += bytes([len(raw)]) + raw
    return out


def _planes(values: array[int]) -> bytes:
    """Little-endian values with byte i of every value together: the high bytes, mostly zero or
    constant, compress to almost nothing."""
    width = values.itemsize
    if _BIG_ENDIAN:
        values = array(values.typecode, values)
        values.byteswap()
    raw = values.tobytes()
    return b"".join(raw[i::width] for i in range(width))


def _compress_deflate(payload: bytes, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return bytes([_DEFLATE]) + packer.compress(payload) + packer.flush()


def _compress_lzma(payload: bytes, preset: int) -> bytes:
    dict_size = min(_LZMA_DICT, max(1 << 12, len(payload)))
    filters = [{"id": lzma.FILTER_LZMA2, "preset": preset, "dict_size": dict_size}]
    return bytes([_LZMA]) + lzma.compress(payload, format=lzma.FORMAT_RAW, filters=filters)


def _decompress(blob: bytes) -> bytes:
    if blob and blob[0] == _DEFLATE:
        return zlib.decompress(blob[1:], -15)
    if blob and blob[0] == _LZMA:
        filters = [{"id": lzma.FILTER_LZMA2, "dict_size": _LZMA_DICT}]
        return lzma.decompress(blob[1:], format=lzma.FORMAT_RAW, filters=filters)
    raise ValueError("unknown packed probe block format")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def take(self, n: int) -> bytes:
        chunk = self._data[self._pos : self._pos + n]
        if len(chunk) != n:
            raise ValueError("truncated packed probe block")
        self._pos += n
        return bytes(chunk)

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def key(self) -> Key:
        target = self.take(self.take(1)[0]).decode()
        region = self.take(self.take(1)[0]).decode()
        return target, region

    def planes(self, n: int, width: int) -> array[int]:
        raw = bytearray(n * width)
        for i in range(width):
            raw[i::width] = self.take(n)
        values = array(_TYPECODE[width])
        values.frombytes(raw)
        if _BIG_ENDIAN:
            values.byteswap()
        return values


# ---- status snapshots and maintenance windows -----------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRow:
    service_id: int
    at: int
    indicator: str
    description: str


def insert_status(conn: sqlite3.Connection, rows: Sequence[StatusRow]) -> int:
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO status_snapshots (service_id, at, indicator, description) "
        "VALUES (?, ?, ?, ?)",
        [(r.service_id, r.at, r.indicator, r.description) for r in rows],
    )
    return conn.total_changes - before


def latest_status(
    conn: sqlite3.Connection, service_id: int, until: int
) -> tuple[int, str, str] | None:
    row = conn.execute(
        "SELECT at, indicator, description FROM status_snapshots "
        "WHERE service_id = ? AND at <= ? ORDER BY at DESC LIMIT 1",
        (service_id, until),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def active_maintenance(
    conn: sqlite3.Connection, service_id: int, at: int
) -> tuple[int, int, str] | None:
    row = conn.execute(
        "SELECT starts, ends, note FROM maintenance_windows "
        "WHERE service_id = ? AND ends > ? AND starts <= ? ORDER BY starts LIMIT 1",
        (service_id, at, at),
    ).fetchone()
    return None if row is None else (int(row[0]), int(row[1]), str(row[2]))

"""SQL for probe results and their per-minute rollups, status snapshots and maintenance windows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from bot.evidence import ProbeSample


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


_ROLLUP = """
INSERT INTO probe_minutes (service_id, target, region, minute, ok, failed, latency_sum, latency_max)
SELECT service_id, target, region, at_ms / 60000 * 60, sum(ok), sum(1 - ok),
       coalesce(sum(latency_ms), 0), max(latency_ms)
FROM probe_results WHERE id > ?
GROUP BY service_id, target, region, at_ms / 60000
ON CONFLICT (service_id, minute, target, region) DO UPDATE SET
    ok = ok + excluded.ok,
    failed = failed + excluded.failed,
    latency_sum = latency_sum + excluded.latency_sum,
    latency_max = max(coalesce(latency_max, 0), coalesce(excluded.latency_max, 0))
"""


def insert_probes(conn: sqlite3.Connection, rows: Sequence[ProbeRow]) -> int:
    """Insert probe results inside the caller's transaction; return how many were new."""
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
    conn.execute(_ROLLUP, (before,))
    return int(
        conn.execute("SELECT count(*) FROM probe_results WHERE id > ?", (before,)).fetchone()[0]
    )


def recent_probes(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> tuple[ProbeSample, ...]:
    rows = conn.execute(
        "SELECT target, region, at_ms, ok, status, latency_ms, error FROM probe_results "
        "WHERE service_id = ? AND at_ms > ? AND at_ms <= ? ORDER BY at_ms, id",
        (service_id, since * 1000, until * 1000 + 999),
    )
    return tuple(
        ProbeSample(target, region, at_ms / 1000, bool(ok), status, latency_ms, error)
        for target, region, at_ms, ok, status, latency_ms, error in rows
    )


def failing_minutes(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> dict[int, tuple[int, int]]:
    """(ok, failed) probe counts per minute, all targets and regions together."""
    rows = conn.execute(
        "SELECT minute, sum(ok), sum(failed) FROM probe_minutes "
        "WHERE service_id = ? AND minute >= ? AND minute < ? GROUP BY minute",
        (service_id, since, until),
    )
    return {int(m): (int(ok), int(failed)) for m, ok, failed in rows}


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


def delete_probes(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    """Remove probe results with ids in [first_id, last_id] and take them out of the rollups.

    ``latency_max`` cannot be un-maxed; it stays as an upper bound for the minutes touched.
    """
    rows = conn.execute(
        "SELECT sum(ok), sum(1 - ok), coalesce(sum(latency_ms), 0), "
        "service_id, at_ms / 60000 * 60, target, region FROM probe_results "
        "WHERE id BETWEEN ? AND ? GROUP BY 4, 5, 6, 7",
        (first_id, last_id),
    ).fetchall()
    conn.executemany(
        "UPDATE probe_minutes SET ok = ok - ?, failed = failed - ?, latency_sum = latency_sum - ? "
        "WHERE service_id = ? AND minute = ? AND target = ? AND region = ?",
        rows,
    )
    conn.executemany(
        "DELETE FROM probe_minutes WHERE service_id = ? AND minute = ? AND target = ? "
        "AND region = ? AND ok + failed <= 0",
        [row[3:] for row in rows],
    )
    conn.execute("DELETE FROM probe_results WHERE id BETWEEN ? AND ?", (first_id, last_id))

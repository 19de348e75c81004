"""SQL for crowd reports and works-for-me confirmations, and their per-minute and hourly rollups.

A report counts once per user, service and dedupe window; later ones are kept as comments
(``counted = 0``). One tenant's counted reports per window are capped so a single guild cannot move
a verdict alone. Rollups are updated in the same transaction from the rows just inserted, so the
verdict reads a few dozen rollup rows instead of scanning raw reports, and the store remembers
what a verdict counted until a report in it changes (``bot.store.report_cache``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from bot.store.report_cache import Counts, History, ReportCache

HOUR = 3600

_INSERT_REPORT = """
INSERT INTO reports
    (service_id, at, bucket, region, problem, platform, tenant, user, note, counted)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_ROLLUP_MINUTES = """
INSERT INTO report_minutes (service_id, minute, region, problem, n) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (service_id, minute, region, problem) DO UPDATE SET n = n + excluded.n
"""

_ROLLUP_HOURS = """
INSERT INTO report_hours (service_id, hour, region, n) VALUES (?, ?, ?, ?)
ON CONFLICT (service_id, hour, region) DO UPDATE SET n = n + excluded.n
"""


class ReportRow(NamedTuple):
    """A report ready for insertion (service already resolved to its id).

    A NamedTuple, not a dataclass: imports build millions, and unpacking a tuple in the insert
    loop is several times cheaper than attribute access.
    """

    service_id: int
    at: int
    region: str
    problem: str
    platform: str
    tenant: str
    user: str
    note: str = ""


def insert_reports(
    conn: sqlite3.Connection,
    rows: Sequence[ReportRow],
    *,
    dedupe_seconds: int,
    tenant_cap: int | None,
) -> tuple[int, int]:
    """Insert ``rows`` inside the caller's transaction and update the rollups.

    Returns (stored, counted); stored rows that did not count are kept as comments.
    """
    # Deciding "counted" here rather than with a NOT EXISTS subquery per row doubled import
    # throughput, and counting the rollups in the same loop saves two GROUP BY passes over
    # the new rows. Counted users are loaded once per (service, platform, tenant, window).
    counted_users: dict[tuple[int, str, str, int], set[str]] = {}
    minutes: Counter[tuple[int, int, str, str]] = Counter()
    hours: Counter[tuple[int, int, str]] = Counter()
    params = []
    for sid, at, region, problem, platform, tenant, user, note in rows:
        bucket = at // dedupe_seconds
        group = (sid, platform, tenant, bucket)
        users = counted_users.get(group)
        if users is None:
            users = counted_users[group] = _counted_users(conn, group)
        # The cap limits one guild or workspace; direct messages and imports have no tenant.
        counted = user not in users and (
            not tenant or tenant_cap is None or len(users) < tenant_cap
        )
        if counted:
            users.add(user)
            minutes[(sid, at // 60 * 60, region, problem)] += 1
            hours[(sid, at // HOUR * HOUR, region)] += 1
        params.append((sid, at, bucket, region, problem, platform, tenant, user, note, counted))
    conn.executemany(_INSERT_REPORT, params)
    conn.executemany(_ROLLUP_MINUTES, [(*k, n) for k, n in minutes.items()])
    conn.executemany(_ROLLUP_HOURS, [(*k, n) for k, n in hours.items()])
    return len(params), sum(hours.values())


class PreparedReports(NamedTuple):
    """Reports with ``counted`` and the rollups already decided, by whoever read the file.

    ``params`` rows are in ``_INSERT_REPORT`` column order. Built by ``ReportDedupe`` in the
    import's checking process, so the writing process only hands them to SQLite.
    """

    params: list[tuple[int, int, int, str, str, str, str, str, str, bool]]
    minutes: list[tuple[int, int, str, str, int]]  # (service_id, minute, region, problem, n)
    hours: list[tuple[int, int, str, int]]  # (service_id, hour, region, n)


class ReportDedupe:
    """Decides ``counted`` for an import's reports as the file is read, without the database.

    The first report of a user per service, platform, tenant and window counts; later ones are
    kept as comments. The state covers the windows still open in the file (a chronological file
    keeps it to about one window); a report for a window already forgotten, or one that the
    database already counts, is caught at insert time by the ``reports_counted`` unique index,
    and ``insert_prepared`` then redoes that batch the exact way (``insert_reports``).
    """

    def __init__(self, dedupe_seconds: int) -> None:
        self._dedupe = dedupe_seconds
        self._users: dict[tuple[int, str, str, int], set[str]] = {}

    def prepare(self, rows: Sequence[ReportRow]) -> PreparedReports:
        dedupe = self._dedupe
        users_of = self._users
        minutes: Counter[tuple[int, int, str, str]] = Counter()
        hours: Counter[tuple[int, int, str]] = Counter()
        params = []
        low = None
        for sid, at, region, problem, platform, tenant, user, note in rows:
            bucket = at // dedupe
            low = bucket if low is None or bucket < low else low
            group = (sid, platform, tenant, bucket)
            users = users_of.get(group)
            if users is None:
                users = users_of[group] = set()
            counted = user not in users
            if counted:
                users.add(user)
                minutes[(sid, at // 60 * 60, region, problem)] += 1
                hours[(sid, at // HOUR * HOUR, region)] += 1
            params.append((sid, at, bucket, region, problem, platform, tenant, user, note, counted))
        if low is not None:
            # Windows older than this batch's oldest are closed in a chronological file.
            for group in [g for g in users_of if g[3] < low]:
                del users_of[group]
        return PreparedReports(
            params,
            [(*k, n) for k, n in minutes.items()],
            [(*k, n) for k, n in hours.items()],
        )


def insert_prepared(
    conn: sqlite3.Connection, prepared: PreparedReports, *, dedupe_seconds: int
) -> tuple[int, int]:
    """Insert reports decided by ``ReportDedupe`` inside the caller's transaction.

    If the database already counts one of these users in that window (an earlier import of
    overlapping data, a window the dedupe had forgotten), the unique index refuses the batch:
    it is rolled back to the savepoint and inserted the exact way instead. Returns
    (stored, counted) like ``insert_reports``.
    """
    conn.execute("SAVEPOINT prepared_reports")
    try:
        conn.executemany(_INSERT_REPORT, prepared.params)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO prepared_reports")
        conn.execute("RELEASE prepared_reports")
        rows = [ReportRow(p[0], p[1], *p[3:9]) for p in prepared.params]
        return insert_reports(conn, rows, dedupe_seconds=dedupe_seconds, tenant_cap=None)
    conn.execute("RELEASE prepared_reports")
    conn.executemany(_ROLLUP_MINUTES, prepared.minutes)
    conn.executemany(_ROLLUP_HOURS, prepared.hours)
    return len(prepared.params), sum(h[3] for h in prepared.hours)


def _counted_users(conn: sqlite3.Connection, group: tuple[int, str, str, int]) -> set[str]:
    rows = conn.execute(
        "SELECT user FROM reports WHERE service_id = ? AND platform = ? AND tenant = ? "
        "AND bucket = ? AND counted = 1",
        group,
    )
    return {user for (user,) in rows}


def max_report_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM reports").fetchone()[0])


def user_reports_since(
    conn: sqlite3.Connection, *, platform: str, tenant: str, user: str, since: int
) -> int:
    """How many reports (counted or not) this user sent since ``since``: the rate limit's input."""
    # The literal "platform != 'import'" lets SQLite use the partial index reports_chat_user.
    row = conn.execute(
        "SELECT count(*) FROM reports WHERE platform = ? AND platform != 'import' "
        "AND tenant = ? AND user = ? AND at >= ?",
        (platform, tenant, user, since),
    ).fetchone()
    return int(row[0])


@dataclass(frozen=True, slots=True)
class WorksForMeRow:
    service_id: int
    at: int
    region: str
    platform: str
    tenant: str
    user: str


def insert_works_for_me(
    conn: sqlite3.Connection, rows: Sequence[WorksForMeRow], *, dedupe_seconds: int
) -> int:
    """Insert confirmations, one per user, service and window; return how many were new."""
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO works_for_me "
        "(service_id, at, bucket, region, platform, tenant, user) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (r.service_id, r.at, r.at // dedupe_seconds, r.region, r.platform, r.tenant, r.user)
            for r in rows
        ],
    )
    return conn.total_changes - before


def recent_reports(
    conn: sqlite3.Connection,
    service_id: int,
    since: int,
    until: int,
    *,
    cache: ReportCache | None = None,
) -> Counts:
    """Counted reports per (region, problem) with since < at <= until, exactly.

    Whole minutes come from the rollups. A minute the window cuts is read from the raw rows on
    whichever side of the cut is shorter (the rollup minus the part outside, or the part inside
    alone), and the newest minute comes from its rollup when nothing newer than ``until`` was
    stored in it (the usual case, a verdict for now). So a verdict reads at most half a minute of
    raw rows per edge, a few hundred during a large outage, and "as of" a past second still never
    counts later reports.

    With ``cache`` (checked by ``cache.check`` in the caller's read transaction), each of those
    counts is remembered until a report in its span changes (``bot.store.report_cache``).
    """
    out: Counts = {}

    def add(low: int, high: int, sign: int, read: Callable[..., Counts]) -> None:
        if cache is None:
            counts = read(conn, service_id, low, high)
        else:
            counts = cache.counts(service_id, low, high, partial(read, conn, service_id, low, high))
        for key, n in counts.items():
            out[key] = out.get(key, 0) + sign * n

    first, last = since + 1, until  # both inclusive
    first_minute, last_minute = first // 60 * 60, last // 60 * 60
    if first > last:
        return out
    if first_minute == last_minute:
        add(first, last, 1, _count_raw)
        return out
    lo, hi = first_minute, last_minute  # rollup minutes to read, inclusive
    # The cut first minute: inside part [first, first_minute + 59].
    if first != first_minute:
        inside = first_minute + 60 - first
        if inside <= 30:
            lo = first_minute + 60
            add(first, first_minute + 59, 1, _count_raw)
        else:
            add(first_minute, first - 1, -1, _count_raw)
    # The cut last minute: inside part [last_minute, last].
    if last != last_minute + 59 and _any_raw(conn, service_id, last + 1, last_minute + 59):
        inside = last - last_minute + 1
        if inside <= 30:
            hi = last_minute - 60
            add(last_minute, last, 1, _count_raw)
        else:
            add(last + 1, last_minute + 59, -1, _count_raw)
    if lo <= hi:
        # Cached, the newest minute is kept apart: during an outage every report changes it,
        # and that must not make the cache forget the sums of the other 29 minutes too.
        if cache is not None and lo < hi:
            add(lo, hi - 1, 1, _sum_minutes)
            lo = hi
        add(lo, hi + 59, 1, _sum_minutes)
    return {key: n for key, n in out.items() if n > 0}


def _sum_minutes(conn: sqlite3.Connection, service_id: int, low: int, high: int) -> Counts:
    """Counted reports with low <= at <= high from the rollups (low and high + 1 whole minutes)."""
    rows = conn.execute(
        "SELECT region, problem, sum(n) FROM report_minutes "
        "WHERE service_id = ? AND minute >= ? AND minute <= ? GROUP BY region, problem",
        (service_id, low, high),
    )
    return {(region, problem): int(n) for region, problem, n in rows}


def _count_raw(conn: sqlite3.Connection, service_id: int, low: int, high: int) -> Counts:
    """Counted reports with low <= at <= high from the raw rows."""
    rows = conn.execute(
        "SELECT region, problem, count(*) FROM reports "
        "WHERE service_id = ? AND at >= ? AND at <= ? AND counted = 1 "
        "GROUP BY region, problem",
        (service_id, low, high),
    )
    return {(region, problem): int(n) for region, problem, n in rows}


def _any_raw(conn: sqlite3.Connection, service_id: int, low: int, high: int) -> bool:
    # Not cached: comments (counted = 0) count here, and they leave the rollups unchanged.
    row = conn.execute(
        "SELECT 1 FROM reports WHERE service_id = ? AND at >= ? AND at <= ? LIMIT 1",
        (service_id, low, high),
    ).fetchone()
    return row is not None


def same_hour_history(
    conn: sqlite3.Connection,
    service_id: int,
    at: int,
    days: int,
    *,
    cache: ReportCache | None = None,
) -> History:
    """Counted reports per region in the hour of ``at`` on each of the ``days`` previous days.

    With ``cache`` (checked in the caller's read transaction), remembered until one of those
    hours changes.
    """
    hour = at // HOUR * HOUR
    if cache is None:
        return _same_hour_history(conn, service_id, hour, days)
    read = partial(_same_hour_history, conn, service_id, hour, days)
    return dict(cache.history(service_id, hour, days, read))  # a copy: the cached one is shared


def _same_hour_history(conn: sqlite3.Connection, service_id: int, hour: int, days: int) -> History:
    slots = [hour - d * 86_400 for d in range(days, 0, -1)]
    placeholders = ",".join("?" * len(slots))
    counts: dict[str, list[int]] = {}
    index = {slot: i for i, slot in enumerate(slots)}
    for region, slot, n in conn.execute(
        # Only "?" placeholders are formatted into the SQL; the values are bound.
        f"SELECT region, hour, n FROM report_hours "  # noqa: S608
        f"WHERE service_id = ? AND hour IN ({placeholders})",
        (service_id, *slots),
    ):
        counts.setdefault(region, [0] * days)[index[slot]] = int(n)
    return {region: tuple(values) for region, values in counts.items()}


def last_report_at(conn: sqlite3.Connection, service_id: int, until: int) -> int | None:
    """When the newest report at or before ``until`` arrived (for freshness)."""
    row = conn.execute(
        "SELECT max(at) FROM reports WHERE service_id = ? AND at <= ?", (service_id, until)
    ).fetchone()
    return None if row[0] is None else int(row[0])


def works_for_me_counts(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> dict[str, int]:
    rows = conn.execute(
        "SELECT region, count(*) FROM works_for_me "
        "WHERE service_id = ? AND at >= ? AND at <= ? GROUP BY region",
        (service_id, since, until),
    )
    return {region: int(n) for region, n in rows}


def report_series(
    conn: sqlite3.Connection, service_id: int, since: int, until: int, step: int
) -> dict[int, int]:
    """Counted reports per ``step``-second bucket (keyed by bucket start) from minute rollups."""
    rows = conn.execute(
        "SELECT minute / ? * ?, sum(n) FROM report_minutes "
        "WHERE service_id = ? AND minute >= ? AND minute < ? GROUP BY 1",
        (step, step, service_id, since, until),
    )
    return {int(bucket): int(n) for bucket, n in rows}


def hourly_totals(
    conn: sqlite3.Connection, service_id: int, since: int, until: int
) -> dict[int, int]:
    """Counted reports per hour (all regions) with since <= hour < until."""
    rows = conn.execute(
        "SELECT hour, sum(n) FROM report_hours "
        "WHERE service_id = ? AND hour >= ? AND hour < ? GROUP BY hour",
        (service_id, since, until),
    )
    return {int(hour): int(n) for hour, n in rows}


def delete_reports(conn: sqlite3.Connection, first_id: int, last_id: int) -> None:
    """Remove reports with ids in [first_id, last_id] and take them out of the rollups."""
    minutes = conn.execute(
        "SELECT count(*), service_id, at / 60 * 60, region, problem FROM reports "
        "WHERE id BETWEEN ? AND ? AND counted = 1 GROUP BY 2, 3, 4, 5",
        (first_id, last_id),
    ).fetchall()
    hours = conn.execute(
        "SELECT count(*), service_id, at / 3600 * 3600, region FROM reports "
        "WHERE id BETWEEN ? AND ? AND counted = 1 GROUP BY 2, 3, 4",
        (first_id, last_id),
    ).fetchall()
    conn.executemany(
        "UPDATE report_minutes SET n = n - ? "
        "WHERE service_id = ? AND minute = ? AND region = ? AND problem = ?",
        minutes,
    )
    conn.executemany(
        "UPDATE report_hours SET n = n - ? WHERE service_id = ? AND hour = ? AND region = ?",
        hours,
    )
    conn.executemany(
        "DELETE FROM report_minutes "
        "WHERE service_id = ? AND minute = ? AND region = ? AND problem = ? AND n <= 0",
        [row[1:] for row in minutes],
    )
    conn.executemany(
        "DELETE FROM report_hours WHERE service_id = ? AND hour = ? AND region = ? AND n <= 0",
        [row[1:] for row in hours],
    )
    conn.execute("DELETE FROM reports WHERE id BETWEEN ? AND ?", (first_id, last_id))

"""Digests: each subscribed channel's schedule, and the ``digest_runs`` row that makes one digest
per channel and period happen exactly once (RELIABILITY.md, "Scheduler and digests").

A run is claimed first (a ``running`` row), built, then finished in one transaction that queues
it in the outbox and marks it ``sent``: a crash between the two leaves a ``running`` row that a
later run may take over once it is stale, and never a second queued digest.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "DigestChannel",
    "claim_digest",
    "digest_channels",
    "finish_digest",
    "set_digest",
    "top_reported",
]

STALE_RUN_SECONDS = 600  # a "running" digest older than this was interrupted


class DigestChannel(NamedTuple):
    platform: str
    tenant: str
    channel: str
    time: str | None  # "HH:MM", "off", or None for the [digest] default
    timezone: str | None
    day: str | None  # "mon" ... "sun" for weekly, "daily", or None for the default
    lang: str


def digest_channels(conn: sqlite3.Connection) -> list[DigestChannel]:
    """Every channel with at least one subscription, with its digest settings."""
    rows = conn.execute(
        "SELECT platform, tenant, channel, max(digest_time), max(digest_tz), max(digest_day), "
        "max(lang) FROM subscriptions GROUP BY platform, tenant, channel "
        "ORDER BY platform, tenant, channel"
    )
    return [DigestChannel(*r) for r in rows]


def set_digest(
    conn: sqlite3.Connection,
    platform: str,
    tenant: str,
    channel: str,
    time: str | None,
    timezone: str | None,
    day: str | None,
) -> int:
    """Set a channel's digest schedule on all its subscriptions; how many rows (0: none)."""
    done = conn.execute(
        "UPDATE subscriptions SET digest_time = ?, digest_tz = ?, digest_day = ? "
        "WHERE platform = ? AND tenant = ? AND channel = ?",
        (time, timezone, day, platform, tenant, channel),
    )
    return done.rowcount


def claim_digest(
    conn: sqlite3.Connection, platform: str, tenant: str, channel: str, period: str, now: int
) -> bool:
    """True if this caller should build the digest for that channel and period."""
    row = conn.execute(
        "SELECT state, started_at FROM digest_runs WHERE platform = ? AND channel = ? "
        "AND period = ?",
        (platform, channel, period),
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO digest_runs (platform, tenant, channel, period, state, started_at) "
            "VALUES (?, ?, ?, ?, 'running', ?)",
            (platform, tenant, channel, period, now),
        )
        return True
    state, started = row
    if state == "running" and now - int(started) >= STALE_RUN_SECONDS:
        conn.execute(
            "UPDATE digest_runs SET started_at = ? WHERE platform = ? AND channel = ? "
            "AND period = ?",
            (now, platform, channel, period),
        )
        return True
    return False


def finish_digest(
    conn: sqlite3.Connection,
    platform: str,
    tenant: str,
    channel: str,
    period: str,
    payload: dict[str, Any],
    now: int,
) -> None:
    """Queue the digest in the outbox and mark the run sent, together."""
    conn.execute(
        "INSERT INTO outbox (incident_id, platform, tenant, channel, kind, payload, due_at, "
        "created_at) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)",
        (platform, tenant, channel, f"digest:{period}", json.dumps(payload), now, now),
    )
    conn.execute(
        "UPDATE digest_runs SET state = 'sent', finished_at = ? WHERE platform = ? "
        "AND channel = ? AND period = ?",
        (now, platform, channel, period),
    )


def top_reported(
    conn: sqlite3.Connection, service_ids: Sequence[int], since: int, until: int, limit: int
) -> list[tuple[int, int]]:
    """(service id, counted reports) of the most reported services in [since, until)."""
    if not service_ids:
        return []
    marks = ",".join("?" * len(service_ids))
    rows = conn.execute(
        f"SELECT service_id, sum(n) FROM report_hours WHERE service_id IN ({marks}) "  # noqa: S608
        "AND hour >= ? AND hour < ? GROUP BY service_id HAVING sum(n) > 0 "
        "ORDER BY sum(n) DESC, service_id LIMIT ?",
        (*service_ids, since, until, limit),
    )
    return [(int(sid), int(n)) for sid, n in rows]

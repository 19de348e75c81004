"""Subscriptions and the alert outbox (RELIABILITY.md, "Delivery of alerts").

An incident change and its outbox rows are written in one transaction: one row per subscribed
channel, unique per (incident, platform, channel, kind), so a retried pass never queues twice.
One dispatcher per platform claims due rows in order, records the platform's message id, and
reschedules or dead-letters failures.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, NamedTuple

__all__ = [
    "OutboxRow",
    "SubscriptionRow",
    "add_subscription",
    "claim_due",
    "dead_letters",
    "earlier_pending",
    "enqueue",
    "had_updates",
    "mark_dead",
    "mark_retry",
    "mark_sending",
    "mark_sent",
    "matching_subscriptions",
    "original_message",
    "remove_subscription",
    "subscriptions_of",
]

LEVELS = ("down", "regional", "user_reports")  # most severe first


class SubscriptionRow(NamedTuple):
    id: int
    platform: str
    tenant: str
    channel: str
    scope: str  # "service", "tag" or "all"
    target: str  # service key, tag, or ""
    level: str
    lang: str
    created_by: str


class OutboxRow(NamedTuple):
    id: int
    incident_id: int | None
    platform: str
    tenant: str
    channel: str
    kind: str  # "open", "update:<n>", "resolve"
    payload: dict[str, Any]
    attempts: int
    due_at: int
    created_at: int
    sending_at: int | None = None  # an earlier attempt began then and may have landed


_SUB_COLUMNS = "id, platform, tenant, channel, scope, target, level, lang, created_by"
_OUT_COLUMNS = (
    "id, incident_id, platform, tenant, channel, kind, payload, attempts, due_at, created_at, "
    "sending_at"
)


def add_subscription(
    conn: sqlite3.Connection,
    platform: str,
    tenant: str,
    channel: str,
    scope: str,
    target: str,
    level: str,
    lang: str,
    user: str,
    now: int,
) -> bool:
    """Subscribe (or change the level of) a channel; True if it is new."""
    before = conn.total_changes
    existed = conn.execute(
        "SELECT 1 FROM subscriptions WHERE platform = ? AND tenant = ? AND channel = ? "
        "AND scope = ? AND target = ?",
        (platform, tenant, channel, scope, target),
    ).fetchone()
    conn.execute(
        "INSERT INTO subscriptions "
        "(platform, tenant, channel, scope, target, level, lang, created_by, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, tenant, channel, scope, target) "
        "DO UPDATE SET level = excluded.level, lang = excluded.lang",
        (platform, tenant, channel, scope, target, level, lang, user, now),
    )
    return existed is None and conn.total_changes > before


def remove_subscription(
    conn: sqlite3.Connection, platform: str, tenant: str, channel: str, scope: str, target: str
) -> bool:
    done = conn.execute(
        "DELETE FROM subscriptions WHERE platform = ? AND tenant = ? AND channel = ? "
        "AND scope = ? AND target = ?",
        (platform, tenant, channel, scope, target),
    )
    return done.rowcount == 1


def subscriptions_of(
    conn: sqlite3.Connection, platform: str, tenant: str, channel: str | None = None
) -> list[SubscriptionRow]:
    """A tenant's subscriptions (one channel's, if given); never another tenant's."""
    sql = f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE platform = ? AND tenant = ?"  # noqa: S608
    args: list[str] = [platform, tenant]
    if channel is not None:
        sql += " AND channel = ?"
        args.append(channel)
    return [SubscriptionRow(*r) for r in conn.execute(sql + " ORDER BY id", args)]


def matching_subscriptions(
    conn: sqlite3.Connection,
    service: str,
    tags: Sequence[str],
    level: str,
    scope_of_service: tuple[str, str] | None,
) -> list[SubscriptionRow]:
    """Subscriptions that want an alert of ``level`` about ``service``.

    A subscription at level L wants alerts at L and anything more severe. A tenant's own service
    (``scope_of_service`` = (platform, tenant)) only alerts that tenant's channels.
    """
    # A regional alert goes to "regional" and "user_reports" subscriptions, not to "down" ones.
    wanted = LEVELS[LEVELS.index(level) :]
    placeholders = ",".join("?" * len(wanted))
    tag_marks = ",".join("?" * len(tags)) or "NULL"
    sql = (
        f"SELECT {_SUB_COLUMNS} FROM subscriptions WHERE level IN ({placeholders}) AND ("  # noqa: S608
        "(scope = 'service' AND target = ?) OR scope = 'all' "
        f"OR (scope = 'tag' AND target IN ({tag_marks})))"
    )
    args: list[str] = [*wanted, service, *tags]
    if scope_of_service is not None:
        sql += " AND platform = ? AND tenant = ?"
        args += list(scope_of_service)
    return [SubscriptionRow(*r) for r in conn.execute(sql + " ORDER BY id", args)]


def enqueue(
    conn: sqlite3.Connection,
    incident_id: int,
    rows: Sequence[tuple[SubscriptionRow, str, dict[str, Any]]],
    now: int,
) -> int:
    """Queue (subscription, kind, payload) rows for an incident; duplicates are ignored."""
    before = conn.total_changes
    conn.executemany(
        "INSERT INTO outbox (incident_id, platform, tenant, channel, kind, payload, due_at, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (incident_id, platform, channel, kind) DO NOTHING",
        [
            (incident_id, s.platform, s.tenant, s.channel, kind, json.dumps(payload), now, now)
            for s, kind, payload in rows
        ],
    )
    return conn.total_changes - before


def claim_due(conn: sqlite3.Connection, platform: str, now: int, limit: int) -> list[OutboxRow]:
    """The oldest due pending rows of one platform, in queue order."""
    rows = conn.execute(
        f"SELECT {_OUT_COLUMNS} FROM outbox WHERE platform = ? AND state = 'pending' "  # noqa: S608
        "AND due_at <= ? ORDER BY due_at, id LIMIT ?",
        (platform, now, limit),
    )
    return [_outbox(r) for r in rows]


def _outbox(raw: tuple[Any, ...]) -> OutboxRow:
    iid, incident, platform, tenant, channel, kind, payload, attempts, due, created, sending = raw
    return OutboxRow(
        iid,
        incident,
        platform,
        tenant,
        channel,
        kind,
        json.loads(payload),
        attempts,
        due,
        created,
        sending,
    )


def original_message(
    conn: sqlite3.Connection, incident_id: int, platform: str, channel: str
) -> tuple[str, str] | None:
    """(state, message id) of the incident's first message in that channel, if queued."""
    row = conn.execute(
        "SELECT state, coalesce(message_id, '') FROM outbox WHERE incident_id = ? "
        "AND platform = ? AND channel = ? AND kind = 'open'",
        (incident_id, platform, channel),
    ).fetchone()
    return None if row is None else (row[0], row[1])


def earlier_pending(
    conn: sqlite3.Connection, incident_id: int, platform: str, channel: str, row_id: int
) -> bool:
    """Whether a row queued before ``row_id`` for the same incident and channel is pending."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE incident_id = ? AND platform = ? AND channel = ? "
        "AND state = 'pending' AND id < ? LIMIT 1",
        (incident_id, platform, channel, row_id),
    ).fetchone()
    return row is not None


def had_updates(conn: sqlite3.Connection, incident_id: int, platform: str, channel: str) -> bool:
    """Whether an update of the incident was posted in the channel."""
    row = conn.execute(
        "SELECT 1 FROM outbox WHERE incident_id = ? AND platform = ? AND channel = ? "
        "AND kind LIKE 'update:%' AND state = 'sent' LIMIT 1",
        (incident_id, platform, channel),
    ).fetchone()
    return row is not None


def mark_sending(conn: sqlite3.Connection, row_id: int, now: int) -> None:
    """An attempt begins: until it is settled, the message may or may not be posted.

    The earliest attempt in doubt is kept, so a later look for the message covers them all.
    """
    conn.execute(
        "UPDATE outbox SET sending_at = coalesce(sending_at, ?) WHERE id = ?", (now, row_id)
    )


def mark_sent(conn: sqlite3.Connection, row_id: int, message_id: str, now: int) -> None:
    conn.execute(
        "UPDATE outbox SET state = 'sent', message_id = ?, sent_at = ?, attempts = attempts + 1, "
        "sending_at = NULL WHERE id = ?",
        (message_id, now, row_id),
    )


def mark_retry(
    conn: sqlite3.Connection, row_id: int, due_at: int, error: str, in_doubt: bool
) -> None:
    """Retry at ``due_at``; ``in_doubt``: the failed attempt may still have posted the message.

    Not in doubt (a 429, a limiter's refusal) clears the mark: the outbox looked for earlier
    attempts before making this one, so nothing posted is unaccounted for.
    """
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, due_at = ?, last_error = ?, "
        "sending_at = CASE WHEN ? THEN sending_at ELSE NULL END WHERE id = ?",
        (due_at, error[:500], in_doubt, row_id),
    )


def mark_dead(conn: sqlite3.Connection, row_id: int, error: str) -> None:
    conn.execute(
        "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
        (error[:500], row_id),
    )


def dead_letters(
    conn: sqlite3.Connection, platform: str, tenant: str, since: int
) -> list[tuple[str, str, str, int]]:
    """(channel, kind, last error, created_at) of a tenant's undeliverable alerts since then."""
    rows = conn.execute(
        "SELECT channel, kind, coalesce(last_error, ''), created_at FROM outbox "
        "WHERE platform = ? AND tenant = ? AND state = 'dead' AND created_at >= ? "
        "ORDER BY created_at",
        (platform, tenant, since),
    )
    return [(c, k, e, int(t)) for c, k, e, t in rows]

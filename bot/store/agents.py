"""SQL for probe agents: accepted result batches (exactly once) and each agent's health row.

A batch is recorded in ``agent_batches`` in the same transaction as its results, so "this batch id
was accepted" and "its results are stored" are one fact: a resend after a lost response, or a
replay after a core restart, finds the row and writes nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from bot.store.probes import ProbeRow, insert_probes


@dataclass(frozen=True, slots=True)
class AgentBatch:
    agent_id: str
    region: str
    batch_id: str
    rows: Sequence[ProbeRow]
    received_ms: int  # when the core received it; last_seen and the lag derive from it


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    accepted: int  # result rows newly stored
    duplicate: bool  # the batch id was already accepted: nothing was written


@dataclass(frozen=True, slots=True)
class AgentRow:
    """An agent's row, for ``/agents`` and ``GET /api/v1/agents``. Times are epoch seconds."""

    id: str
    region: str
    first_seen: int
    last_seen: int
    lag_ms: float | None  # the newest result's age when its batch arrived
    batches: int
    results: int


def add_batch(conn: sqlite3.Connection, batch: AgentBatch) -> BatchOutcome:
    """Store a batch inside the caller's BEGIN IMMEDIATE transaction, at most once per batch id."""
    seen_at = batch.received_ms // 1000
    claimed = conn.execute(
        "INSERT OR IGNORE INTO agent_batches (agent_id, batch_id, received_at) VALUES (?, ?, ?)",
        (batch.agent_id, batch.batch_id, seen_at),
    ).rowcount
    if claimed == 0:
        return BatchOutcome(0, duplicate=True)
    accepted = insert_probes(conn, batch.rows) if batch.rows else 0
    newest = max((r.at_ms for r in batch.rows), default=None)
    lag = None if newest is None else float(max(0, batch.received_ms - newest))
    conn.execute(
        "INSERT INTO agents (id, region, first_seen, last_seen, last_lag_ms, batches, results) "
        "VALUES (?, ?, ?, ?, ?, 1, ?) "
        "ON CONFLICT (id) DO UPDATE SET region = excluded.region, "
        "last_seen = max(last_seen, excluded.last_seen), "
        "last_lag_ms = coalesce(excluded.last_lag_ms, last_lag_ms), "
        "batches = batches + 1, results = results + excluded.results",
        (batch.agent_id, batch.region, seen_at, seen_at, lag, accepted),
    )
    return BatchOutcome(accepted, duplicate=False)


def touch_agent(conn: sqlite3.Connection, agent_id: str, region: str, at: int) -> None:
    """Record contact without a batch (an assignment fetch, a command poll)."""
    conn.execute(
        "INSERT INTO agents (id, region, first_seen, last_seen) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET region = excluded.region, "
        "last_seen = max(last_seen, excluded.last_seen)",
        (agent_id, region, at, at),
    )


def list_agents(conn: sqlite3.Connection) -> list[AgentRow]:
    rows = conn.execute(
        "SELECT id, region, first_seen, last_seen, last_lag_ms, batches, results "
        "FROM agents ORDER BY region, id"
    ).fetchall()
    return [
        AgentRow(
            str(r[0]),
            str(r[1]),
            int(r[2]),
            int(r[3]),
            None if r[4] is None else float(r[4]),
            int(r[5]),
            int(r[6]),
        )
        for r in rows
    ]

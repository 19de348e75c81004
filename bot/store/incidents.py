"""Incidents: one open per service at most (a partial unique index), opened, updated, resolved.

``detail`` is JSON written by bot/incidents.py: the snapshot that decides whether a new verdict is
an update (category, regions, targets, report level, official status) and when the service went
quiet (flap suppression survives a restart).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, NamedTuple

__all__ = [
    "IncidentRow",
    "incidents_between",
    "open_incident",
    "open_incidents",
    "resolve_incident",
    "update_incident",
]

_COLUMNS = "i.id, s.key, i.category, i.opened_at, i.updated_at, i.resolved_at, i.detail"


class IncidentRow(NamedTuple):
    id: int
    service: str  # service key (scope/key for a tenant's own)
    category: str
    opened_at: int
    updated_at: int
    resolved_at: int | None
    detail: dict[str, Any]


def _row(raw: tuple[Any, ...]) -> IncidentRow:
    iid, service, category, opened, updated, resolved, detail = raw
    return IncidentRow(iid, service, category, opened, updated, resolved, json.loads(detail))


def open_incidents(conn: sqlite3.Connection) -> list[IncidentRow]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents i JOIN services s ON s.id = i.service_id "  # noqa: S608
        "WHERE i.resolved_at IS NULL ORDER BY i.opened_at"
    )
    return [_row(r) for r in rows]


def incidents_between(conn: sqlite3.Connection, start: int, end: int) -> list[IncidentRow]:
    """Incidents open at any moment of [start, end): for digests and post-mortems."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents i JOIN services s ON s.id = i.service_id "  # noqa: S608
        "WHERE i.opened_at < ? AND (i.resolved_at IS NULL OR i.resolved_at >= ?) "
        "ORDER BY i.opened_at",
        (end, start),
    )
    return [_row(r) for r in rows]


def open_incident(
    conn: sqlite3.Connection, service_id: int, category: str, at: int, detail: dict[str, Any]
) -> int:
    """Open an incident inside the caller's transaction (the unique index refuses a second)."""
    cur = conn.execute(
        "INSERT INTO incidents (service_id, category, opened_at, updated_at, detail) "
        "VALUES (?, ?, ?, ?, ?)",
        (service_id, category, at, at, json.dumps(detail, sort_keys=True)),
    )
    assert cur.lastrowid is not None
    return cur.lastrowid


def update_incident(
    conn: sqlite3.Connection, incident_id: int, category: str, at: int, detail: dict[str, Any]
) -> None:
    conn.execute(
        "UPDATE incidents SET category = ?, updated_at = ?, detail = ? "
        "WHERE id = ? AND resolved_at IS NULL",
        (category, at, json.dumps(detail, sort_keys=True), incident_id),
    )


def resolve_incident(conn: sqlite3.Connection, incident_id: int, at: int) -> None:
    conn.execute(
        "UPDATE incidents SET resolved_at = ?, updated_at = ? WHERE id = ? AND resolved_at IS NULL",
        (at, at, incident_id),
    )

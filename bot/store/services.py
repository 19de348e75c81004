"""The services table: the config catalog (tenant '') and services chat admins add per tenant.

A tenant service's key is its reference ``<scope>/<key>`` (scope ``<platform>:<tenant id>``), so
it never collides with the catalog or another tenant's services, and every table that refers to
a service by id (reports, probes, incidents) scopes it for free.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bot.model import Service, Target

__all__ = ["delete_tenant_service", "load_tenant_services", "service_spec", "upsert_service"]


def service_spec(svc: Service) -> str:
    return json.dumps(
        {
            "aliases": list(svc.aliases),
            "targets": {t.kind: t.url for t in svc.targets},
            "status_page": svc.status_page,
            "tags": list(svc.tags),
        },
        sort_keys=True,
    )


def _service(key: str, name: str, spec: str) -> Service:
    doc: dict[str, Any] = json.loads(spec)
    return Service(
        key=key,
        name=name,
        aliases=tuple(doc.get("aliases", ())),
        targets=tuple(Target(kind, url) for kind, url in doc.get("targets", {}).items()),
        status_page=doc.get("status_page"),
        tags=tuple(doc.get("tags", ())),
    )


def upsert_service(
    conn: sqlite3.Connection, tenant: str, svc: Service, source: str, now: int
) -> int:
    """Insert or update one service inside the caller's transaction; return its id."""
    conn.execute(
        "INSERT INTO services (tenant, key, name, spec, source, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (tenant, key) DO UPDATE SET name = excluded.name, "
        "spec = excluded.spec, updated_at = excluded.updated_at "
        "WHERE services.spec != excluded.spec OR services.name != excluded.name",
        (tenant, svc.key, svc.name, service_spec(svc), source, now),
    )
    row = conn.execute(
        "SELECT id FROM services WHERE tenant = ? AND key = ?", (tenant, svc.key)
    ).fetchone()
    return int(row[0])


def load_tenant_services(conn: sqlite3.Connection) -> list[tuple[str, int, Service]]:
    """(scope, id, service) for every service a chat admin added, oldest first."""
    rows = conn.execute(
        "SELECT tenant, id, key, name, spec FROM services "
        "WHERE tenant != '' AND source = 'admin' ORDER BY id"
    ).fetchall()
    return [(tenant, int(sid), _service(key, name, spec)) for tenant, sid, key, name, spec in rows]


def delete_tenant_service(conn: sqlite3.Connection, tenant: str, key: str) -> bool:
    """Remove a tenant's service and, by ON DELETE CASCADE, everything recorded about it."""
    done = conn.execute(
        "DELETE FROM services WHERE tenant = ? AND key = ? AND source = 'admin'", (tenant, key)
    )
    return done.rowcount == 1

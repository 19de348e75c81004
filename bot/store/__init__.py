"""The store: the only place with SQL and table names. SQLite through one worker thread.

Every method is async and runs its SQL on the store's single worker thread, so the event loop does
not wait on the disk; one thread also means one connection inside a process. The one exception is
a warm evidence read: when the connection is free (no job running or queued) the loop does it
itself, within a small budget, and otherwise hands it to the worker thread too
(``bot.store.inline``). A lock lets the two take turns; the loop only ever tries it. Other
processes (``outagebot import`` beside a running bot) are handled by WAL, busy_timeout and
BEGIN IMMEDIATE.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from bot.evidence import Evidence
from bot.model import (
    Catalog,
    Indicator,
    MaintenanceWindow,
    Service,
    StatusSnapshot,
    from_epoch,
    to_epoch,
)
from bot.store import agents as agent_sql
from bot.store import alerts as alert_sql
from bot.store import digests as digest_sql
from bot.store import incidents as incident_sql
from bot.store import probes as probe_sql
from bot.store import reports as report_sql
from bot.store import retention as retention_sql
from bot.store import services as service_sql
from bot.store.agents import AgentBatch, AgentRow, BatchOutcome
from bot.store.alerts import OutboxRow, SubscriptionRow
from bot.store.connection import immediate, open_connection, snapshot
from bot.store.digests import DigestChannel
from bot.store.incidents import IncidentRow
from bot.store.inline import InlineBudget, InlineStats, read_inline
from bot.store.probes import ProbeRow, StatusRow
from bot.store.report_cache import ReportCache
from bot.store.reports import PreparedReports, ReportDedupe, ReportRow, WorksForMeRow
from bot.store.retention import RetentionReport
from bot.store.schema import migrate

__all__ = [
    "AgentBatch",
    "AgentRow",
    "AlertSpec",
    "BatchOutcome",
    "DigestChannel",
    "EvidenceWindows",
    "ImportBatch",
    "IncidentRow",
    "IncidentWrite",
    "OutboxRow",
    "PreparedReports",
    "ProbeRow",
    "ReportDedupe",
    "ReportOutcome",
    "ReportRow",
    "ReportRules",
    "StatusRow",
    "Store",
    "StoreClosed",
    "SubscriptionRow",
    "WorksForMeRow",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreClosed(sqlite3.OperationalError):
    """The store was closed; callers treat it like any other storage failure."""


class ReportOutcome(enum.StrEnum):
    COUNTED = "counted"
    COMMENT = "comment"  # the user already reported this service in this window
    CAPPED = "capped"  # stored, but this tenant's share of the window is full
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class ReportRules:
    dedupe_seconds: int
    tenant_cap: int
    user_hourly_limit: int


@dataclass(frozen=True, slots=True)
class EvidenceWindows:
    probe_seconds: int
    report_seconds: int
    baseline_days: int
    status_max_age_seconds: int


class AlertSpec(NamedTuple):
    """Who to tell about an incident change, and what (already rendered per language)."""

    level: str  # "down", "regional" or "user_reports"
    tags: tuple[str, ...]
    tenant: tuple[str, str] | None  # (platform, tenant) for a tenant's own service
    kind: str  # outbox kind: "open", "update:<at>", "resolve"
    payloads: Mapping[str, dict[str, Any]]  # language -> payload ("en" always present)


class IncidentWrite(NamedTuple):
    """One incident change for ``Store.write_incidents``."""

    kind: str  # "open", "update" or "resolve"
    service: str  # service key
    category: str
    at: int  # epoch seconds
    detail: dict[str, Any]
    incident_id: int | None = None  # None only for "open"
    alert: AlertSpec | None = None  # queue alerts in the same transaction


@dataclass(slots=True)
class ImportBatch:
    reports: list[ReportRow] = field(default_factory=list)
    works_for_me: list[WorksForMeRow] = field(default_factory=list)
    probes: list[ProbeRow] = field(default_factory=list)
    status: list[StatusRow] = field(default_factory=list)
    # Instead of ``reports``: reports with counted and rollups decided while checking.
    prepared: PreparedReports | None = None

    def __len__(self) -> int:
        reports = len(self.prepared.params) if self.prepared else len(self.reports)
        return reports + len(self.works_for_me) + len(self.probes) + len(self.status)


@dataclass(frozen=True, slots=True)
class ImportJob:
    """An import of one file, identified by its content hash."""

    id: int
    batch_size: int
    batches_done: int
    finished: bool


class ImportConflict(Exception):
    """The file's import record does not match: another process is importing it right now."""


@dataclass(frozen=True, slots=True)
class ImportCounts:
    reports: int = 0
    counted: int = 0
    works_for_me: int = 0
    probes: int = 0
    status: int = 0


class Store:
    """Async access to the SQLite file. Create with ``await Store.open(path, catalog)``."""

    def __init__(
        self, conn: sqlite3.Connection, path: str, inline: InlineBudget | None = None
    ) -> None:
        self._conn = conn
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        # Whoever holds it uses the connection: the worker thread for each job, or the event
        # loop for a warm evidence read (which only ever tries it, never waits).
        self._lock = threading.Lock()
        self._closed = False
        self._queued = 0  # jobs submitted and not yet answered (counted on the loop's thread)
        self._inline = InlineBudget() if inline is None else inline
        self.inline_stats = InlineStats()
        self._ids: dict[str, int] = {}
        self.instance = ""  # this database's random name (migration 5), read at open
        self._keyed_from = 1  # outbox ids below it were queued before migration 5
        # Report counts verdicts already read; used and kept exact by the connection's holder.
        self._report_cache = ReportCache()

    @classmethod
    async def open(
        cls, path: str | Path, catalog: Catalog, *, inline: InlineBudget | None = None
    ) -> Store:
        conn = await asyncio.to_thread(open_connection, path)
        store = cls(conn, str(path), inline)
        await store._call(migrate)
        store.instance, store._keyed_from = await store._call(_key_names)
        await store.sync_catalog(catalog)
        return store

    async def close(self) -> None:
        self._closed = True
        await self._call(lambda conn: conn.close())
        self._pool.shutdown(wait=True)

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        self._queued += 1
        try:
            return await loop.run_in_executor(self._pool, partial(self._holding, fn, *args))
        except RuntimeError as exc:  # the pool refuses work once shut down
            raise StoreClosed("the store is closed") from exc
        finally:
            self._queued -= 1

    def _holding(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            return fn(self._conn, *args)

    def _try_inline(self, read: Callable[[sqlite3.Connection], T]) -> T | None:
        """``read`` on this thread if the connection is free and the read is warm and short."""
        # A job queued but not started yet would run after this read: a write submitted
        # before it must be seen by it, as when every read went through the worker's queue.
        if self._closed or self._queued or not self._lock.acquire(blocking=False):
            self.inline_stats.busy += 1
            return None
        try:
            # Never read inside someone else's transaction.
            if self._conn.in_transaction:
                self.inline_stats.busy += 1
                return None
            # Nor before the first verdict has set the report cache up (a write of triggers).
            if not self._report_cache.attached(self._conn):
                self.inline_stats.cold += 1
                return None
            with self._report_cache.remembered_only():
                return read_inline(self._conn, read, self._inline, self.inline_stats)
        finally:
            self._lock.release()

    def alert_key(self, outbox_id: int) -> str:
        """The idempotency key an outbox row is sent with (Discord nonce, Slack metadata).

        Unique across databases: outbox ids alone start at 1 again in a fresh one. A row queued
        before the database had a name keeps the key it may already have been sent with.
        """
        if outbox_id < self._keyed_from:
            return f"outbox-{outbox_id}"
        return f"outbox-{self.instance}-{outbox_id}"

    # ---- catalog -------------------------------------------------------------------------

    async def sync_catalog(self, catalog: Catalog) -> None:
        """Make the services table match the config catalog (rows of removed services stay)."""
        self._ids = await self._call(_sync_catalog, catalog)

    def service_id(self, key: str) -> int | None:
        return self._ids.get(key)

    def service_ids(self) -> dict[str, int]:
        return dict(self._ids)

    async def tenant_services(self) -> list[tuple[str, Service]]:
        """(scope, service) for every service chat admins added, oldest first."""
        rows = await self._call(service_sql.load_tenant_services)
        return [(scope, svc) for scope, _sid, svc in rows]

    async def save_tenant_service(self, scope: str, service: Service) -> None:
        """Add or replace a tenant's service (``service.key`` is its ``scope/key`` reference)."""

        def run(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return service_sql.upsert_service(conn, scope, service, "admin", _now())

        self._ids[service.key] = await self._call(run)

    # ---- incidents -------------------------------------------------------------------------

    async def open_incidents(self) -> list[IncidentRow]:
        return await self._call(incident_sql.open_incidents)

    async def incidents_between(self, start: datetime, end: datetime) -> list[IncidentRow]:
        return await self._call(incident_sql.incidents_between, to_epoch(start), to_epoch(end))

    async def write_incidents(self, writes: Sequence[IncidentWrite]) -> list[int]:
        """Apply opens, updates and resolutions in one transaction; return each incident's id.

        (The alert outbox rows for these changes will join the same transaction.)
        """

        def run(conn: sqlite3.Connection) -> list[int]:
            ids = []
            with immediate(conn):
                for w in writes:
                    if w.kind == "open":
                        sid = self._ids.get(w.service)
                        if sid is None:
                            raise LookupError(f"service {w.service!r} is not in the store")
                        opened = incident_sql.open_incident(conn, sid, w.category, w.at, w.detail)
                        ids.append(opened)
                        continue
                    assert w.incident_id is not None
                    if w.kind == "update":
                        incident_sql.update_incident(
                            conn, w.incident_id, w.category, w.at, w.detail
                        )
                    else:
                        incident_sql.resolve_incident(conn, w.incident_id, w.at)
                    ids.append(w.incident_id)
                for w, iid in zip(writes, ids, strict=True):
                    if w.alert is not None:
                        _queue_alerts(conn, iid, w.service, w.alert, w.at)
            return ids

        return await self._call(run)

    # ---- subscriptions and the outbox --------------------------------------------------------

    async def subscribe(
        self,
        platform: str,
        tenant: str,
        channel: str,
        scope: str,
        target: str,
        *,
        level: str,
        lang: str,
        user: str,
    ) -> bool:
        """Subscribe a channel (or change its level); True if the subscription is new."""

        def run(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return alert_sql.add_subscription(
                    conn, platform, tenant, channel, scope, target, level, lang, user, _now()
                )

        return await self._call(run)

    async def unsubscribe(
        self, platform: str, tenant: str, channel: str, scope: str, target: str
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return alert_sql.remove_subscription(conn, platform, tenant, channel, scope, target)

        return await self._call(run)

    async def subscriptions(
        self, platform: str, tenant: str, channel: str | None = None
    ) -> list[SubscriptionRow]:
        return await self._call(alert_sql.subscriptions_of, platform, tenant, channel)

    async def due_alerts(self, platform: str, now: int, limit: int = 50) -> list[OutboxRow]:
        return await self._call(alert_sql.claim_due, platform, now, limit)

    async def original_message(
        self, incident_id: int, platform: str, channel: str
    ) -> tuple[str, str] | None:
        return await self._call(alert_sql.original_message, incident_id, platform, channel)

    async def alert_sending(self, row_id: int, now: int) -> None:
        await self._write(alert_sql.mark_sending, row_id, now)

    async def alert_sent(self, row_id: int, message_id: str, now: int) -> None:
        await self._write(alert_sql.mark_sent, row_id, message_id, now)

    async def alert_retry(
        self, row_id: int, due_at: int, error: str, *, in_doubt: bool = True
    ) -> None:
        await self._write(alert_sql.mark_retry, row_id, due_at, error, in_doubt)

    async def earlier_pending(self, row: OutboxRow) -> bool:
        """Whether an earlier change of the row's incident still waits in the row's channel."""
        if row.incident_id is None:
            return False
        return await self._call(
            alert_sql.earlier_pending, row.incident_id, row.platform, row.channel, row.id
        )

    async def had_updates(self, row: OutboxRow) -> bool:
        """Whether the row's incident posted updates in the row's channel (so it has a thread)."""
        if row.incident_id is None:
            return False
        return await self._call(alert_sql.had_updates, row.incident_id, row.platform, row.channel)

    async def alert_dead(self, row_id: int, error: str) -> None:
        await self._write(alert_sql.mark_dead, row_id, error)

    async def dead_letters(
        self, platform: str, tenant: str, since: int
    ) -> list[tuple[str, str, str, int]]:
        return await self._call(alert_sql.dead_letters, platform, tenant, since)

    # ---- maintenance windows -------------------------------------------------------------------

    async def add_maintenance(
        self,
        service_key: str,
        platform: str,
        tenant: str,
        starts: int,
        ends: int,
        note: str,
        user: str,
    ) -> None:
        sid = self._ids.get(service_key)
        if sid is None:
            raise LookupError(f"service {service_key!r} is not in the store")

        def run(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute(
                    "INSERT INTO maintenance_windows "
                    "(service_id, platform, tenant, starts, ends, note, created_by) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (sid, platform, tenant, starts, ends, note, user),
                )

        await self._call(run)

    async def end_maintenance(self, service_key: str, at: int) -> int:
        """End the service's current and future windows now; how many there were."""
        sid = self._ids.get(service_key)
        if sid is None:
            return 0

        def run(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                future = conn.execute(
                    "DELETE FROM maintenance_windows WHERE service_id = ? AND starts >= ?",
                    (sid, at),
                ).rowcount
                current = conn.execute(
                    "UPDATE maintenance_windows SET ends = ? WHERE service_id = ? "
                    "AND starts < ? AND ends > ?",
                    (at, sid, at, at),
                ).rowcount
                return future + current

        return await self._call(run)

    # ---- digests -----------------------------------------------------------------------------

    async def digest_channels(self) -> list[DigestChannel]:
        return await self._call(digest_sql.digest_channels)

    async def set_digest(
        self,
        platform: str,
        tenant: str,
        channel: str,
        time: str | None,
        timezone: str | None,
        day: str | None,
    ) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return digest_sql.set_digest(conn, platform, tenant, channel, time, timezone, day)

        return await self._call(run)

    async def claim_digest(
        self, platform: str, tenant: str, channel: str, period: str, now: int
    ) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return digest_sql.claim_digest(conn, platform, tenant, channel, period, now)

        return await self._call(run)

    async def finish_digest(
        self,
        platform: str,
        tenant: str,
        channel: str,
        period: str,
        payload: dict[str, Any],
        now: int,
    ) -> None:
        await self._write(digest_sql.finish_digest, platform, tenant, channel, period, payload, now)

    async def top_reported(
        self, keys: Sequence[str], since: datetime, until: datetime, limit: int = 5
    ) -> list[tuple[str, int]]:
        by_id = {self._ids[k]: k for k in keys if k in self._ids}
        rows = await self._call(
            digest_sql.top_reported, list(by_id), to_epoch(since), to_epoch(until), limit
        )
        return [(by_id[sid], n) for sid, n in rows]

    async def availability(
        self, service_key: str, since: datetime, until: datetime
    ) -> dict[str, tuple[int, int]]:
        """(ok, failed) probe counts per region over [since, until)."""
        sid = self._ids.get(service_key)
        if sid is None:
            return {}
        return await self._call(probe_sql.availability, sid, to_epoch(since), to_epoch(until))

    async def _write(self, fn: Callable[..., None], *args: object) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                fn(conn, *args)

        await self._call(run)

    async def remove_tenant_service(self, scope: str, key: str) -> bool:
        """Remove a tenant's service and its history; False if it was not there."""

        def run(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return service_sql.delete_tenant_service(conn, scope, key)

        removed = await self._call(run)
        self._ids.pop(key, None)
        return removed

    # ---- writes --------------------------------------------------------------------------

    async def add_report(self, row: ReportRow, rules: ReportRules) -> ReportOutcome:
        return await self._call(_add_report, row, rules)

    async def add_works_for_me(self, row: WorksForMeRow, dedupe_seconds: int) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            with immediate(conn):
                return (
                    report_sql.insert_works_for_me(conn, [row], dedupe_seconds=dedupe_seconds) == 1
                )

        return await self._call(run)

    async def add_probe_results(self, rows: Sequence[ProbeRow]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return probe_sql.insert_probes(conn, rows)

        return await self._call(run)

    async def add_status(self, rows: Sequence[StatusRow]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                return probe_sql.insert_status(conn, rows)

        return await self._call(run)

    async def import_batch(
        self,
        batch: ImportBatch,
        dedupe_seconds: int,
        *,
        job: ImportJob | None = None,
        number: int = 0,
    ) -> ImportCounts:
        """Write one batch in a single transaction: all of it or none.

        With ``job``, the batch's ``number`` (from 1) and the id ranges it added are recorded
        in the same transaction: an interrupted import resumes after its last committed batch,
        and ``abort_import`` can take every batch back out.
        """
        return await self._call(_import_batch, batch, dedupe_seconds, job, number)

    async def begin_import(self, sha256: str, name: str, batch_size: int) -> ImportJob:
        """The import record for a file: new, resumable, or already finished."""
        return await self._call(_begin_import, sha256, name, batch_size)

    async def finish_import(self, job: ImportJob, events: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute(
                    "UPDATE imports SET finished_at = ?, events = ? WHERE id = ?",
                    (to_epoch(datetime.now().astimezone()), events, job.id),
                )

        await self._call(run)

    async def abort_import(self, job: ImportJob) -> None:
        """Remove everything ``job`` wrote, rollups included, and forget the job."""
        await self._call(_abort_import, job)

    # ---- agents ----

    async def add_agent_batch(self, batch: AgentBatch) -> BatchOutcome:
        """Store an agent's batch once: results, batch id and the agent's row in one transaction."""

        def run(conn: sqlite3.Connection) -> BatchOutcome:
            with immediate(conn):
                return agent_sql.add_batch(conn, batch)

        return await self._call(run)

    async def touch_agent(self, agent_id: str, region: str, at: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                agent_sql.touch_agent(conn, agent_id, region, at)

        await self._call(run)

    async def agents(self) -> list[AgentRow]:
        """Every agent that ever reached this core, by region then id (for /agents)."""
        return await self._call(agent_sql.list_agents)

    # ---- retention -----------------------------------------------------------------------

    async def run_retention(
        self,
        now: datetime,
        *,
        hot_seconds: int,
        raw_days: int,
        minute_days: int,
        max_chunks: int = retention_sql.MAX_CHUNKS,
        chunk_rows: int = retention_sql.CHUNK_ROWS,
        chunk_blocks: int = retention_sql.CHUNK_BLOCKS,
        stop: Callable[[], bool] | None = None,
    ) -> RetentionReport:
        """Pack, seal, expire and fold probe data as of ``now`` (see ``bot.store.retention``).

        One short transaction per chunk on the worker thread; between chunks the other store
        calls waiting for the thread go first. Stops after ``max_chunks``, or at the first chunk
        boundary where ``stop()`` is true (``finished`` False): the next run carries on.
        """
        horizons = retention_sql.Horizons.at(
            to_epoch(now),
            hot_seconds=hot_seconds,
            raw_days=raw_days,
            minute_days=minute_days,
            chunk_rows=chunk_rows,
            chunk_blocks=chunk_blocks,
        )
        cursor = retention_sql.Cursor()
        report = RetentionReport()
        while cursor.phase is not retention_sql.Phase.DONE and report.chunks < max_chunks:
            if stop is not None and stop():
                break
            await self._call(retention_sql.run_chunk, horizons, cursor, report)
            await asyncio.sleep(0)
        report.finished = cursor.phase is retention_sql.Phase.DONE
        return report

    # ---- reads ---------------------------------------------------------------------------

    async def evidence(self, service: Service, at: datetime, windows: EvidenceWindows) -> Evidence:
        sid = self._ids.get(service.key)
        if sid is None:
            return Evidence(service=service, at=at)
        read = partial(
            _evidence, sid=sid, service=service, at=at, w=windows, cache=self._report_cache
        )
        found = self._try_inline(read)
        if found is not None:
            return found
        return await self._call(read)

    async def report_series(
        self, service_key: str, since: datetime, until: datetime, step: timedelta
    ) -> dict[int, int]:
        """Counted reports per bucket of ``step`` (epoch-second keys), for charts."""
        sid = self._ids.get(service_key)
        if sid is None:
            return {}
        return await self._call(
            report_sql.report_series,
            sid,
            to_epoch(since),
            to_epoch(until),
            int(step.total_seconds()),
        )

    async def hourly_totals(
        self, service_key: str, since: datetime, until: datetime
    ) -> dict[int, int]:
        sid = self._ids.get(service_key)
        if sid is None:
            return {}
        return await self._call(report_sql.hourly_totals, sid, to_epoch(since), to_epoch(until))

    async def probe_minutes(
        self, service_key: str, since: datetime, until: datetime
    ) -> dict[int, tuple[int, int]]:
        sid = self._ids.get(service_key)
        if sid is None:
            return {}
        return await self._call(probe_sql.failing_minutes, sid, to_epoch(since), to_epoch(until))

    async def tenant_setting(self, platform: str, tenant: str, key: str) -> str | None:
        def run(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT value FROM tenant_settings WHERE platform = ? AND tenant = ? AND key = ?",
                (platform, tenant, key),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._call(run)

    async def set_tenant_setting(self, platform: str, tenant: str, key: str, value: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                conn.execute(
                    "INSERT INTO tenant_settings (platform, tenant, key, value) "
                    "VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (platform, tenant, key) DO UPDATE SET value = excluded.value",
                    (platform, tenant, key, value),
                )

        await self._call(run)

    async def ping(self) -> bool:
        """True when the database answers a query; the health check's input."""
        try:
            return bool(await self._call(lambda conn: conn.execute("SELECT 1").fetchone()[0]))
        except sqlite3.Error:
            log.exception("store ping failed")
            return False

    async def table_counts(self) -> dict[str, int]:
        return await self._call(_table_counts)


# ---- the functions that run on the worker thread ------------------------------------------


def _now() -> int:
    return to_epoch(datetime.now().astimezone())


def _sync_catalog(conn: sqlite3.Connection, catalog: Catalog) -> dict[str, int]:
    import sqlite_utils  # here: it pulls in heavy optional modules the CLI rarely needs

    db = sqlite_utils.Database(conn)
    now = to_epoch(datetime.now().astimezone())
    with immediate(conn):
        for svc in catalog.services:
            service_sql.upsert_service(conn, "", svc, "config", now)
    rows = db.query("SELECT key, id FROM services WHERE tenant = ''")
    ids = {row["key"]: int(row["id"]) for row in rows}
    # Tenant services are known by their reference (scope/key), which never clashes.
    for _scope, sid, svc in service_sql.load_tenant_services(conn):
        ids[svc.key] = sid
    return ids


def _add_report(conn: sqlite3.Connection, row: ReportRow, rules: ReportRules) -> ReportOutcome:
    with immediate(conn):
        recent = report_sql.user_reports_since(
            conn, platform=row.platform, tenant=row.tenant, user=row.user, since=row.at - 3600
        )
        if recent >= rules.user_hourly_limit:
            return ReportOutcome.RATE_LIMITED
        _stored, counted = report_sql.insert_reports(
            conn, [row], dedupe_seconds=rules.dedupe_seconds, tenant_cap=rules.tenant_cap
        )
        if counted:
            return ReportOutcome.COUNTED
        already = conn.execute(
            "SELECT 1 FROM reports WHERE service_id = ? AND platform = ? AND tenant = ? "
            "AND bucket = ? AND user = ? AND counted = 1",
            (row.service_id, row.platform, row.tenant, row.at // rules.dedupe_seconds, row.user),
        ).fetchone()
        return ReportOutcome.COMMENT if already else ReportOutcome.CAPPED


def _begin_import(conn: sqlite3.Connection, sha256: str, name: str, batch_size: int) -> ImportJob:
    with immediate(conn):
        row = conn.execute(
            "SELECT id, batch_size, batches_done, finished_at FROM imports WHERE sha256 = ?",
            (sha256,),
        ).fetchone()
        if row is None:
            now = to_epoch(datetime.now().astimezone())
            cursor = conn.execute(
                "INSERT INTO imports (sha256, name, batch_size, started_at) VALUES (?, ?, ?, ?)",
                (sha256, name, batch_size, now),
            )
            return ImportJob(int(cursor.lastrowid or 0), batch_size, 0, False)
    if int(row[1]) != batch_size and row[3] is None:
        raise ImportConflict(
            f"this file was partly imported with batches of {row[1]} events (now {batch_size}); "
            "run the same outagebot version to finish it"
        )
    return ImportJob(int(row[0]), int(row[1]), int(row[2]), row[3] is not None)


# Import kinds in the order a batch writes them, with their tables.
_IMPORT_TABLES = (
    ("status", "status_snapshots"),
    ("probes", "probe_results"),
    ("works_for_me", "works_for_me"),
    ("reports", "reports"),
)


def _import_batch(
    conn: sqlite3.Connection,
    batch: ImportBatch,
    dedupe_seconds: int,
    job: ImportJob | None,
    number: int,
) -> ImportCounts:
    with immediate(conn):
        if job is not None:
            done = conn.execute(
                "UPDATE imports SET batches_done = ? WHERE id = ? AND batches_done = ?",
                (number, job.id, number - 1),
            )
            if done.rowcount != 1:
                raise ImportConflict(
                    "another process is importing the same file; wait for it to finish"
                )
        before = {kind: _max_id(conn, table) for kind, table in _IMPORT_TABLES}
        status = probe_sql.insert_status(conn, batch.status)
        probes = probe_sql.insert_probes(conn, batch.probes) if batch.probes else 0
        wfm = report_sql.insert_works_for_me(
            conn, batch.works_for_me, dedupe_seconds=dedupe_seconds
        )
        stored, counted = 0, 0
        if batch.prepared is not None:
            stored, counted = report_sql.insert_prepared(
                conn, batch.prepared, dedupe_seconds=dedupe_seconds
            )
        elif batch.reports:
            stored, counted = report_sql.insert_reports(
                conn, batch.reports, dedupe_seconds=dedupe_seconds, tenant_cap=None
            )
        if job is not None:
            # Inside BEGIN IMMEDIATE no one else writes, so new ids are exactly (before, max].
            conn.executemany(
                "INSERT INTO import_batches (import_id, number, kind, first_id, last_id) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (job.id, number, kind, before[kind] + 1, last)
                    for kind, table in _IMPORT_TABLES
                    if (last := _max_id(conn, table)) > before[kind]
                ],
            )
    return ImportCounts(stored, counted, wfm, probes, status)


def _max_id(conn: sqlite3.Connection, table: str) -> int:
    # Table names come from _IMPORT_TABLES only, never from input.
    return int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])  # noqa: S608


def _abort_import(conn: sqlite3.Connection, job: ImportJob) -> None:
    with immediate(conn):
        ranges = conn.execute(
            "SELECT kind, first_id, last_id FROM import_batches WHERE import_id = ?", (job.id,)
        ).fetchall()
        for kind, first, last in ranges:
            if kind == "reports":
                report_sql.delete_reports(conn, first, last)
            elif kind == "probes":
                probe_sql.delete_probes(conn, first, last)
            else:
                table = dict(_IMPORT_TABLES)[kind]
                conn.execute(f"DELETE FROM {table} WHERE id BETWEEN ? AND ?", (first, last))  # noqa: S608
        conn.execute("DELETE FROM imports WHERE id = ?", (job.id,))


def _evidence(
    conn: sqlite3.Connection,
    sid: int,
    service: Service,
    at: datetime,
    w: EvidenceWindows,
    cache: ReportCache,
) -> Evidence:
    now = to_epoch(at)
    cached = cache if cache.attach(conn) else None
    with snapshot(conn):
        if cached is not None:
            cached.check(conn)  # drops it all if another connection committed since last time
        probes = probe_sql.recent_probes(conn, sid, now - w.probe_seconds, now)
        reports = report_sql.recent_reports(conn, sid, now - w.report_seconds, now, cache=cached)
        history = report_sql.same_hour_history(conn, sid, now, w.baseline_days, cache=cached)
        wfm = report_sql.works_for_me_counts(conn, sid, now - w.report_seconds, now)
        status_row = probe_sql.latest_status(conn, sid, now)
        maint_row = probe_sql.active_maintenance(conn, sid, now)
        last_report = report_sql.last_report_at(conn, sid, now)
    status = None
    if status_row is not None and now - status_row[0] <= w.status_max_age_seconds:
        status = StatusSnapshot(
            service.key, from_epoch(status_row[0]), Indicator(status_row[1]), status_row[2]
        )
    maintenance = None
    if maint_row is not None:
        maintenance = MaintenanceWindow(
            service.key, from_epoch(maint_row[0]), from_epoch(maint_row[1]), maint_row[2]
        )
    return Evidence(
        service=service,
        at=at,
        probes=probes,
        reports=reports,
        history=history,
        history_days=w.baseline_days,
        works_for_me=wfm,
        status=status,
        maintenance=maintenance,
        last_report_at=None if last_report is None else from_epoch(last_report),
        last_probe_at=from_epoch(probes[-1].at) if probes else None,
    )


def _key_names(conn: sqlite3.Connection) -> tuple[str, int]:
    """(this database's name, the first outbox id keyed with it)."""
    meta = dict(conn.execute("SELECT name, value FROM store_meta"))
    return str(meta["instance"]), int(meta["keyed_from"])


def _queue_alerts(
    conn: sqlite3.Connection, incident_id: int, service: str, alert: AlertSpec, at: int
) -> None:
    subs = alert_sql.matching_subscriptions(conn, service, alert.tags, alert.level, alert.tenant)
    rows = [(s, alert.kind, alert.payloads.get(s.lang, alert.payloads["en"])) for s in subs]
    alert_sql.enqueue(conn, incident_id, rows, at)


def _table_counts(conn: sqlite3.Connection) -> dict[str, int]:
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    return {name: db[name].count for name in db.table_names()}

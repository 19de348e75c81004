"""The database schema as numbered migrations, applied in order and recorded in PRAGMA user_version.

A migration is never edited: change the schema by appending a new one. (Before the first
release, migrations 1 and 2 were edited in place; ``migrate`` refuses a database from such a
development build by name instead of failing later with "no such table".) Times are
integer seconds since the epoch (UTC); services are referenced by integer id to keep the large
tables (reports, probe results) narrow.
"""

from __future__ import annotations

import re
import sqlite3

from bot.store.connection import immediate

MIGRATIONS: tuple[str, ...] = (
    # 1: the foundation.
    """
    CREATE TABLE services (
        id          INTEGER PRIMARY KEY,
        tenant      TEXT NOT NULL DEFAULT '',      -- '' is the config catalog
        key         TEXT NOT NULL,
        name        TEXT NOT NULL,
        spec        TEXT NOT NULL,                 -- JSON: aliases, targets, status page, tags
        source      TEXT NOT NULL CHECK (source IN ('config', 'admin')),
        updated_at  INTEGER NOT NULL,
        UNIQUE (tenant, key)
    );

    -- The hot table: probe results as rows while they are recent (the verdict reads them) and
    -- right after an import; the retention job (bot/store/retention.py) packs older ones into
    -- probe_raw and probe_minutes.
    CREATE TABLE probe_results (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        target      TEXT NOT NULL,
        region      TEXT NOT NULL,
        at_ms       INTEGER NOT NULL,              -- milliseconds: re-checks land in one second
        ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
        status      INTEGER,
        latency_ms  REAL,
        error       TEXT
    );
    -- Unique so that a replayed agent batch or a re-run import adds nothing twice.
    CREATE UNIQUE INDEX probe_results_key ON probe_results (service_id, at_ms, target, region);

    -- Per-minute rollups of compacted probe results: one row per service and UTC day holding,
    -- for each (target, region), ok/failed counts per minute and latency per slot, packed and
    -- compressed (bot/store/probes.py; layout and sizes in docs/storage.md). Results still in
    -- probe_results (the hot table) are not in here yet: reads add the two.
    CREATE TABLE probe_minutes (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        day         INTEGER NOT NULL,              -- epoch seconds of 00:00 UTC
        data        BLOB NOT NULL,
        UNIQUE (service_id, day)
    );
    CREATE INDEX probe_minutes_day ON probe_minutes (day);

    CREATE TABLE reports (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        at          INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,              -- at // dedupe window: one counted report each
        region      TEXT NOT NULL,
        problem     TEXT NOT NULL,
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        user        TEXT NOT NULL,
        note        TEXT NOT NULL DEFAULT '',
        counted     INTEGER NOT NULL CHECK (counted IN (0, 1))
    );
    CREATE INDEX reports_service_at ON reports (service_id, at);
    -- The per-user rate limit, for chat reports only: imports would only make it bigger and
    -- slower (its insertion order is random, the worst case for a B-tree).
    CREATE INDEX reports_chat_user ON reports (platform, tenant, user, at)
        WHERE platform != 'import';
    -- One counted report per user, service and window; the prefix also counts a tenant's weight.
    CREATE UNIQUE INDEX reports_counted ON reports (service_id, platform, tenant, bucket, user)
        WHERE counted = 1;

    CREATE TABLE report_minutes (
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        minute      INTEGER NOT NULL,
        region      TEXT NOT NULL,
        problem     TEXT NOT NULL,
        n           INTEGER NOT NULL,
        PRIMARY KEY (service_id, minute, region, problem)
    ) WITHOUT ROWID;

    CREATE TABLE report_hours (
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        hour        INTEGER NOT NULL,
        region      TEXT NOT NULL,
        n           INTEGER NOT NULL,
        PRIMARY KEY (service_id, hour, region)
    ) WITHOUT ROWID;

    CREATE TABLE works_for_me (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        at          INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        region      TEXT NOT NULL,
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        user        TEXT NOT NULL,
        UNIQUE (service_id, platform, tenant, user, bucket)
    );
    CREATE INDEX works_for_me_service_at ON works_for_me (service_id, at);

    CREATE TABLE status_snapshots (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        at          INTEGER NOT NULL,
        indicator   TEXT NOT NULL
                    CHECK (indicator IN ('none', 'minor', 'major', 'critical', 'maintenance')),
        description TEXT NOT NULL,
        UNIQUE (service_id, at)
    );

    CREATE TABLE maintenance_windows (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        starts      INTEGER NOT NULL,
        ends        INTEGER NOT NULL CHECK (ends > starts),
        note        TEXT NOT NULL DEFAULT '',
        created_by  TEXT NOT NULL
    );
    CREATE INDEX maintenance_service_ends ON maintenance_windows (service_id, ends);

    CREATE TABLE incidents (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        category    TEXT NOT NULL,
        opened_at   INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        resolved_at INTEGER,
        detail      TEXT NOT NULL DEFAULT '{}'     -- JSON: regions, targets, report level
    );
    -- At most one open incident per service.
    CREATE UNIQUE INDEX incidents_open ON incidents (service_id) WHERE resolved_at IS NULL;

    CREATE TABLE subscriptions (
        id          INTEGER PRIMARY KEY,
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        channel     TEXT NOT NULL,
        scope       TEXT NOT NULL CHECK (scope IN ('service', 'tag', 'all')),
        target      TEXT NOT NULL DEFAULT '',
        level       TEXT NOT NULL CHECK (level IN ('down', 'regional', 'user_reports')),
        digest_time TEXT,
        digest_tz   TEXT,
        digest_day  TEXT,
        created_by  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        UNIQUE (platform, tenant, channel, scope, target)
    );

    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY,
        incident_id INTEGER REFERENCES incidents(id) ON DELETE CASCADE,
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        channel     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        payload     TEXT NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'dead')),
        attempts    INTEGER NOT NULL DEFAULT 0,
        due_at      INTEGER NOT NULL,
        message_id  TEXT,
        last_error  TEXT,
        created_at  INTEGER NOT NULL,
        sent_at     INTEGER,
        UNIQUE (incident_id, platform, channel, kind)
    );
    CREATE INDEX outbox_due ON outbox (platform, state, due_at);

    CREATE TABLE digest_runs (
        id          INTEGER PRIMARY KEY,
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        channel     TEXT NOT NULL,
        period      TEXT NOT NULL,                 -- e.g. 2026-11-24 or 2026-W48
        state       TEXT NOT NULL CHECK (state IN ('running', 'sent', 'failed')),
        started_at  INTEGER NOT NULL,
        finished_at INTEGER,
        UNIQUE (platform, channel, period)
    );

    -- One row per imported file (by content hash). Batches are written while the rest of the
    -- file is still being checked; each records the id range it added, in its own
    -- transaction, so a bad line later in the file removes them all again, and a re-run after
    -- a crash resumes after the last committed batch.
    CREATE TABLE imports (
        id          INTEGER PRIMARY KEY,
        sha256      TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        batch_size  INTEGER NOT NULL,
        batches_done INTEGER NOT NULL DEFAULT 0,
        events      INTEGER,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER
    );

    CREATE TABLE import_batches (
        import_id   INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
        number      INTEGER NOT NULL,
        kind        TEXT NOT NULL CHECK (kind IN ('reports', 'works_for_me', 'probes', 'status')),
        first_id    INTEGER NOT NULL,
        last_id     INTEGER NOT NULL,
        PRIMARY KEY (import_id, number, kind)
    ) WITHOUT ROWID;

    CREATE TABLE tenant_settings (
        platform    TEXT NOT NULL,
        tenant      TEXT NOT NULL,
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        PRIMARY KEY (platform, tenant, key)
    ) WITHOUT ROWID;
    """,
    # 2: probe agents and long-term probe aggregates.
    """
    -- Probe agents, as last seen by the core: the health shown by /agents and the API.
    CREATE TABLE agents (
        id          TEXT PRIMARY KEY,
        region      TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        last_lag_ms REAL,                          -- newest result's age when it arrived
        batches     INTEGER NOT NULL DEFAULT 0,
        results     INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;

    -- Signed batches already accepted, so a replay inside the signature window writes nothing.
    CREATE TABLE agent_batches (
        agent_id    TEXT NOT NULL,
        batch_id    TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (agent_id, batch_id)
    ) WITHOUT ROWID;
    CREATE INDEX agent_batches_received ON agent_batches (received_at);

    -- Raw probe results older than the hot window, packed per service and UTC day: part 25 is a
    -- day that is over ("sealed"); while it is not, part 0-23 is an hour still being written and
    -- part 24 the day's finished hours. first_ms/last_ms bound the results inside, so the
    -- verdict's recent window skips every block with one index probe.
    CREATE TABLE probe_raw (
        id          INTEGER PRIMARY KEY,
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        day         INTEGER NOT NULL,              -- epoch seconds of 00:00 UTC
        part        INTEGER NOT NULL CHECK (part BETWEEN 0 AND 25),
        first_ms    INTEGER NOT NULL,
        last_ms     INTEGER NOT NULL,
        results     INTEGER NOT NULL,
        data        BLOB NOT NULL,
        UNIQUE (service_id, day, part)
    );
    CREATE INDEX probe_raw_last ON probe_raw (service_id, last_ms);
    CREATE INDEX probe_raw_day ON probe_raw (day);
    -- Blocks the retention job still has to merge or seal: today's, and a day just over.
    CREATE INDEX probe_raw_unsealed ON probe_raw (day, service_id) WHERE part < 25;

    -- Probe error strings (mostly bot.probes.base.Reason values), stored once: packed blocks
    -- refer to them by id.
    CREATE TABLE probe_errors (
        id          INTEGER PRIMARY KEY,
        text        TEXT NOT NULL UNIQUE
    );

    -- Per-day probe aggregates: per-minute rollups older than the minute retention fold here.
    CREATE TABLE probe_days (
        service_id  INTEGER NOT NULL REFERENCES services(id) ON DELETE CASCADE,
        target      TEXT NOT NULL,
        region      TEXT NOT NULL,
        day         INTEGER NOT NULL,              -- epoch seconds of 00:00 UTC
        ok          INTEGER NOT NULL,
        failed      INTEGER NOT NULL,
        latency_sum REAL NOT NULL,
        latency_max REAL,
        PRIMARY KEY (service_id, day, target, region)
    ) WITHOUT ROWID;
    """,
    # 3: alert delivery: each subscription's language (alerts are rendered when queued).
    """
    ALTER TABLE subscriptions ADD COLUMN lang TEXT NOT NULL DEFAULT 'en';
    CREATE INDEX subscriptions_channel ON subscriptions (platform, tenant, channel);
    """,
    # 4: when an alert's last attempt may have reached a platform without idempotency keys
    # (Slack): set before the attempt, cleared when it is known not to have landed.
    """
    ALTER TABLE outbox ADD COLUMN sending_at INTEGER;
    """,
    # 5: this database's own random name, part of every alert's idempotency key. A fresh
    # database numbers its outbox from 1 again, and neither Discord's nonce check nor the Slack
    # look-up may take its alerts for another database's. Rows queued before this migration
    # keep their old key (outbox-<id>), so an alert in flight across the upgrade is not resent.
    """
    CREATE TABLE store_meta (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO store_meta (name, value) VALUES ('instance', lower(hex(randomblob(8))));
    INSERT INTO store_meta (name, value)
        SELECT 'keyed_from', coalesce(max(id), 0) + 1 FROM outbox;
    """,
)

LATEST = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer outagebot; running old code on it could corrupt it."""


class SchemaMismatch(Exception):
    """The version number matches but tables are missing: a database from a development build."""


def expected_tables() -> set[str]:
    """Every table the migrations create, read from their SQL."""
    return {name for script in MIGRATIONS for name in re.findall(r"CREATE TABLE (\w+)", script)}


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply every pending migration, each in its own transaction; return the versions applied."""
    version = current_version(conn)
    if version > LATEST:
        raise SchemaTooNew(
            f"the database is at schema version {version}, newer than this outagebot "
            f"understands ({LATEST}); upgrade outagebot or point [bot] database elsewhere"
        )
    applied = []
    for number in range(version + 1, LATEST + 1):
        with immediate(conn):
            # Re-check inside the write lock: another process may have migrated meanwhile.
            if current_version(conn) >= number:
                continue
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        applied.append(number)
    missing = expected_tables() - {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if missing:
        raise SchemaMismatch(
            f"the database says schema version {LATEST} but lacks tables {sorted(missing)}: it "
            "was created by a development build of outagebot; move it aside and start again"
        )
    return applied


def _statements(script: str) -> list[str]:
    # executescript() would COMMIT our BEGIN IMMEDIATE; split into statements instead.
    parts, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            parts.append(buf.strip())
            buf = ""
    if buf.strip():
        parts.append(buf.strip())
    return [p for p in parts if p]

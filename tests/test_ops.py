"""A storage failure in background work is one "bot degraded" notice, never an outage alert."""

from __future__ import annotations

import sqlite3
from io import StringIO
from pathlib import Path

from rich.console import Console

from bot.adapters.console import ConsoleAdapter
from bot.app import App
from bot.config import parse_settings
from bot.model import to_epoch, utcnow
from bot.reply import Reply, error
from bot.store import ImportBatch, ProbeRow


async def test_one_notice_per_episode_then_recovered(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "bot": {"database": str(tmp_path / "ops.db")},
            "probes": {"enabled": False},
            "api": {"enabled": False},
            "incidents": {"ops_channel": "console:ops"},
            "services": [{"key": "acme", "name": "Acme", "targets": {"web": "https://a.invalid/"}}],
        }
    )
    app = await App.create(settings, demo=False)
    out = StringIO()

    async def nobody(_inv: object) -> Reply:
        return error("error.internal")

    console = ConsoleAdapter(nobody, {}, stdin=StringIO(""), console=Console(file=out, width=200))
    assert app.dispatcher is not None
    app.dispatcher.add_sender("console", console)
    try:
        sid = app.store.service_id("acme")
        assert sid is not None
        t = to_epoch(utcnow())
        batch = ImportBatch()
        batch.probes = [
            ProbeRow(sid, "web", r, (t - k * 20) * 1000, False, 503, 50.0, None)
            for r in ("US", "JP")
            for k in range(3)
        ]
        await app.store.import_batch(batch, 3600)

        def read_only(conn: sqlite3.Connection, on: bool) -> None:
            conn.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")

        # A real SQLite failure on the bot's own connection: every write now fails, as on a
        # full or read-only disk.
        await app.store._call(read_only, True)
        await app._incidents_job()
        await app._incidents_job()
        printed = out.getvalue()
        assert printed.count("outagebot is degraded") == 1
        assert "incident tracking failed" in printed and "not a service outage" in printed
        assert "Acme" not in printed  # no outage alert for our own failure
        await app.store._call(read_only, False)
        await app._incidents_job()
        assert out.getvalue().count("outagebot recovered") == 1
        assert await app.store.open_incidents() != []  # and the real incident is recorded now
    finally:
        await app.close()

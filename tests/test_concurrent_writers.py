"""Every writer at once on one database: zero "database is locked", integrity intact.

In the bot process: probe results arriving, chat commands (reports, subscriptions), incident
passes writing outbox rows, the dispatcher marking them sent, digests claimed and queued. Beside
it, another process running ``outagebot import`` into the same file, as an operator would.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from rich.console import Console

from bot.adapters.console import ConsoleAdapter
from bot.config import parse_settings
from bot.context import CommandContext
from bot.digests import DigestScheduler
from bot.incidents import IncidentPolicy, IncidentTracker
from bot.invocation import Invocation
from bot.model import Catalog, to_epoch, utcnow
from bot.outbox import AlertDispatcher
from bot.reply import ReplyKind
from bot.resolve import Resolver
from bot.router import Router
from bot.store import ImportBatch, ProbeRow, Store
from bot.verdicts import VerdictService
from commands import COMMANDS

SERVICES = [
    {"key": f"svc{i}", "name": f"Service {i}", "targets": {"web": f"https://s{i}.invalid/"}}
    for i in range(6)
]


async def test_all_writers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "busy.db"
    raw = {
        "bot": {"database": str(db)},
        "probes": {"enabled": False},
        "api": {"enabled": False},
        "services": SERVICES,
    }
    config = tmp_path / "busy.toml"
    config.write_text(_toml(raw))
    settings = parse_settings(raw)
    catalog: Catalog = settings.catalog()
    store = await Store.open(db, catalog)
    now = utcnow()
    lines = [
        json.dumps(
            {
                "type": "report",
                "at": (now - timedelta(days=1, seconds=i)).isoformat(),
                "service": f"svc{i % 6}",
                "region": "US",
                "user": f"imp{i}",
            }
        )
        for i in range(60_000)
    ]
    imported = tmp_path / "history.jsonl"
    imported.write_text("\n".join(lines) + "\n")
    importer = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(config), "import", str(imported)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx = CommandContext(
        settings=settings,
        catalog=catalog,
        store=store,
        resolver=Resolver(catalog),
        verdicts=VerdictService(store, settings),
    )
    router = Router(ctx, COMMANDS)
    tracker = IncidentTracker(
        store,
        ctx.verdicts,
        lambda: catalog.services,
        policy=IncidentPolicy(open_after=1, resolve_after=timedelta(0)),
    )
    console = ConsoleAdapter(
        router.dispatch, {}, stdin=StringIO(""), console=Console(file=StringIO())
    )
    dispatcher = AlertDispatcher(store, {"console": console})
    digests = DigestScheduler(
        store,
        AsyncIOScheduler(timezone="UTC"),
        lambda platform, tenant: catalog.services,
        defaults=settings.digest,
        timezone="UTC",
    )
    errors: list[BaseException] = []

    async def guarded(work: object) -> None:
        try:
            await work  # type: ignore[misc]
        except sqlite3.Error as exc:
            errors.append(exc)

    async def probes(round_no: int) -> None:
        for service in catalog.services:
            sid = store.service_id(service.key)
            assert sid is not None
            t = to_epoch(utcnow())
            ok = service.key >= "svc3"
            batch = ImportBatch()
            # Half the services fail everywhere: incidents open and alerts are queued.
            batch.probes = [
                ProbeRow(sid, "web", r, t * 1000 + round_no * 10 + k, ok, 200, 5.0, None)
                for r in ("US", "JP")
                for k in range(3)
            ]
            await store.add_probe_results(batch.probes)

    async def commands(round_no: int) -> None:
        for i in range(6):
            inv = Invocation(
                "report", {"service": f"svc{i}"}, "console", "local", "c", f"u{round_no}-{i}"
            )
            assert (await router.dispatch(inv)).kind is ReplyKind.INFO
        sub = Invocation(
            "subscribe", {"subject": "all"}, "console", "local", f"ch{round_no}", "u", None, True
        )
        assert (await router.dispatch(sub)).kind is ReplyKind.INFO

    async def background() -> None:
        await tracker.run_pass()
        await dispatcher.drain_once("console")
        await digests.catch_up()

    for round_no in range(12):
        await asyncio.gather(
            guarded(probes(round_no)),
            guarded(commands(round_no)),
            guarded(background()),
        )
    _out, err = importer.communicate(timeout=120)
    counts = await store.table_counts()
    await store.close()
    assert errors == []
    assert importer.returncode == 0, err
    assert "locked" not in err
    assert counts["reports"] >= 60_000 + 72
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] > 0
    finally:
        conn.close()


def _toml(raw: dict[str, object]) -> str:
    lines = [
        "[bot]",
        f'database = "{raw["bot"]["database"]}"',  # type: ignore[index]
        "[probes]",
        "enabled = false",
        "[api]",
        "enabled = false",
    ]
    for svc in SERVICES:
        lines += [
            "[[services]]",
            f'key = "{svc["key"]}"',
            f'name = "{svc["name"]}"',
            f'targets = {{ web = "{svc["targets"]["web"]}" }}',  # type: ignore[index]
        ]
    return "\n".join(lines) + "\n"

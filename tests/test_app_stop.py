"""Stopping the bot lets scheduled jobs under way finish instead of cancelling them mid-write.

Cancelled by the scheduler's shutdown, a pass stopped between the verdict and its write and
APScheduler logged the CancelledError as a job failure with a traceback (seen at the end of the
fault-to-alert benchmark). ``App.close`` now pauses the scheduler and waits for its jobs
(bounded): the incident pass, a digest being built, a retention run.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

import bot.app
from bot.app import App
from bot.config import parse_settings
from bot.invocation import Invocation
from bot.model import Catalog, Service, Target, to_epoch, utcnow
from bot.reply import ReplyKind
from bot.store import ImportBatch, ProbeRow, Store

ACME = {"key": "acme", "name": "Acme", "targets": {"web": "https://a.invalid/"}}


async def started(db: Path, **sections: dict[str, object]) -> App:
    """The bot on ``db``, started: no probes, API or digests unless ``sections`` say so."""
    config: dict[str, object] = {
        "bot": {"database": str(db)},
        "probes": {"enabled": False},
        "api": {"enabled": False},
        "digest": {"enabled": False},
        "services": [ACME],
        **sections,
    }
    app = await App.create(parse_settings(config), demo=False)
    await app.start()
    return app


async def test_close_waits_for_an_incident_pass_under_way(tmp_path: Path) -> None:
    db = tmp_path / "stop.db"
    app = await started(db, incidents={"interval_seconds": 3600})
    sid = app.store.service_id("acme")
    assert sid is not None
    t = to_epoch(utcnow())
    batch = ImportBatch()
    batch.probes = [
        ProbeRow(sid, "web", r, (t - k * 20) * 1000, False, 503, 50.0, None)
        for r in ("US", "JP", "GB")
        for k in range(3)
    ]
    await app.store.import_batch(batch, 3600)
    job = asyncio.create_task(app._incidents_job())
    await asyncio.sleep(0)  # one turn of the loop: the pass runs to its first await
    assert job in app.jobs
    await app.close()
    assert job.done() and not job.cancelled() and job.exception() is None
    store = await Store.open(db, Catalog((Service("acme", "Acme", (), (Target("web", "x"),)),)))
    try:
        assert [i.service for i in await store.open_incidents()] == ["acme"]  # it was written
    finally:
        await store.close()


async def test_close_waits_for_a_digest_and_a_retention_run_under_way(tmp_path: Path) -> None:
    db = tmp_path / "digest.db"
    app = await started(db, digest={"enabled": True, "time": "09:00"})
    assert app.digests is not None
    subscribe = Invocation(
        "subscribe", {"subject": "all"}, "console", "local", "ops", "u", None, is_admin=True
    )
    assert (await app.router.dispatch(subscribe)).kind is ReplyKind.INFO
    digest = asyncio.create_task(app.digests.run("console", "local", "ops"))
    retention = asyncio.create_task(app._retention_job())
    await asyncio.sleep(0)  # one turn of the loop: each job runs to its first await
    assert digest in app.jobs and retention in app.jobs
    await app.close()
    for job in (digest, retention):
        assert job.done() and not job.cancelled() and job.exception() is None
    assert digest.result() is True  # built and queued, not left claimed for a later takeover
    conn = sqlite3.connect(db)
    try:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM outbox WHERE channel = 'ops'")]
    finally:
        conn.close()
    assert len(kinds) == 1 and kinds[0].startswith("digest:")


async def test_close_waits_a_bounded_time_for_a_job_that_does_not_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bot.app, "JOB_GRACE_SECONDS", 0.2)
    app = await started(tmp_path / "stuck.db")
    release = asyncio.Event()

    async def stuck() -> None:
        with app.jobs.track():
            await release.wait()

    job = asyncio.create_task(stuck())
    await asyncio.sleep(0)  # one turn of the loop: the job registers itself
    try:
        async with asyncio.timeout(30):  # an unbounded wait would hang here
            with caplog.at_level(logging.WARNING, logger="bot.app"):
                await app.close()
        assert not job.done()  # close gave up waiting for it
        assert app.jobs.stopping
        assert any("still running" in r.getMessage() for r in caplog.records)
    finally:
        release.set()
        await job

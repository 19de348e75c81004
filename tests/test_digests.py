"""Digests: schedules, exactly once per channel and period, catch-up, content, and /digest."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, time, timedelta
from io import StringIO
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from rich.console import Console

from bot.adapters.console import ConsoleAdapter
from bot.config import parse_settings
from bot.context import CommandContext
from bot.digests import GRACE, DigestScheduler, Schedule
from bot.i18n import render
from bot.incidents import IncidentPolicy, IncidentTracker
from bot.invocation import Invocation
from bot.model import Catalog, Service, Target, to_epoch
from bot.outbox import AlertDispatcher
from bot.reply import Reply, ReplyKind
from bot.resolve import Resolver
from bot.router import Router
from bot.store import ImportBatch, ProbeRow, ReportRow, Store
from bot.verdicts import VerdictService
from commands import COMMANDS

ACME = Service("acme", "Acme", (), (Target("web", "https://acme.invalid/"),))
BETA = Service("beta", "Beta", (), (Target("web", "https://beta.invalid/"),))
CATALOG = Catalog((ACME, BETA))
DIGEST_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday


def test_schedules_know_their_last_due_time_and_period() -> None:
    daily = Schedule(time(9, 0), "Europe/Paris", None)
    now = datetime(2026, 3, 2, 7, 30, tzinfo=UTC)  # 08:30 in Paris: today's is not due yet
    due = daily.last_due(now)
    assert due.isoformat() == "2026-03-01T09:00:00+01:00" and daily.period(due) == "2026-03-01"
    weekly = Schedule(time(9, 0), "UTC", "fri")
    due = weekly.last_due(now)
    assert due.date().isoformat() == "2026-02-27" and weekly.period(due) == "2026-W09"
    assert weekly.span == timedelta(days=7) and daily.span == timedelta(days=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(tmp_path: Path):
    store = await Store.open(tmp_path / "d.db", CATALOG)
    yield store, tmp_path / "d.db"
    await store.close()


def make(store: Store, clock: Clock, **digest: object) -> tuple[DigestScheduler, Router]:
    settings = parse_settings(
        {"digest": {"time": "09:00", **digest}, "reports": {"min_reports": 5}}
    )
    digests = DigestScheduler(
        store,
        AsyncIOScheduler(timezone="UTC"),
        lambda platform, tenant: CATALOG.services,
        defaults=settings.digest,
        timezone="UTC",
        clock=clock,
    )
    ctx = CommandContext(
        settings=settings,
        catalog=CATALOG,
        store=store,
        resolver=Resolver(CATALOG),
        verdicts=VerdictService(store, settings),
        clock=clock,
        digests=digests,
    )
    return digests, Router(ctx, COMMANDS)


def say(router: Router, command: str, channel: str = "ops", **args: str):  # type: ignore[no-untyped-def]
    return router.dispatch(
        Invocation(command, args, "console", "local", channel, "u1", "en-GB", is_admin=True)
    )


def digest_rows(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT channel, kind FROM outbox WHERE kind LIKE 'digest:%' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


async def test_one_digest_per_channel_and_period_even_with_two_schedulers(world) -> None:  # type: ignore[no-untyped-def]
    store, db = world
    clock = Clock(DIGEST_AT + timedelta(seconds=1))
    first, router = make(store, clock)
    second, _ = make(store, clock)  # started by mistake beside the first
    assert (await say(router, "subscribe", subject="all")).kind is ReplyKind.INFO
    assert await first.run("console", "local", "ops") is True
    assert await second.run("console", "local", "ops") is False
    assert await first.catch_up() == 0
    assert digest_rows(db) == [("ops", "digest:2026-03-02")]


async def test_an_interrupted_run_is_taken_over_once_stale(world) -> None:  # type: ignore[no-untyped-def]
    store, db = world
    clock = Clock(DIGEST_AT + timedelta(seconds=1))
    digests, router = make(store, clock)
    await say(router, "subscribe", subject="all")
    # As if a process claimed it and was killed before queueing it.
    assert await store.claim_digest("console", "local", "ops", "2026-03-02", to_epoch(clock.now))
    assert await digests.run("console", "local", "ops") is False  # maybe still running
    clock.now += timedelta(minutes=11)
    assert await digests.run("console", "local", "ops") is True
    assert digest_rows(db) == [("ops", "digest:2026-03-02")]


async def test_missed_digests_are_caught_up_within_the_grace_window(world) -> None:  # type: ignore[no-untyped-def]
    store, db = world
    clock = Clock(DIGEST_AT + GRACE - timedelta(minutes=1))  # down across 09:00, back later
    digests, router = make(store, clock)
    await say(router, "subscribe", subject="all", channel="a")
    await say(router, "subscribe", subject="acme", channel="b")
    assert await digests.catch_up() == 2
    assert await digests.catch_up() == 0
    late = Clock(DIGEST_AT + timedelta(days=1) + GRACE + timedelta(minutes=1))
    too_late, _ = make(store, late)
    assert await too_late.catch_up() == 0  # tuesday's is older than the grace window
    assert sorted(digest_rows(db)) == [("a", "digest:2026-03-02"), ("b", "digest:2026-03-02")]


async def test_content_incidents_availability_top_and_all_clear(world) -> None:  # type: ignore[no-untyped-def]
    store, _db = world
    clock = Clock(DIGEST_AT - timedelta(hours=5))
    digests, router = make(store, clock)
    await say(router, "subscribe", subject="all", channel="all")
    await say(router, "subscribe", subject="beta", channel="quiet")
    sid = store.service_id("acme")
    assert sid is not None
    tracker = IncidentTracker(
        store,
        router.ctx.verdicts,
        lambda: CATALOG.services,
        policy=IncidentPolicy(open_after=1, resolve_after=timedelta(minutes=10)),
        clock=clock,
    )
    for minutes, ok in ((0, False), (72, True), (90, True)):
        clock.now = DIGEST_AT - timedelta(hours=5) + timedelta(minutes=minutes)
        t = to_epoch(clock.now)
        batch = ImportBatch()
        batch.probes = [
            ProbeRow(sid, "web", r, (t - k * 30) * 1000, ok, 200 if ok else 503, 90.0, None)
            for r in ("US", "JP")
            for k in range(3)
        ]
        if not minutes:
            batch.reports = [
                ReportRow(sid, t - i, "US", "website", "import", "", f"u{i}") for i in range(9)
            ]
        await store.import_batch(batch, 3600)
        await tracker.run_pass()
    clock.now = DIGEST_AT + timedelta(seconds=5)
    out = StringIO()
    console = ConsoleAdapter(
        router.dispatch, {}, stdin=StringIO(""), console=Console(file=out, width=200)
    )
    assert await digests.run("console", "local", "all")
    assert await digests.run("console", "local", "quiet")
    dispatcher = AlertDispatcher(store, {"console": console}, clock=lambda: clock.now.timestamp())
    await dispatcher.drain_once("console")  # the incident's alerts, then both digests
    text = out.getvalue()
    assert "Daily digest, 2026-03-02" in text
    assert "Acme: Down for 1 h 30 min (Japan, US)" in text
    assert "Probes passed" in text and "Acme:" in text
    assert "Most reported: Acme 9" in text
    assert "official status page said all was well" in text
    assert "All clear: no incidents among the 1 services" in text  # the channel following Beta


async def test_digest_command_sets_shows_and_refuses_bad_input(world) -> None:  # type: ignore[no-untyped-def]
    store, _db = world
    clock = Clock(DIGEST_AT)
    _digests, router = make(store, clock)
    none = await say(router, "digest")
    assert none.text is not None and "no subscriptions" in render(none.text)
    await say(router, "subscribe", subject="all")
    shown = await say(router, "digest")
    assert shown.text is not None and "daily at 09:00 (UTC)" in render(shown.text)
    weekly = await say(router, "digest", time="7:30", day="Friday", timezone="Europe/Paris")
    assert weekly.text is not None
    assert "every fri at 07:30 (Europe/Paris)" in render(weekly.text)
    off = await say(router, "digest", time="off")
    assert off.text is not None and "no digest" in render(off.text)
    for args, expected in (
        ({"time": "25:00"}, "not a time"),
        ({"day": "someday"}, "not a day"),
        ({"timezone": "Mars/Olympus"}, "not a timezone"),
    ):
        reply: Reply = await say(router, "digest", **args)
        assert reply.kind is ReplyKind.ERROR and reply.text is not None
        assert expected in render(reply.text)
    still = await say(router, "digest")
    assert still.text is not None and "no digest" in render(still.text)  # bad input changed nothing

"""kill -9 during an alert drain: the bot as a real subprocess, its config and its seeded outbox.

Shared by the Discord and Slack kill tests (tests/test_delivery_kill*.py). The bot runs as
``python -m bot run --no-console`` against a fake platform in the test's process; one incident
is open for ``n`` subscribed channels; the bot is killed with SIGKILL each time ``step`` more
alerts have arrived, then started again, until the outbox is empty. Waits are on the fake's
condition (it wakes on every request) or on the database, never on time.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from bot.adapters.base import Sender
from bot.alerts import alert_spec
from bot.i18n import Message
from bot.incidents import snapshot
from bot.model import Catalog, Category, Service, Target, to_epoch
from bot.outbox import AlertDispatcher, DeliveryPolicy
from bot.store import IncidentWrite, Store
from bot.verdict import Verdict

__all__ = [
    "ACME",
    "OutboxEntry",
    "Waits",
    "drain_with_kills",
    "integrity",
    "outbox_rows",
    "pending",
    "seed",
    "until",
    "waiting",
    "write_config",
]

ACME = Service("acme", "Acme", (), (Target("web", "https://acme.invalid/"),))


class Waits(Protocol):
    """A fake platform's wait: re-check ``predicate`` on every request it receives."""

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = ...) -> Any: ...


def write_config(path: Path, db: Path, platform: Sequence[str]) -> None:
    """A config with everything but the outbox off, and ``platform``'s section lines."""
    lines = [
        "[bot]",
        f'database = "{db}"',
        "[probes]",
        "enabled = false",
        "[api]",
        "enabled = false",
        "[incidents]",
        "enabled = false",
        "[digest]",
        "enabled = false",
        *platform,
        "[[services]]",
        'key = "acme"',
        'name = "Acme"',
        'targets = { web = "https://acme.invalid/" }',
    ]
    path.write_text("\n".join(lines) + "\n")


async def seed(db: Path, subscriptions: Sequence[tuple[str, str, str]]) -> None:
    """Subscribe (platform, tenant, channel)s and open one incident: one outbox row each."""
    store = await Store.open(db, Catalog((ACME,)))
    try:
        for platform, tenant, channel in subscriptions:
            await store.subscribe(
                platform, tenant, channel, "all", "", level="down", lang="en", user="u"
            )
        # Now, not a fixed date: a row older than max_age (24 h) would be dead-lettered on
        # its first failure instead of retried.
        at = datetime.now(UTC).replace(microsecond=0)
        verdict = Verdict("acme", "Acme", at, Category.DOWN, Message("raw", text="Acme is down"))
        alert = alert_spec("open", ACME, verdict, category="down", opened_at=at, at=at)
        await store.write_incidents(
            [IncidentWrite("open", "acme", "down", to_epoch(at), snapshot(verdict), None, alert)]
        )
    finally:
        await store.close()


async def queue_change(db: Path, kind: str) -> None:
    """An "update" or "resolve" of the open incident seeded by ``seed``, with its outbox rows."""
    store = await Store.open(db, Catalog((ACME,)))
    try:
        [incident] = await store.open_incidents()
        at = datetime.now(UTC).replace(microsecond=0)
        text = "Acme works again" if kind == "resolve" else "Acme is still down"
        verdict = Verdict("acme", "Acme", at, Category.DOWN, Message("raw", text=text))
        opened = datetime.fromtimestamp(incident.opened_at, UTC)
        spec = alert_spec(kind, ACME, verdict, category="down", opened_at=opened, at=at)
        change = IncidentWrite(kind, "acme", "down", to_epoch(at), {}, incident.id, spec)
        await store.write_incidents([change])
    finally:
        await store.close()


# Short backoffs: a storm passes in seconds. The outbox still retries no sooner than 1 s later
# (due_at is whole seconds).
FAST_POLICY = DeliveryPolicy(poll_seconds=0.1, backoff_min=0.5, backoff_max=2.0)


@asynccontextmanager
async def dispatching(
    db: Path, senders: Mapping[str, Sender], policy: DeliveryPolicy = FAST_POLICY
) -> AsyncIterator[Store]:
    """The outbox's dispatcher, in this process, running on ``db`` until the block ends."""
    store = await Store.open(db, Catalog((ACME,)))
    dispatcher = AlertDispatcher(store, senders, policy=policy)
    await dispatcher.start()
    try:
        yield store
    finally:
        await dispatcher.stop()
        await store.close()


async def until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait for a condition only another process can make true (its writes to the database)."""
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.05)


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def pending(db: Path) -> int:
    """Rows not sent yet (waiting, or dead)."""
    return int(_query(db, "SELECT count(*) FROM outbox WHERE state != 'sent'")[0][0])


def waiting(db: Path) -> int:
    """Rows the dispatcher still has to settle (neither sent nor dead)."""
    return int(_query(db, "SELECT count(*) FROM outbox WHERE state = 'pending'")[0][0])


def integrity(db: Path) -> str:
    return str(_query(db, "PRAGMA integrity_check")[0][0])


class OutboxEntry(NamedTuple):
    id: int
    platform: str
    channel: str
    kind: str
    state: str  # "pending", "sent" or "dead"
    attempts: int
    last_error: str
    message_id: str

    instance: str  # the database's random name (store_meta)

    @property
    def key(self) -> str:
        """The idempotency key the dispatcher sends it with (Discord nonce, Slack metadata)."""
        return f"outbox-{self.instance}-{self.id}"


def outbox_rows(db: Path) -> list[OutboxEntry]:
    rows = _query(
        db,
        "SELECT id, platform, channel, kind, state, attempts, coalesce(last_error, ''), "
        "coalesce(message_id, ''), (SELECT value FROM store_meta WHERE name = 'instance') "
        "FROM outbox ORDER BY id",  # every row here is queued after migration 5 (fresh files)
    )
    return [OutboxEntry(*row) for row in rows]


async def drain_with_kills(
    *,
    config: Path,
    db: Path,
    env: Mapping[str, str],
    fake: Waits,
    arrived: Callable[[], int],
    total: int,
    kills: int,
    step: int,
    logs: Path,
) -> int:
    """Run the bot, SIGKILL it ``kills`` times ``step`` arrivals apart, then let it finish.

    ``arrived()`` counts the alerts the fake has seen (distinct rows); returns the kills done.
    Each run's stderr goes to ``logs/bot-<n>.log`` (a pipe nobody reads would fill and block
    the bot), and its tail is shown if a wait times out or the bot exits on its own.
    """
    done = 0
    for run in range(kills + 3):
        log = logs / f"bot-{run}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "--config", str(config), "run", "--no-console"],
                env=dict(env),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        exited = asyncio.ensure_future(asyncio.to_thread(proc.wait))
        signalled = False
        try:
            target = arrived() + step
            if done < kills and target < total:
                # Kill it in the middle of a drain, as soon as ``step`` more have arrived.
                def reached(goal: int = target) -> bool:
                    return arrived() >= goal

                await _wait(fake.wait_for(reached, timeout=60), exited, log)
                proc.send_signal(signal.SIGKILL)
                signalled = True
                done += 1
            else:
                # Let this one finish: everything arrives, and the bot records it all.
                await _wait(fake.wait_for(lambda: arrived() >= total, timeout=90), exited, log)
                await _wait(until(lambda: pending(db) == 0, timeout=30), exited, log)
                proc.send_signal(signal.SIGTERM)
                signalled = True
        finally:
            if not signalled and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)  # a wait failed: never leave the bot behind
            async with asyncio.timeout(30):
                await exited
        if done >= kills and not pending(db):
            return done
    raise AssertionError(f"the outbox never emptied: {pending(db)} rows left after {run + 1} runs")


async def _wait(waiting: Awaitable[Any], exited: asyncio.Future[int], log: Path) -> None:
    """Wait for ``waiting``, unless the bot exits first (a crash at start fails at once)."""
    waiter = asyncio.ensure_future(waiting)
    try:
        await asyncio.wait({waiter, exited}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiter.done():
            waiter.cancel()
    if waiter.done() and not waiter.cancelled():
        try:
            waiter.result()
            return
        except TimeoutError:
            problem = "timed out"
    else:
        problem = f"the bot exited with {exited.result()}"
    tail = log.read_text(errors="replace")[-3000:]
    raise AssertionError(f"{problem}; the bot's log ends with:\n{tail}")

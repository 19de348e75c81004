"""kill -9 during a drain, again and again: every alert arrives, none twice, the database intact.

The bot is a real subprocess (``python -m bot run --no-console``) talking to the fake Discord in
this process; 240 channels are subscribed to one incident; the bot is killed with SIGKILL each
time a few dozen more messages have arrived, then started again, until the outbox is empty.
Discord removes duplicates by nonce (``enforce_nonce``), so a resend after a kill is harmless only
if the bot sends the same nonce for the same outbox row: that is what this proves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fakes.discord_fake import FakeDiscord

from bot.alerts import alert_spec
from bot.i18n import Message
from bot.incidents import snapshot
from bot.model import Catalog, Category, Service, Target, to_epoch
from bot.store import IncidentWrite, Store
from bot.verdict import Verdict

CHANNELS = 240
ACME = Service("acme", "Acme", (), (Target("web", "https://acme.invalid/"),))


def _config(path: Path, db: Path, fake: FakeDiscord) -> None:
    path.write_text(
        "\n".join(
            [
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
                "[discord]",
                "enabled = true",
                'token_env = "OUTAGEBOT_TEST_DISCORD_TOKEN"',
                f'guild_ids = ["{fake.guild_id}"]',
                f'api_base = "{fake.api_base}"',
                f'gateway_url = "{fake.gateway_url}"',
                "[[services]]",
                'key = "acme"',
                'name = "Acme"',
                'targets = { web = "https://acme.invalid/" }',
            ]
        )
        + "\n"
    )


async def _seed(db: Path, fake: FakeDiscord) -> list[str]:
    store = await Store.open(db, Catalog((ACME,)))
    channels = [str(10**17 + i) for i in range(CHANNELS)]
    try:
        for channel in channels:
            await store.subscribe(
                "discord", fake.guild_id, channel, "all", "", level="down", lang="en", user="u"
            )
        at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        verdict = Verdict("acme", "Acme", at, Category.DOWN, Message("raw", text="Acme is down"))
        alert = alert_spec("open", ACME, verdict, category="down", opened_at=at, at=at)
        await store.write_incidents(
            [IncidentWrite("open", "acme", "down", to_epoch(at), snapshot(verdict), None, alert)]
        )
    finally:
        await store.close()
    return channels


async def _until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait for a condition only another process can make true (its writes to the database)."""
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(condition):
            await asyncio.sleep(0.05)


def _pending(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE state != 'sent'").fetchone()[0])
    finally:
        conn.close()


async def test_kill_9_during_drains_delivers_everything_once(tmp_path: Path) -> None:
    fake = await FakeDiscord().start()
    db, config = tmp_path / "kill.db", tmp_path / "kill.toml"
    _config(config, db, fake)
    channels = await _seed(db, fake)
    env = {**os.environ, "OUTAGEBOT_TEST_DISCORD_TOKEN": fake.token}
    kills = 0

    def arrived() -> int:
        return sum(len(fake.channel_messages.get(c, [])) for c in channels)

    try:
        while True:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "--config", str(config), "run", "--no-console"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                target = arrived() + 40
                if kills < 4 and target < CHANNELS:
                    # Kill it in the middle of a drain, as soon as 40 more have arrived.
                    await fake.wait_for(lambda target=target: arrived() >= target, timeout=60)
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                else:
                    # Let this one finish: everything arrives, and the bot records it all.
                    await fake.wait_for(lambda: arrived() >= CHANNELS, timeout=90)
                    await _until(lambda: _pending(db) == 0, timeout=30)
                    proc.send_signal(signal.SIGTERM)
            finally:
                await asyncio.to_thread(proc.wait, 30)
            if kills >= 4 and not _pending(db):
                break
    finally:
        await fake.close()
    per_channel = Counter({c: len(fake.channel_messages.get(c, [])) for c in channels})
    assert kills == 4
    assert set(per_channel.values()) == {1}  # every channel got its alert exactly once
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert (
            conn.execute("SELECT count(*) FROM outbox WHERE state = 'sent'").fetchone()[0]
            == CHANNELS
        )
    finally:
        conn.close()
    assert fake.global_429s == 0

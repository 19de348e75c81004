"""Alert idempotency keys are unique across databases, not only within one.

Outbox ids start at 1 again in a fresh database (a bot whose database was replaced, or a second
bot beside the first, such as staging in the same server). Keyed by id alone, Discord's nonce
check returned the other database's message instead of posting the alert, and the Slack look-up
for a row in doubt took the other database's message for it. Each database now has a random
name (``store_meta``, migration 5) that is part of every key. Against the local platforms.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

from fakes.delivery_kill import ACME, dispatching, outbox_rows, seed, until, waiting
from fakes.discord_harness import running
from fakes.slack import FakeSlack
from fakes.slack_harness import start_bot

from bot.adapters.base import Sender
from bot.i18n import Message
from bot.model import Catalog
from bot.reply import Reply, ReplyKind
from bot.store import Store

WAIT = 60.0


async def drain(db: Path, senders: Mapping[str, Sender]) -> None:
    async with dispatching(db, senders):
        await until(lambda: waiting(db) == 0, WAIT)


async def test_each_database_has_its_own_lasting_name(tmp_path: Path) -> None:
    first = await Store.open(tmp_path / "a.db", Catalog((ACME,)))
    name = first.instance
    await first.close()
    again = await Store.open(tmp_path / "a.db", Catalog((ACME,)))
    other = await Store.open(tmp_path / "b.db", Catalog((ACME,)))
    try:
        assert len(name) == 16 and int(name, 16) >= 0
        assert again.instance == name  # reopening keeps it: keys survive a restart
        assert other.instance != name
        assert again.alert_key(1) != other.alert_key(1)
    finally:
        await again.close()
        await other.close()


async def test_discord_posts_the_first_alert_of_each_database(tmp_path: Path) -> None:
    channel = str(10**17)
    async with running(tmp_path) as h:
        for name in ("before.db", "after.db"):  # within Discord's nonce window of each other
            db = tmp_path / name
            await seed(db, [("discord", h.fake.guild_id, channel)])
            await drain(db, {"discord": h.adapter})
    assert len(h.fake.channel_messages[channel]) == 2
    [before], [after] = outbox_rows(tmp_path / "before.db"), outbox_rows(tmp_path / "after.db")
    assert before.id == after.id == 1 and before.key != after.key
    assert {before.state, after.state} == {"sent"}
    assert before.message_id != after.message_id


async def test_slack_look_up_ignores_another_databases_alert(tmp_path: Path) -> None:
    fake = await FakeSlack().start()
    bot = await start_bot(tmp_path, fake, mode="socket")
    channel = "C00000001"
    try:
        mine, theirs = tmp_path / "mine.db", tmp_path / "theirs.db"
        await seed(mine, [("slack", fake.team, channel)])
        await seed(theirs, [("slack", fake.team, channel)])
        # Our row's first attempt was cut off (say, a crash) before the other bot posted its
        # own first alert in the same channel: our retry looks for our key since then.
        store = await Store.open(mine, Catalog((ACME,)))
        try:
            await store.alert_sending(1, int(time.time()) - 5)
        finally:
            await store.close()
        await drain(theirs, {"slack": bot.adapter})
        assert len(fake.channel_messages[channel]) == 1
        await drain(mine, {"slack": bot.adapter})
    finally:
        await bot.close()
        await fake.close()
    assert len(fake.channel_messages[channel]) == 2  # ours was posted, not taken for theirs
    [row] = outbox_rows(mine)
    assert row.state == "sent"
    assert row.message_id != outbox_rows(theirs)[0].message_id


def as_version_4(db: Path) -> None:
    """The database as the release before migration 5 left it: no name yet."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP TABLE store_meta")
        conn.execute("PRAGMA user_version = 4")
    finally:
        conn.close()


async def test_an_alert_in_flight_across_the_upgrade_keeps_its_key(tmp_path: Path) -> None:
    channel = str(10**17)
    db = tmp_path / "upgraded.db"
    async with running(tmp_path) as h:
        await seed(db, [("discord", h.fake.guild_id, channel)])
        as_version_4(db)
        # The old release sent row 1 with its key outbox-1, then stopped before recording it
        # (a timeout, a crash); the upgraded bot retries the row.
        await h.adapter.send(
            channel, Reply(ReplyKind.INFO, title=Message("raw", text="x")), key="outbox-1"
        )
        await drain(db, {"discord": h.adapter})
        store = await Store.open(db, Catalog((ACME,)))
        try:
            assert store.alert_key(1) == "outbox-1"
            assert store.alert_key(2) == f"outbox-{store.instance}-2"  # queued after it
        finally:
            await store.close()
    assert len(h.fake.channel_messages[channel]) == 1  # Discord recognised the retry
    [row] = outbox_rows(db)
    assert row.state == "sent" and row.message_id == h.fake.channel_messages[channel][0]

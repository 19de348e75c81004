"""One message per incident per channel, through the outbox to the local Discord.

The first message opens the incident; an update edits it and goes into its thread; the
resolution edits it, and is posted in the thread only when the incident had updates there (the
issue: "resolution edits it"). A first message someone deleted does not dead-letter the rest:
they are posted as new messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fakes import discord_payloads as p
from fakes.delivery_kill import ACME, outbox_rows, queue_change, seed, until
from fakes.discord_harness import Harness, running

from bot.model import Catalog
from bot.outbox import AlertDispatcher, DeliveryPolicy
from bot.store import Store

POLICY = DeliveryPolicy(poll_seconds=0.1, backoff_min=0.5, backoff_max=2.0)
WAIT = 60.0


@asynccontextmanager
async def discord(tmp_path: Path) -> AsyncIterator[tuple[Harness, Path, str]]:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        db = tmp_path / "outbox.db"
        await seed(db, [("discord", h.fake.guild_id, channel)])
        yield h, db, channel


async def drain(db: Path, h: Harness) -> None:
    """Run the dispatcher until every queued row is settled."""
    store = await Store.open(db, Catalog((ACME,)))
    dispatcher = AlertDispatcher(store, {"discord": h.adapter}, policy=POLICY)
    await dispatcher.start()
    try:
        await until(lambda: all(r.state != "pending" for r in outbox_rows(db)), WAIT)
    finally:
        await dispatcher.stop()
        await store.close()


async def test_a_resolution_without_updates_only_edits_the_message(tmp_path: Path) -> None:
    async with discord(tmp_path) as (h, db, channel):
        await drain(db, h)
        await queue_change(db, "resolve")
        await drain(db, h)
        opened, resolved = outbox_rows(db)
        assert resolved.state == "sent" and resolved.message_id == opened.message_id
        assert h.fake.channel_messages[channel] == [opened.message_id]
        assert h.fake.threads == {}
        title = h.fake.messages[opened.message_id]["embeds"][0]["title"]
        assert title.startswith("✅ Acme: resolved after")


async def test_updates_and_then_the_resolution_go_into_the_thread(tmp_path: Path) -> None:
    async with discord(tmp_path) as (h, db, channel):
        await drain(db, h)
        await queue_change(db, "update")
        await drain(db, h)
        await queue_change(db, "resolve")
        await drain(db, h)
        opened, update, resolved = outbox_rows(db)
        assert h.fake.channel_messages[channel] == [opened.message_id]
        thread = h.fake.channel_messages[opened.message_id]
        assert thread == [update.message_id, resolved.message_id]
        title = h.fake.messages[opened.message_id]["embeds"][0]["title"]
        assert title.startswith("✅ Acme: resolved after")


async def test_a_deleted_first_message_does_not_dead_letter_the_update(tmp_path: Path) -> None:
    async with discord(tmp_path) as (h, db, channel):
        await drain(db, h)
        [opened] = outbox_rows(db)
        del h.fake.messages[opened.message_id]  # a moderator deleted it
        await queue_change(db, "update")
        await drain(db, h)
        _, update = outbox_rows(db)
        assert update.state == "sent"
        assert h.fake.channel_messages[channel][-1] == update.message_id  # a new message
        assert "message_reference" not in (h.fake.requests[-1].body or {})


async def test_a_resolution_waits_for_an_update_that_is_backing_off(tmp_path: Path) -> None:
    async with discord(tmp_path) as (h, db, channel):
        await drain(db, h)
        [opened] = outbox_rows(db)
        # The update's edit fails once (a 503), so it backs off; the resolution is due now.
        h.fake.fail_next(
            "PATCH", f"/channels/{channel}/messages/{opened.message_id}", status=503, body={}
        )
        await queue_change(db, "update")
        await queue_change(db, "resolve")
        await drain(db, h)
        _, update, resolved = outbox_rows(db)
        assert h.fake.channel_messages[opened.message_id] == [
            update.message_id,
            resolved.message_id,
        ]  # in the thread, in order
        title = h.fake.messages[opened.message_id]["embeds"][0]["title"]
        assert title.startswith("✅ Acme: resolved after")  # not put back to "update"

"""Slack has no idempotency key: a retry that may follow a landed post looks for it first.

The outbox marks each Slack attempt before making it (``outbox.sending_at``); a retry of a row
whose last attempt may have landed (a crash, a 5xx, a timeout) asks the Slack sender to find the
message by the outbox key in its metadata, and records it instead of posting again. Against the
local Slack, which keeps the messages and answers conversations.history and .replies as Slack
does (newest first, pages, metadata only on request, missing_scope without the scope).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.delivery_kill import ACME, outbox_rows, seed, until
from fakes.slack import FakeSlack, Scripted
from fakes.slack_harness import SlackBot, start_bot

from bot.adapters.base import Reconciler
from bot.i18n import Message
from bot.model import Catalog
from bot.outbox import AlertDispatcher, DeliveryPolicy
from bot.reply import Reply, ReplyKind
from bot.store import Store

POLICY = DeliveryPolicy(poll_seconds=0.1, backoff_min=0.5, backoff_max=2.0)
WAIT = 60.0


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[SlackBot]:
    fake = await FakeSlack().start()
    slack = await start_bot(tmp_path, fake, mode="socket")
    try:
        yield slack
    finally:
        await slack.close()
        await fake.close()


def alert(title: str = "Acme is down") -> Reply:
    return Reply(ReplyKind.INFO, title=Message("raw", text=title))


def other_message(fake: FakeSlack, channel: str, n: int) -> dict[str, object]:
    """Something a person wrote in the channel: history holds more than our alerts."""
    return {
        "type": "message",
        "user": "U0PERSON",
        "ts": f"{int(time.time())}.{900000 + n:06d}",
        "channel": channel,
        "thread_ts": None,
        "text": f"hello {n}",
        "metadata": None,
    }


async def test_find_returns_our_message_by_its_key(bot: SlackBot) -> None:
    assert isinstance(bot.adapter, Reconciler)
    since = int(time.time())
    sent = await bot.adapter.send("C0001", alert(), key="outbox-1")
    reply = await bot.adapter.send("C0001", alert(), key="outbox-2", thread_of=sent.message_id)
    assert await bot.adapter.find("C0001", "outbox-1", since=since) == sent
    # A reply lives in its thread, not in the channel's history.
    assert await bot.adapter.find("C0001", "outbox-2", since=since) is None
    found = await bot.adapter.find("C0001", "outbox-2", since=since, thread_of=sent.message_id)
    assert found == reply
    assert await bot.adapter.find("C0001", "outbox-3", since=since) is None
    assert await bot.adapter.find("C0002", "outbox-1", since=since) is None  # other channel
    [history, *_] = bot.fake.calls_to("conversations.history")
    assert history.args["include_all_metadata"] in (True, "true", "1")


async def test_find_pages_through_a_busy_channel(bot: SlackBot) -> None:
    since = int(time.time())
    sent = await bot.adapter.send("C0001", alert(), key="outbox-9")
    bot.fake.posted += [other_message(bot.fake, "C0001", n) for n in range(450)]
    assert await bot.adapter.find("C0001", "outbox-9", since=since) == sent
    assert len(bot.fake.calls_to("conversations.history")) == 3  # 200 + 200 + 50


async def test_find_without_the_history_scope_answers_none(bot: SlackBot) -> None:
    since = int(time.time())
    await bot.adapter.send("C0001", alert(), key="outbox-1")
    bot.fake.history_error = "missing_scope"
    assert await bot.adapter.find("C0001", "outbox-1", since=since) is None


async def _row_id(db: Path) -> int:
    [row] = outbox_rows(db)
    return row.id


def _sending_at(db: Path) -> int | None:
    conn = sqlite3.connect(db)
    try:
        value = conn.execute("SELECT sending_at FROM outbox").fetchone()[0]
        return None if value is None else int(value)
    finally:
        conn.close()


async def _drain(db: Path, bot: SlackBot) -> None:
    store = await Store.open(db, Catalog((ACME,)))
    dispatcher = AlertDispatcher(store, {"slack": bot.adapter}, policy=POLICY)
    await dispatcher.start()
    try:
        await until(lambda: {r.state for r in outbox_rows(db)} == {"sent"}, WAIT)
    finally:
        await dispatcher.stop()
        await store.close()


async def _crashed_after_posting(db: Path, bot: SlackBot, *, landed: bool) -> str | None:
    """What a bot killed mid-attempt leaves: the row marked, the message at Slack or not."""
    await seed(db, [("slack", bot.fake.team, "C0001")])
    row = await _row_id(db)
    store = await Store.open(db, Catalog((ACME,)))
    try:
        await store.alert_sending(row, int(time.time()))
    finally:
        await store.close()
    if not landed:
        return None
    sent = await bot.adapter.send("C0001", alert(), key=f"outbox-{row}")
    return sent.message_id


async def test_a_retry_after_a_crash_records_the_landed_post(tmp_path: Path, bot: SlackBot) -> None:
    db = tmp_path / "outbox.db"
    landed = await _crashed_after_posting(db, bot, landed=True)
    await _drain(db, bot)
    assert len(bot.fake.channel_messages["C0001"]) == 1  # not posted again
    [row] = outbox_rows(db)
    assert row.message_id == landed and _sending_at(db) is None


async def test_a_retry_after_a_crash_posts_what_did_not_land(tmp_path: Path, bot: SlackBot) -> None:
    db = tmp_path / "outbox.db"
    await _crashed_after_posting(db, bot, landed=False)
    await _drain(db, bot)
    assert len(bot.fake.channel_messages["C0001"]) == 1
    assert bot.fake.calls_to("conversations.history")  # it looked before posting


async def test_without_the_scope_a_retry_posts_again(tmp_path: Path, bot: SlackBot) -> None:
    db = tmp_path / "outbox.db"
    await _crashed_after_posting(db, bot, landed=True)
    bot.fake.history_error = "missing_scope"
    await _drain(db, bot)
    assert len(bot.fake.channel_messages["C0001"]) == 2  # the documented cost of no scope


async def test_a_5xx_leaves_the_row_in_doubt_and_a_429_does_not(
    tmp_path: Path, bot: SlackBot
) -> None:
    db = tmp_path / "outbox.db"
    await seed(db, [("slack", bot.fake.team, "C0001")])
    # 503: Slack may have posted it before failing; 429 over 3 s: it certainly did not.
    bot.fake.script(
        "chat.postMessage",
        Scripted(503, {"ok": False, "error": "service_unavailable"}),
        Scripted.rate_limited(4),
    )
    await _drain(db, bot)
    history = bot.fake.calls_to("conversations.history")
    posts = bot.fake.calls_to("chat.postMessage")
    assert len(posts) == 3 and len(bot.fake.channel_messages["C0001"]) == 1
    # Looked once: before the attempt after the 503. The 429 cleared the doubt, so the third
    # attempt went straight to chat.postMessage.
    assert len(history) == 1 and posts[0].at < history[0].at < posts[1].at
    [row] = outbox_rows(db)
    assert row.state == "sent" and _sending_at(db) is None

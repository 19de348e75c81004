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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.delivery_kill import ACME, outbox_rows, seed, until
from fakes.slack import FakeSlack, Scripted
from fakes.slack_harness import SlackBot, start_bot

from bot.adapters.base import DeliveryError, Reconciler
from bot.alerts import alert_spec
from bot.i18n import Message
from bot.model import Catalog, Category, to_epoch
from bot.outbox import AlertDispatcher, DeliveryPolicy
from bot.reply import Reply, ReplyKind
from bot.store import IncidentWrite, Store
from bot.verdict import Verdict

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
    bot.fake.joined.add("C0001")
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
        key = store.alert_key(row)
    finally:
        await store.close()
    if not landed:
        return None
    sent = await bot.adapter.send("C0001", alert(), key=key)
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
    looks = bot.fake.calls_to("conversations.history") + bot.fake.calls_to("conversations.join")
    posts = bot.fake.calls_to("chat.postMessage")
    assert len(posts) == 3 and len(bot.fake.channel_messages["C0001"]) == 1
    # Looked (joining the public channel to read it) only before the attempt after the 503; the
    # 429 cleared the doubt, so the third attempt went straight to chat.postMessage.
    assert looks and all(posts[0].at < call.at < posts[1].at for call in looks)
    [row] = outbox_rows(db)
    assert row.state == "sent" and _sending_at(db) is None


async def test_find_joins_a_public_channel_it_posts_to_without_membership(bot: SlackBot) -> None:
    since = int(time.time())
    sent = await bot.adapter.send("C0005", alert(), key="outbox-5")  # chat:write.public
    assert "C0005" not in bot.fake.joined
    assert await bot.adapter.find("C0005", "outbox-5", since=since) == sent
    assert bot.fake.joined == {"C0005"}
    # Where Slack refuses the join (e.g. no channels:join), the look gives up: send again.
    await bot.adapter.send("C0006", alert(), key="outbox-6")
    bot.fake.join_error = "missing_scope"
    assert await bot.adapter.find("C0006", "outbox-6", since=since) is None


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [(Scripted.rate_limited(10), 10.0), (Scripted(503, {"ok": False, "error": "x"}), None)],
)
async def test_a_look_that_fails_for_now_raises_for_a_retry(
    bot: SlackBot, answer: Scripted, retry_after: float | None
) -> None:
    bot.fake.joined.add("C0001")
    bot.fake.script("conversations.history", answer)
    with pytest.raises(DeliveryError) as raised:
        await bot.adapter.find("C0001", "outbox-1", since=int(time.time()))
    assert not raised.value.permanent and raised.value.retry_after == retry_after


async def _update_in_doubt(db: Path, bot: SlackBot, *, reply_landed: bool) -> tuple[str, int]:
    """An incident whose first message was posted, and an update whose attempt was cut short."""
    await seed(db, [("slack", bot.fake.team, "C0001")])
    await _drain(db, bot)
    [opened] = outbox_rows(db)
    store = await Store.open(db, Catalog((ACME,)))
    try:
        [incident] = await store.open_incidents()
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        verdict = Verdict("acme", "Acme", at, Category.DOWN, Message("raw", text="still down"))
        spec = alert_spec("update", ACME, verdict, category="down", opened_at=at, at=at)
        await store.write_incidents(
            [IncidentWrite("update", "acme", "down", to_epoch(at), {}, incident.id, spec)]
        )
        [update] = [r for r in outbox_rows(db) if r.kind.startswith("update")]
        await store.alert_sending(update.id, int(time.time()))
    finally:
        await store.close()
    if reply_landed:
        await bot.adapter.send(
            "C0001", alert("update"), key=update.key, thread_of=opened.message_id
        )
    return opened.message_id, update.id


async def test_an_edit_refused_before_the_look_keeps_the_update_in_doubt(
    tmp_path: Path, bot: SlackBot
) -> None:
    db = tmp_path / "outbox.db"
    first, _ = await _update_in_doubt(db, bot, reply_landed=True)
    bot.fake.script("chat.update", Scripted.rate_limited(4))  # over 3 s: back to the outbox
    await _drain(db, bot)
    replies = [m for m in bot.fake.posted if m["thread_ts"] == first]
    assert len(replies) == 1  # found in the thread on the retry, not posted again
    assert bot.fake.calls_to("conversations.replies")


async def test_an_update_whose_first_message_is_gone_is_posted_anew(
    tmp_path: Path, bot: SlackBot
) -> None:
    db = tmp_path / "outbox.db"
    await _update_in_doubt(db, bot, reply_landed=False)
    bot.fake.script("chat.update", Scripted.error("message_not_found"))
    await _drain(db, bot)
    [update] = [r for r in outbox_rows(db) if r.kind.startswith("update")]
    assert update.state == "sent"  # not a dead letter
    [posted] = [m for m in bot.fake.posted if m["ts"] == update.message_id]
    assert posted["thread_ts"] is None  # a new message in the channel, no thread to join


async def test_a_join_that_fails_for_now_keeps_the_alert_in_doubt(bot: SlackBot) -> None:
    await bot.adapter.send("C0007", alert(), key="outbox-7")
    bot.fake.script("conversations.join", Scripted.rate_limited(10))
    with pytest.raises(DeliveryError) as raised:
        await bot.adapter.find("C0007", "outbox-7", since=int(time.time()))
    # Not "not there" (which would post it again): a retry after Retry-After, still looking.
    assert raised.value.retry_after == 10.0 and not raised.value.permanent

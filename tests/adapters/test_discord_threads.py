"""An incident's updates on Discord: in a thread under its first message, else replies to it.

Against the local Discord (tests/fakes/discord_fake.py), which starts threads as Discord does
(the thread takes the message's id; a second start is refused with 160004) and refuses them
where Discord would: in a DM (50003) and without the thread permissions (50013).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import discord_payloads as p
from fakes.discord_fake import FakeDiscord
from fakes.discord_harness import Harness, running
from fakes.seeding import seed_user_reports

from bot.adapters.base import DeliveryError, Sent
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind


def alert(title: str) -> Reply:
    return Reply(ReplyKind.INFO, title=Message("raw", text=title), text=Message("help.intro"))


def thread_starts(h: Harness) -> list[int]:
    return [r.status for r in h.fake.requests if r.path.endswith("/threads")]


def references(h: Harness, channel: str) -> list[dict[str, Any]]:
    posts = [
        r
        for r in h.fake.requests
        if r.method == "POST" and r.path.endswith(f"/channels/{channel}/messages")
    ]
    return [r.body["message_reference"] for r in posts if r.body and "message_reference" in r.body]


async def test_updates_go_into_one_thread_named_after_the_first_update(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        first = await h.adapter.send(channel, alert("🔴 Acme: down"), key="open")
        one = await h.adapter.send(
            channel, alert("🟠 Acme: down (update)"), key="u1", thread_of=first.message_id
        )
        two = await h.adapter.send(
            channel, alert("🟠 Acme: down (update)"), key="u2", thread_of=first.message_id
        )
        thread = h.fake.threads[first.message_id]
        assert thread["parent_id"] == channel and thread["name"] == "🟠 Acme: down (update)"
        assert h.fake.channel_messages[first.message_id] == [one.message_id, two.message_id]
        assert h.fake.channel_messages[channel] == [first.message_id]  # one message in channel
        assert thread_starts(h) == [201]  # started once, then remembered
        assert one.channel == channel  # the incident's channel, for the outbox's records


async def test_after_a_restart_the_existing_thread_is_used(tmp_path: Path) -> None:
    fake = await FakeDiscord().start()
    try:
        channel = p.snowflake()
        async with running(tmp_path, fake=fake) as h:
            first = await h.adapter.send(channel, alert("🔴 Acme: down"), key="open")
            await h.adapter.send(channel, alert("update 1"), key="u1", thread_of=first.message_id)
        async with running(tmp_path / "again", fake=fake) as h:
            later = await h.adapter.send(
                channel, alert("update 2"), key="u2", thread_of=first.message_id
            )
            assert thread_starts(h) == [201, 400]  # 160004: already there, so it is used
            assert fake.channel_messages[first.message_id][-1] == later.message_id
            assert len(fake.threads) == 1 and references(h, channel) == []
    finally:
        await fake.close()


@pytest.mark.parametrize("where", ["no permission", "dm"])
async def test_without_threads_an_update_replies_to_the_first_message(
    tmp_path: Path, where: str
) -> None:
    async with running(tmp_path) as h:
        channel = h.fake.dm_channel_id if where == "dm" else p.snowflake()
        if where == "no permission":
            h.fake.threadless_channels.add(channel)
        first = await h.adapter.send(channel, alert("🔴 Acme: down"), key="open")
        for n in (1, 2):
            await h.adapter.send(
                channel, alert(f"update {n}"), key=f"u{n}", thread_of=first.message_id
            )
        assert h.fake.threads == {}
        assert len(h.fake.channel_messages[channel]) == 3
        refs = references(h, channel)
        assert [str(r["message_id"]) for r in refs] == [first.message_id] * 2
        assert all(r["fail_if_not_exists"] is False for r in refs)
        assert len(thread_starts(h)) == 1  # refused once, not asked again for each update


async def test_a_thread_that_refuses_messages_falls_back_to_a_reply(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        first = await h.adapter.send(channel, alert("🔴 Acme: down"), key="open")
        await h.adapter.send(channel, alert("update 1"), key="u1", thread_of=first.message_id)
        h.fake.forbidden_channels.add(first.message_id)  # e.g. locked by a moderator
        later = await h.adapter.send(
            channel, alert("update 2"), key="u2", thread_of=first.message_id
        )
        assert h.fake.channel_messages[channel] == [first.message_id, later.message_id]
        assert [str(r["message_id"]) for r in references(h, channel)] == [first.message_id]


async def test_a_thread_start_failing_for_now_is_retried_by_the_outbox(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        first = await h.adapter.send(channel, alert("🔴 Acme: down"), key="open")
        path = f"/channels/{channel}/messages/{first.message_id}/threads"
        h.fake.fail_next("POST", path, status=503, body={"message": "unavailable"})
        with pytest.raises(DeliveryError) as raised:
            await h.adapter.send(channel, alert("update"), key="u1", thread_of=first.message_id)
        assert not raised.value.permanent  # no reply in the channel instead: try again later
        assert h.fake.channel_messages[channel] == [first.message_id]
        again = await h.adapter.send(channel, alert("update"), key="u1", thread_of=first.message_id)
        assert h.fake.channel_messages[first.message_id] == [again.message_id]
        assert isinstance(again, Sent)


async def test_the_reply_instead_of_a_thread_carries_the_whole_chart(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await seed_user_reports(h.store)
        verdict = await h.router.dispatch(Invocation("isitdown", {"service": "twitter"}))
        assert verdict.chart is not None
        channel = p.snowflake()
        first = await h.adapter.send(channel, alert("🔴 Twitter: down"), key="open")
        await h.adapter.send(channel, alert("update 1"), key="u1", thread_of=first.message_id)
        h.fake.forbidden_channels.add(first.message_id)  # the thread refuses the next one
        later = await h.adapter.send(channel, verdict, key="u2", thread_of=first.message_id)
        (name, data), *_ = h.fake.messages[later.message_id]["files"]
        assert name == "chart.png" and data.startswith(b"\x89PNG") and len(data) > 1000


async def test_a_message_the_thread_refuses_for_itself_is_not_moved(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        first = await h.adapter.send(channel, alert("🔴 Acme: down"), key="open")
        await h.adapter.send(channel, alert("update 1"), key="u1", thread_of=first.message_id)
        body = {"message": "Invalid Form Body", "code": 50035}
        h.fake.fail_next("POST", f"/channels/{first.message_id}/messages", status=400, body=body)
        with pytest.raises(DeliveryError) as raised:
            await h.adapter.send(channel, alert("update 2"), key="u2", thread_of=first.message_id)
        assert raised.value.permanent  # the message is wrong; a reply would be refused too
        assert h.fake.channel_messages[channel] == [first.message_id]

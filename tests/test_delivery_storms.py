"""429 and 5xx storms through the fake platforms: the real dispatcher, the real senders.

The outbox (bot/outbox.py) drains a real store through the real Discord adapter (discord.py) and
the real Slack adapter (slack-sdk), against the local fakes; only the platforms are fake. The
policy's backoffs are short so a storm passes in seconds. What is asserted is what a channel
sees: every alert once (Discord's nonce makes a resend harmless; Slack's failed calls created
nothing), nothing sent to a rate-limited route before its Retry-After, the failures recorded
on the outbox row, one platform's storm never holding up the other, and rows that outlive
``max_age`` listed as dead letters rather than dropped.

Who honours a Retry-After depends on its length: discord.py waits out a route 429 of up to 30 s
itself and slack-sdk (bot/adapters/slack/client.py) one of up to 3 s; longer ones, and Discord
429s from Cloudflare (no ``Via`` header), come back as ``DeliveryError(retry_after=...)`` and the
dispatcher must not claim the row again before then.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from pathlib import Path

from fakes.delivery_kill import (
    FAST_POLICY,
    OutboxEntry,
    dispatching,
    outbox_rows,
    seed,
    until,
    waiting,
)
from fakes.discord_fake import FakeDiscord, Request
from fakes.discord_harness import running
from fakes.slack import Call, FakeSlack, Scripted
from fakes.slack_harness import start_bot

from bot.adapters.base import Sender
from bot.outbox import DeliveryPolicy

POLICY = FAST_POLICY
WAIT = 60.0  # generous: the machine is shared; every wait ends on its condition, not on time


async def drain_slack_storm(
    tmp_path: Path, channels: list[str], storm: list[Scripted]
) -> FakeSlack:
    """The local Slack answering chat.postMessage with ``storm`` first; the outbox drained of one
    alert per channel; the (closed) local Slack returned for its records."""
    fake = await FakeSlack().start()
    fake.script("chat.postMessage", *storm)
    bot = await start_bot(tmp_path, fake, mode="socket")
    try:
        await seed(tmp_path / "outbox.db", [("slack", fake.team, c) for c in channels])
        async with dispatching(tmp_path / "outbox.db", {"slack": bot.adapter}):
            await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
    finally:
        await bot.close()
        await fake.close()
    return fake


def discord_channels(n: int) -> list[str]:
    return [str(10**17 + i) for i in range(n)]


def slack_channels(n: int) -> list[str]:
    return [f"C{i:08d}" for i in range(n)]


def posts(fake: FakeDiscord, channel: str) -> list[Request]:
    """The message creations the bot sent to ``channel``, in order of arrival."""
    path = f"/api/v10/channels/{channel}/messages"
    return [r for r in fake.requests if r.method == "POST" and r.path == path]


def early(arrivals: Sequence[tuple[float, float | None]]) -> list[float]:
    """How much too soon each request after a 429 came, on one route.

    ``arrivals``: (arrival time, Retry-After if that request was answered 429) in order.
    """
    return [
        round(at + retry_after - later, 3)
        for (at, retry_after), (later, _) in pairwise(arrivals)
        if retry_after is not None and later < at + retry_after
    ]


class RetryAfterIgnored(AssertionError):
    """A request reached a route before the Retry-After of the 429 just before it was over."""


def assert_waited(routes: Mapping[str, Sequence[tuple[float, float | None]]]) -> None:
    """Every route's requests after a 429 came no sooner than its Retry-After allowed."""
    too_soon = {route: late for route, arrivals in routes.items() if (late := early(arrivals))}
    if too_soon:
        raise RetryAfterIgnored(f"retried before Retry-After (seconds too soon): {too_soon}")


def by_channel(rows: Iterable[OutboxEntry], platform: str) -> dict[str, OutboxEntry]:
    return {r.channel: r for r in rows if r.platform == platform}


def slack_posts(fake: FakeSlack) -> list[Call]:
    return fake.calls_to("chat.postMessage")


def slack_answers(fake: FakeSlack, storm: Sequence[Scripted]) -> list[tuple[Call, Scripted | None]]:
    """Each chat.postMessage with the scripted answer it got (None: the normal answer).

    The fake answers a method's calls from its script in arrival order, so the first
    ``len(storm)`` calls got the storm, in order.
    """
    calls = slack_posts(fake)
    return [(call, storm[i] if i < len(storm) else None) for i, call in enumerate(calls)]


def retry_after(answer: Scripted | None) -> float | None:
    if answer is None or answer.status != 429:
        return None
    return float(answer.headers["Retry-After"])


# ---- Discord ---------------------------------------------------------------------------------


async def test_discord_route_429_storm_waits_out_each_retry_after_and_sends_once(
    tmp_path: Path,
) -> None:
    channels = discord_channels(30)
    stormy = {c: (0.5, 1.0, 1.5)[i % 3] for i, c in enumerate(channels) if i % 3 != 2 or i < 9}
    async with running(tmp_path) as h:
        await seed(tmp_path / "outbox.db", [("discord", h.fake.guild_id, c) for c in channels])
        for channel, wait in stormy.items():
            h.fake.fail_next("POST", f"/channels/{channel}/messages", retry_after=wait, times=2)
        async with dispatching(tmp_path / "outbox.db", {"discord": h.adapter}):
            await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
    fake = h.fake
    assert fake.route_429s == 2 * len(stormy)  # the storm happened, all of it
    assert {c: len(fake.channel_messages[c]) for c in channels} == dict.fromkeys(channels, 1)
    for channel in channels:
        assert [r.status for r in posts(fake, channel)] == (
            [429, 429, 200] if channel in stormy else [200]
        )
    # discord.py waits these out inside the request (they are under 30 s).
    assert_waited(
        {
            c: [(r.at, wait if r.status == 429 else None) for r in posts(fake, c)]
            for c, wait in stormy.items()
        }
    )
    rows = by_channel(outbox_rows(tmp_path / "outbox.db"), "discord")
    assert {r.state for r in rows.values()} == {"sent"}
    assert all(r.message_id == fake.channel_messages[c][0] for c, r in rows.items())
    assert fake.global_429s == 0


async def test_discord_cloudflare_429s_are_waited_out_by_the_outbox(tmp_path: Path) -> None:
    """Cloudflare's 429s (no ``Via``) are not retried by discord.py: the outbox honours them."""
    channels = discord_channels(12)
    waits = {c: (1.5, 2.0, 2.5)[i % 3] for i, c in enumerate(channels)}
    async with running(tmp_path) as h:
        await seed(tmp_path / "outbox.db", [("discord", h.fake.guild_id, c) for c in channels])
        for channel, wait in waits.items():
            h.fake.fail_next(
                "POST", f"/channels/{channel}/messages", retry_after=wait, cloudflare=True
            )
        async with dispatching(tmp_path / "outbox.db", {"discord": h.adapter}):
            await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
    fake = h.fake
    assert {c: len(fake.channel_messages[c]) for c in channels} == dict.fromkeys(channels, 1)
    rows = by_channel(outbox_rows(tmp_path / "outbox.db"), "discord")
    assert {(r.state, r.attempts) for r in rows.values()} == {("sent", 2)}
    assert all([r.status for r in posts(fake, c)] == [429, 200] for c in channels)
    assert_waited(
        {
            c: [(r.at, wait if r.status == 429 else None) for r in posts(fake, c)]
            for c, wait in waits.items()
        }
    )


async def test_discord_5xx_storm_is_retried_recorded_and_sent_once(tmp_path: Path) -> None:
    channels = discord_channels(24)
    # 500 and 502: discord.py retries them itself after 1 s; 503: the outbox retries the row.
    failures = {c: [(500,), (502,), (503, 503)][i % 3] for i, c in enumerate(channels)}
    async with running(tmp_path) as h:
        await seed(tmp_path / "outbox.db", [("discord", h.fake.guild_id, c) for c in channels])
        for channel, statuses in failures.items():
            for status in statuses:
                h.fake.fail_next(
                    "POST", f"/channels/{channel}/messages", status=status, body={"message": "x"}
                )
        async with dispatching(tmp_path / "outbox.db", {"discord": h.adapter}):
            await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
    fake = h.fake
    assert {c: len(fake.channel_messages[c]) for c in channels} == dict.fromkeys(channels, 1)
    rows = by_channel(outbox_rows(tmp_path / "outbox.db"), "discord")
    for channel, statuses in failures.items():
        assert [r.status for r in posts(fake, channel)] == [*statuses, 200]
        row = rows[channel]
        assert row.state == "sent" and row.message_id == fake.channel_messages[channel][0]
        if statuses[0] == 503:
            # Two failed attempts on the row, then the send: each one recorded.
            assert (row.attempts, row.last_error) == (
                3,
                f"send channel={channel}: Discord error 503",
            )
        else:
            assert (row.attempts, row.last_error) == (1, "")  # absorbed inside the request


async def test_discord_5xx_after_the_message_was_created_does_not_duplicate_it(
    tmp_path: Path,
) -> None:
    """Discord wrote the message but the answer was a 5xx: the resend carries the same nonce."""
    channels = discord_channels(16)
    # 502: discord.py resends within the request; 503: the outbox resends the row later.
    status_of = {c: (502, 503)[i % 2] for i, c in enumerate(channels)}
    async with running(tmp_path) as h:
        await seed(tmp_path / "outbox.db", [("discord", h.fake.guild_id, c) for c in channels])
        for channel, status in status_of.items():
            h.fake.fail_next(
                "POST", f"/channels/{channel}/messages", status=status, created=True, body={}
            )
        async with dispatching(tmp_path / "outbox.db", {"discord": h.adapter}):
            await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
    fake = h.fake
    rows = by_channel(outbox_rows(tmp_path / "outbox.db"), "discord")
    for channel, status in status_of.items():
        sent = posts(fake, channel)
        assert [r.status for r in sent] == [status, 200]
        assert len(fake.channel_messages[channel]) == 1  # the resend was the same message
        assert sent[0].body["nonce"] == sent[1].body["nonce"]
        assert all(r.body["enforce_nonce"] is True for r in sent)
        row = rows[channel]
        assert row.state == "sent" and row.message_id == fake.channel_messages[channel][0]
        assert row.attempts == (2 if status == 503 else 1)


# ---- Slack -----------------------------------------------------------------------------------


async def test_slack_429_and_5xx_storm_honours_retry_after_and_delivers_once(
    tmp_path: Path,
) -> None:
    """Short Retry-Afters are waited out by slack-sdk, 5xx and long ones by the outbox."""
    channels = slack_channels(16)
    storm = [
        Scripted.rate_limited(1),
        Scripted(503, {"ok": False, "error": "service_unavailable"}),
        Scripted.rate_limited(2),
        Scripted(500, {"ok": False, "error": "internal_error"}),
        Scripted(502, {"ok": False, "error": "bad_gateway"}),
    ] * 8
    fake = await drain_slack_storm(tmp_path, channels, storm)
    answered = slack_answers(fake, storm)
    assert len(answered) > len(storm)  # the whole storm was used up
    delivered = [str(call.args["channel"]) for call, answer in answered if answer is None]
    assert sorted(delivered) == channels  # each channel once: failed calls post nothing
    rows = by_channel(outbox_rows(tmp_path / "outbox.db"), "slack")
    assert {r.state for r in rows.values()} == {"sent"}
    assert sum(r.attempts for r in rows.values()) > len(channels)  # failures were recorded
    assert fake.route_429s == 0  # and our own limiter kept under Slack's per-channel limit
    assert_waited(
        {
            ch: [(c.at, retry_after(a)) for c, a in answered if c.args["channel"] == ch]
            for ch in channels
        }
    )


async def test_slack_long_retry_after_is_honoured_by_the_outbox(tmp_path: Path) -> None:
    """Retry-After beyond what slack-sdk waits for (3 s): the row waits in the outbox."""
    channels = slack_channels(12)
    storm = [Scripted.rate_limited(4)] * len(channels)
    fake = await drain_slack_storm(tmp_path, channels, storm)
    answered = slack_answers(fake, storm)
    delivered = [str(call.args["channel"]) for call, answer in answered if answer is None]
    assert sorted(delivered) == channels
    rows = by_channel(outbox_rows(tmp_path / "outbox.db"), "slack")
    assert {(r.state, r.attempts) for r in rows.values()} == {("sent", 2)}
    assert_waited(
        {
            ch: [(c.at, retry_after(a)) for c, a in answered if c.args["channel"] == ch]
            for ch in channels
        }
    )


# ---- both --------------------------------------------------------------------------------------


async def test_a_slack_storm_does_not_delay_discord(tmp_path: Path) -> None:
    slack = await FakeSlack().start()
    # More stuck Slack channels than channels_in_flight (25): a gate shared by the platforms
    # would be full of Slack's and hold Discord back.
    slack_ids, discord_ids = slack_channels(30), discord_channels(30)
    # Every Slack channel's first call is told to wait 3 s, which slack-sdk does inside the
    # call: Slack's deliveries are stuck in flight for 3 s and more.
    storm = [Scripted.rate_limited(3)] * len(slack_ids)
    slack.script("chat.postMessage", *storm)
    bot = await start_bot(tmp_path, slack, mode="socket")
    try:
        async with running(tmp_path) as h:
            await seed(
                tmp_path / "outbox.db",
                [("slack", slack.team, c) for c in slack_ids]
                + [("discord", h.fake.guild_id, c) for c in discord_ids],
            )
            senders: dict[str, Sender] = {"slack": bot.adapter, "discord": h.adapter}
            async with dispatching(tmp_path / "outbox.db", senders):
                await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
    finally:
        await bot.close()
        await slack.close()
    fake = h.fake
    assert {c: len(fake.channel_messages[c]) for c in discord_ids} == dict.fromkeys(discord_ids, 1)
    discord_done = max(posts(fake, c)[-1].at for c in discord_ids)
    answered = slack_answers(slack, storm)
    first_retry = min(call.at for call, answer in answered if answer is None)
    # Every Discord alert was in before Slack's storm let a single message through.
    assert discord_done < first_retry
    assert sorted(str(c.args["channel"]) for c, a in answered if a is None) == slack_ids
    assert {r.state for r in outbox_rows(tmp_path / "outbox.db")} == {"sent"}


async def test_a_storm_longer_than_max_age_ends_in_dead_letters_not_silence(
    tmp_path: Path,
) -> None:
    slack = await FakeSlack().start()
    slack_ids, discord_ids = slack_channels(6), discord_channels(12)
    down = set(discord_ids[::2])  # half of Discord's channels fail for good; all of Slack's
    slack.script("chat.postMessage", *[Scripted(503, {"ok": False, "error": "x"})] * 500)
    policy = DeliveryPolicy(poll_seconds=0.1, backoff_min=0.5, backoff_max=1.0, max_age_seconds=3)
    before = time.monotonic()
    bot = await start_bot(tmp_path, slack, mode="socket")
    try:
        async with running(tmp_path) as h:
            for channel in down:
                h.fake.fail_next("POST", f"/channels/{channel}/messages", status=503, times=500)
            await seed(
                tmp_path / "outbox.db",
                [("slack", slack.team, c) for c in slack_ids]
                + [("discord", h.fake.guild_id, c) for c in discord_ids],
            )
            senders: dict[str, Sender] = {"slack": bot.adapter, "discord": h.adapter}
            async with dispatching(tmp_path / "outbox.db", senders, policy) as store:
                await until(lambda: waiting(tmp_path / "outbox.db") == 0, WAIT)
                dead_discord = await store.dead_letters("discord", h.fake.guild_id, 0)
                dead_slack = await store.dead_letters("slack", slack.team, 0)
    finally:
        await bot.close()
        await slack.close()
    fake = h.fake
    rows = outbox_rows(tmp_path / "outbox.db")
    # Nothing silently dropped: each row is sent, or dead and listed with why.
    assert {(r.platform, r.channel): r.state for r in rows} == {
        **{("slack", c): "dead" for c in slack_ids},
        **{("discord", c): "dead" if c in down else "sent" for c in discord_ids},
    }
    assert sorted(c for c, *_ in dead_discord) == sorted(down)
    assert sorted(c for c, *_ in dead_slack) == slack_ids
    assert all(kind == "open" and "503" in error for _, kind, error, _ in dead_discord + dead_slack)
    # Retried until max_age, then given up: several tries, the last one at least max_age after
    # the row was queued (created_at is whole seconds, hence the 1), none after it was dead.
    assert all(r.attempts >= 2 for r in rows if r.state == "dead")
    for channel in discord_ids:
        if channel in down:
            assert channel not in fake.channel_messages
            tries = posts(fake, channel)
            assert len(tries) == by_channel(rows, "discord")[channel].attempts
            assert tries[-1].at - before >= policy.max_age_seconds - 1
        else:
            assert len(fake.channel_messages[channel]) == 1
    assert len(slack_posts(slack)) == sum(r.attempts for r in rows if r.platform == "slack")

"""The Slack sender stays inside Slack's limits: per workspace and method, and per channel.

Against the local Slack enforcing them (tests/fakes/slack.py): a burst of alerts to many channels
must draw no 429 for the workspace, and several alerts to one channel no 429 for the channel. The
same burst through a sender without the workspace limiter shows the local Slack does refuse it,
so the first test would fail if the limiter stopped working.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from fakes.slack import FakeSlack

from bot.adapters.ratelimit import GlobalLimiter
from bot.adapters.slack.client import web_client
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.uploads import ChartUploader
from bot.i18n import Message
from bot.reply import Reply, ReplyKind

LIMIT = 10  # calls per second per method in the local Slack, small to keep the test short


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack(global_limit=LIMIT).start()
    try:
        yield slack
    finally:
        await slack.close()


def _sender(fake: FakeSlack, workspace: GlobalLimiter) -> SlackSender:
    client = web_client(fake.bot_token, fake.api_base)
    return SlackSender(client, uploader=ChartUploader(client), workspace=workspace)


def _alert(n: int) -> Reply:
    return Reply(ReplyKind.INFO, title=Message("raw", text=f"alert {n}"))


async def test_a_burst_to_many_channels_draws_no_workspace_429(fake: FakeSlack) -> None:
    sender = _sender(fake, GlobalLimiter(LIMIT))
    channels = [f"C{i:04d}" for i in range(25)]
    await asyncio.gather(*(sender.send(c, _alert(i), key=f"k{i}") for i, c in enumerate(channels)))
    assert fake.global_429s == 0
    assert all(len(fake.channel_messages[c]) == 1 for c in channels)
    arrivals = sorted(call.at for c in channels for call in fake.channel_messages[c])
    # 25 under 10 per second: the 11th no sooner than a second after the first, and so on.
    assert arrivals[LIMIT] - arrivals[0] >= 1.0 and arrivals[2 * LIMIT] - arrivals[0] >= 2.0


async def test_without_the_workspace_limiter_the_same_burst_is_refused(fake: FakeSlack) -> None:
    sender = _sender(fake, GlobalLimiter(1000))
    channels = [f"C{i:04d}" for i in range(25)]
    await asyncio.gather(*(sender.send(c, _alert(i), key=f"k{i}") for i, c in enumerate(channels)))
    assert fake.global_429s > 0  # slack-sdk's short retry then delivered them late


async def test_alerts_to_one_channel_are_paced_without_a_channel_429(fake: FakeSlack) -> None:
    sender = _sender(fake, GlobalLimiter(LIMIT))
    for n in range(5):
        await sender.send("C0001", _alert(n), key=f"one-{n}")
    assert fake.route_429s == 0
    times = [call.at for call in fake.channel_messages["C0001"]]
    assert len(times) == 5
    # A burst of 3 passes, then about one a second.
    assert times[3] - times[0] >= 0.9 and times[4] - times[0] >= 1.9

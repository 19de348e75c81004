"""kill -9 during a drain, again and again: every alert arrives, none twice, the database intact.

The bot is a real subprocess (``python -m bot run --no-console``) talking to the fake Discord in
this process; 240 channels are subscribed to one incident; the bot is killed with SIGKILL each
time a few dozen more messages have arrived, then started again, until the outbox is empty.
Discord removes duplicates by nonce (``enforce_nonce``), so a resend after a kill is harmless only
if the bot sends the same nonce for the same outbox row: that is what this proves.
(The Slack twin, without idempotency keys, is tests/test_delivery_kill_slack.py.)
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from fakes.delivery_kill import drain_with_kills, integrity, outbox_rows, seed, write_config
from fakes.discord_fake import FakeDiscord

CHANNELS = 240
KILLS = 4
TOKEN_ENV = "OUTAGEBOT_TEST_DISCORD_TOKEN"


def _discord_section(fake: FakeDiscord) -> list[str]:
    return [
        "[discord]",
        "enabled = true",
        f'token_env = "{TOKEN_ENV}"',
        f'guild_ids = ["{fake.guild_id}"]',
        f'api_base = "{fake.api_base}"',
        f'gateway_url = "{fake.gateway_url}"',
    ]


async def test_kill_9_during_drains_delivers_everything_once(tmp_path: Path) -> None:
    fake = await FakeDiscord().start()
    db, config = tmp_path / "kill.db", tmp_path / "kill.toml"
    write_config(config, db, _discord_section(fake))
    channels = [str(10**17 + i) for i in range(CHANNELS)]
    await seed(db, [("discord", fake.guild_id, channel) for channel in channels])
    env = {**os.environ, TOKEN_ENV: fake.token}

    def arrived() -> int:
        return sum(len(fake.channel_messages.get(c, [])) for c in channels)

    try:
        kills = await drain_with_kills(
            config=config,
            db=db,
            env=env,
            fake=fake,
            arrived=arrived,
            total=CHANNELS,
            kills=KILLS,
            step=40,
            logs=tmp_path,
        )
    finally:
        await fake.close()
    per_channel = Counter({c: len(fake.channel_messages.get(c, [])) for c in channels})
    assert kills == KILLS
    assert set(per_channel.values()) == {1}  # every channel got its alert exactly once
    assert integrity(db) == "ok"
    assert [row.state for row in outbox_rows(db)] == ["sent"] * CHANNELS
    assert fake.global_429s == 0

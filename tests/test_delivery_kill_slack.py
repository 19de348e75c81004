"""kill -9 during a Slack drain, again and again: every alert arrives, the database intact.

The bot is a real subprocess (``python -m bot run --no-console``, Slack in Socket Mode) talking
to the fake Slack in this process; 160 channels are subscribed to one incident; the bot is
killed with SIGKILL each time 30 more alerts have arrived, then started again, until the outbox
is empty. Slack has no idempotency key, so a message that reached Slack but was not yet recorded
as sent would be posted again after the restart; the outbox marks each attempt and the restart
looks for the message by the outbox key in its metadata (``{"event_type": "outagebot_delivery",
"event_payload": {"key": ...}}``) instead. The bound asserted is at most one extra copy per kill.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from fakes.delivery_kill import drain_with_kills, integrity, outbox_rows, seed, write_config
from fakes.slack import Call, FakeSlack

CHANNELS = 160
KILLS = 4
BOT_TOKEN_ENV = "OUTAGEBOT_TEST_SLACK_BOT"
APP_TOKEN_ENV = "OUTAGEBOT_TEST_SLACK_APP"


def _slack_section(fake: FakeSlack) -> list[str]:
    return [
        "[slack]",
        "enabled = true",
        'mode = "socket"',
        f'api_base = "{fake.api_base}"',
        f'bot_token_env = "{BOT_TOKEN_ENV}"',
        f'app_token_env = "{APP_TOKEN_ENV}"',
    ]


def _key(call: Call) -> str | None:
    """The outbox key a chat.postMessage carried in its metadata, if any."""
    metadata: Any = call.args.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    if not isinstance(metadata, dict) or metadata.get("event_type") != "outagebot_delivery":
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return key if isinstance(key, str) else None


async def test_kill_9_during_slack_drains_delivers_everything(tmp_path: Path) -> None:
    fake = await FakeSlack().start()
    db, config = tmp_path / "kill.db", tmp_path / "kill.toml"
    write_config(config, db, _slack_section(fake))
    channels = [f"C{i:08d}" for i in range(CHANNELS)]
    await seed(db, [("slack", fake.team, channel) for channel in channels])
    env = {**os.environ, BOT_TOKEN_ENV: fake.bot_token, APP_TOKEN_ENV: fake.app_token}

    def posted() -> list[tuple[str, str | None]]:
        """(channel, key) of every message Slack accepted."""
        return [(ch, _key(c)) for ch, calls in fake.channel_messages.items() for c in calls]

    def arrived() -> int:
        return len({key for _, key in posted() if key is not None})

    try:
        kills = await drain_with_kills(
            config=config,
            db=db,
            env=env,
            fake=fake,
            arrived=arrived,
            total=CHANNELS,
            kills=KILLS,
            step=30,
            logs=tmp_path,
        )
    finally:
        await fake.close()
    assert kills == KILLS
    assert fake.socket_connections == KILLS + 1  # every run really served Slack
    rows = outbox_rows(db)
    assert len(rows) == CHANNELS
    assert {row.state for row in rows} == {"sent"}
    copies = Counter(key for _, key in posted())
    assert None not in copies  # every alert carried its outbox key
    # Every (incident, channel, kind) arrived, in its own channel.
    channel_of = {row.key: row.channel for row in rows}
    assert set(copies) == set(channel_of)
    assert all(channel == channel_of[key] for channel, key in posted() if key is not None)
    assert fake.route_429s == 0  # our per-channel limiter kept within Slack's limit
    assert integrity(db) == "ok"
    # No idempotency key on Slack: the outbox marks each attempt and, after a restart, looks
    # for the message by the key in its metadata before sending again. At most one per kill.
    extra = sum(n - 1 for n in copies.values())
    assert extra <= kills, f"{extra} duplicates after {kills} kills: {copies.most_common(5)}"
    # The restarts did look: each run after a kill found messages posted by the one before.
    assert fake.calls_to("conversations.history")

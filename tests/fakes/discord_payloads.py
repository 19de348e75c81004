"""Discord objects as the API sends them, with the fields discord.py 2.7 reads (PROTOCOLS.md).

Pure builders for the fake Discord in discord_fake.py: users, guilds, channels, members, messages
and interactions. Ids are snowflakes as strings, like Discord's JSON.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

# Permission bits (discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
SEND_MESSAGES = 1 << 11
VIEW_CHANNEL = 1 << 10
MEMBER = VIEW_CHANNEL | SEND_MESSAGES

EPHEMERAL = 1 << 6
LOADING = 1 << 7

_DISCORD_EPOCH_MS = 1_420_070_400_000
_counter = itertools.count(1)


def snowflake() -> str:
    """A fresh, increasing snowflake (timestamp bits from now, so discord.py's created_at works)."""
    millis = int(datetime.now(UTC).timestamp() * 1000) - _DISCORD_EPOCH_MS
    return str((millis << 22) | (next(_counter) & 0x3FFFFF))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def text_channel(channel_id: str, guild_id: str, name: str = "general") -> dict[str, Any]:
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def dm_channel(channel_id: str, recipient: dict[str, Any]) -> dict[str, Any]:
    return {"id": channel_id, "type": 1, "recipients": [recipient], "last_message_id": None}


def guild_create(guild_id: str, name: str, channels: list[dict[str, Any]]) -> dict[str, Any]:
    everyone = {
        "id": guild_id,  # @everyone's id is the guild's
        "name": "@everyone",
        "permissions": str(MEMBER),
        "position": 0,
        "color": 0,
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }
    return {
        "id": guild_id,
        "name": name,
        "unavailable": False,
        "member_count": 2,
        "owner_id": "1",
        "roles": [everyone],
        "channels": channels,
        "members": [],
        "emojis": [],
        "stickers": [],
        "features": [],
        "threads": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "large": False,
        "joined_at": now_iso(),
        "preferred_locale": "en-US",
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "premium_tier": 0,
        "nsfw_level": 0,
        "system_channel_flags": 0,
    }


def member(person: dict[str, Any], permissions: int) -> dict[str, Any]:
    return {
        "user": person,
        "roles": [],
        "joined_at": now_iso(),
        "flags": 0,
        "permissions": str(permissions),
        "deaf": False,
        "mute": False,
        "nick": None,
        "avatar": None,
        "pending": False,
        "communication_disabled_until": None,
    }


def message(
    message_id: str,
    channel_id: str,
    author: dict[str, Any],
    body: dict[str, Any],
    *,
    flags: int = 0,
    attachments: list[dict[str, Any]] | None = None,
    kind: int = 0,
) -> dict[str, Any]:
    """A message object built from a create/edit body (content, embeds, components)."""
    return {
        "id": message_id,
        "channel_id": channel_id,
        "author": author,
        "content": body.get("content") or "",
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments or [],
        "embeds": body.get("embeds") or [],
        "components": body.get("components") or [],
        "pinned": False,
        "type": kind,
        "flags": flags,
        "nonce": body.get("nonce"),
    }


def thread(
    thread_id: str, parent_id: str, guild_id: str, owner_id: str, name: str, body: dict[str, Any]
) -> dict[str, Any]:
    """A public thread (type 11) started from message ``thread_id``, which is also its id."""
    return {
        "id": thread_id,
        "type": 11,
        "guild_id": guild_id,
        "parent_id": parent_id,
        "owner_id": owner_id,
        "name": name,
        "last_message_id": None,
        "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
        "message_count": 0,
        "member_count": 1,
        "total_message_sent": 0,
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": body.get("auto_archive_duration") or 4320,
            "archive_timestamp": now_iso(),
            "locked": False,
        },
    }


def error(code: int, text: str, **extra: Any) -> dict[str, Any]:
    return {"message": text, "code": code, **extra}

"""What Slack sends to the bot: signed slash commands, button clicks and events, as raw bodies.

Shared by the Slack adapter tests and benchmarks/slack_bench.py. Signing follows Slack's v0
scheme: hex HMAC-SHA256 of ``v0:{timestamp}:{raw body}`` with the signing secret.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

__all__ = ["action_body", "event_body", "sign", "signed_headers", "slash_body"]

_ids = itertools.count(1)


def sign(secret: str, timestamp: str, body: str) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return f"v0={digest.hexdigest()}"


def signed_headers(
    secret: str, body: str, *, timestamp: str | None = None, content_type: str | None = None
) -> dict[str, str]:
    stamp = timestamp if timestamp is not None else str(int(time.time()))
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(secret, stamp, body),
        "Content-Type": content_type or "application/x-www-form-urlencoded",
    }


def slash_body(
    command: str,
    text: str,
    *,
    response_url: str,
    user: str = "U0001",
    team: str = "T0001",
    channel: str = "C0001",
    trigger_id: str | None = None,
) -> str:
    """A slash command's form body, as Slack posts it."""
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"trigger.{next(_ids)}.{time.time_ns()}",
        }
    )


def action_payload(
    action: dict[str, Any],
    *,
    response_url: str,
    user: str = "U0001",
    team: str = "T0001",
    channel: str = "C0001",
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """A block_actions payload for one clicked element (a button or a select)."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0001",
        "token": "deprecated-verification-token",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": channel},
        "trigger_id": trigger_id or f"trigger.{next(_ids)}.{time.time_ns()}",
        "team": {"id": team, "domain": "fake"},
        "channel": {"id": channel, "name": "general"},
        "message": {"type": "message", "ts": "1.000001", "text": "", "blocks": []},
        "response_url": response_url,
        "actions": [{"block_id": "b1", "action_ts": str(time.time()), **action}],
    }


def action_body(action: dict[str, Any], **kwargs: Any) -> str:
    """A button click's form body: ``payload=<JSON>``."""
    return urlencode({"payload": json.dumps(action_payload(action, **kwargs))})


def event_body(event: dict[str, Any], *, team: str = "T0001") -> str:
    """An Events API callback (JSON body)."""
    return json.dumps(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{next(_ids):08d}",
            "event_time": int(time.time()),
        }
    )

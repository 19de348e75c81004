"""The Slack app manifest, generated from the command registry (``outagebot slack-manifest``).

Paste it into https://api.slack.com/apps -> Create New App -> From a manifest. It declares every
slash command in COMMANDS (subcommands such as "service add" share ``/service``), the bot scopes
the adapter uses, interactivity for the buttons, the App Home tab, and Socket Mode or the
request URL for HTTP mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from bot.adapters.slack.parse import CommandGroup, group_specs
from bot.i18n import text
from bot.spec import CommandSpec

__all__ = ["BOT_SCOPES", "build_manifest"]

# What the adapter calls, and why: commands (slash commands), chat:write (replies that outlive
# the response_url, alerts), chat:write.public (alerts into channels the bot has not joined),
# files:write (the chart image), users:read (users.info: admin flags, locale, timezone), and the
# four *:history scopes with channels:join: after a crash, the outbox looks in a channel for the
# alert it may have posted just before (Slack has no idempotency key), joining a public channel
# it posts to without being a member (history is for members), so a restart does not post it
# twice. The bot reads nothing else; without them a crash may repeat the alerts in flight.
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "files:write",
    "users:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "channels:join",
)
BOT_EVENTS = ("app_home_opened",)
# Slack's limits for a slash command's description and usage hint.
_DESCRIPTION_MAX = 100
_HINT_MAX = 1000


def build_manifest(
    specs: Mapping[str, CommandSpec],
    *,
    mode: Literal["socket", "http"],
    request_url: str | None = None,
    name: str = "outagebot",
) -> dict[str, Any]:
    """The manifest as a dict (``json.dumps`` it). HTTP mode needs the public ``request_url``."""
    http = mode == "http"
    if http and not request_url:
        raise ValueError("HTTP mode needs the public URL of POST /slack/events")
    commands = [
        _command(group, request_url if http else None) for group in group_specs(specs).values()
    ]
    settings: dict[str, Any] = {
        "event_subscriptions": {"bot_events": list(BOT_EVENTS)},
        "interactivity": {"is_enabled": True},
        "org_deploy_enabled": False,
        "socket_mode_enabled": not http,
        "token_rotation_enabled": False,
    }
    if http:
        settings["event_subscriptions"]["request_url"] = request_url
        settings["interactivity"]["request_url"] = request_url
    return {
        "display_information": {
            "name": name,
            # No long_description: Slack rejects one shorter than 175 characters.
            "description": _clip(text("help.title"), 140),
        },
        "features": {
            "app_home": {
                "home_tab_enabled": True,
                "messages_tab_enabled": False,
                "messages_tab_read_only_enabled": False,
            },
            "bot_user": {"display_name": name, "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": settings,
    }


def _command(group: CommandGroup, url: str | None) -> dict[str, Any]:
    if group.spec is not None:
        description = text(group.spec.description)
    else:
        # "/service": what each subcommand does, as far as Slack's 100 characters allow.
        description = "; ".join(
            f"{sub}: {text(spec.description)}" for sub, spec in sorted(group.subcommands.items())
        )
    prefix = f"/{group.name}"
    hints = [s.usage().removeprefix(prefix).strip() for s in group.specs()]
    command: dict[str, Any] = {
        "command": prefix,
        "description": _clip(description, _DESCRIPTION_MAX),
        # False: Slack sends the text as typed (with &, <, > escaped), not as <@U123|name>.
        "should_escape": False,
    }
    hint = " | ".join(h for h in hints if h)
    if hint:
        command["usage_hint"] = _clip(hint, _HINT_MAX)
    if url:
        command["url"] = url
    return command


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"

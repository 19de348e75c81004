"""Helpers shared by /subscribe, /unsubscribe and /subscriptions: subjects, levels, channels."""

from __future__ import annotations

import re

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, error
from bot.store.alerts import LEVELS

DEFAULT_LEVEL = "regional"
# A Discord channel mention <#123>, a Slack one <#C123|name>, or a bare id.
_MENTION = re.compile(r"^<#([A-Za-z0-9]+)(?:\|[^>]*)?>$")
_BARE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def subject_of(ctx: CommandContext, inv: Invocation, raw: str) -> tuple[str, str] | Reply:
    """("all", ""), ("tag", tag) or ("service", key); an error reply for anything else."""
    word = raw.strip()
    if word.lower() in ("all", "everything", "tout"):
        return "all", ""
    tags = sorted({t for s in ctx.catalog.services for t in s.tags})
    if word.lower() in tags:
        return "tag", word.lower()
    service = ctx.resolver_for(inv).resolve(word)
    if service is not None:
        return "service", service.key
    shown = ", ".join(tags[:3]) or "carriers-us"
    return error("subscribe.bad_subject", value=word[:60], tags=shown)


def subject_text(ctx: CommandContext, inv: Invocation, scope: str, target: str) -> Message | str:
    if scope == "all":
        return Message("subject.all")
    if scope == "tag":
        return Message("subject.tag", tag=target)
    service = ctx.resolver_for(inv).resolve(target) or ctx.resolver.resolve(target)
    return service.name if service is not None else target.rpartition("/")[2]


def level_of(raw: str | None) -> str | Reply:
    if not raw:
        return DEFAULT_LEVEL
    level = raw.strip().lower().replace("-", "_")
    if level not in LEVELS:
        return error("subscribe.bad_level", value=raw[:30])
    return level


def channel_of(inv: Invocation, raw: str | None) -> str | Reply:
    """The channel to (un)subscribe: where the command is typed.

    Naming another channel is refused on chat platforms: the bot cannot tell from an id alone
    that the channel belongs to this server (a direct message could otherwise point alerts at
    any channel the bot can post in). The operator at the console may name any.
    """
    if not raw:
        return inv.channel
    text = raw.strip()
    mention = _MENTION.match(text)
    channel = mention.group(1) if mention else text.lstrip("#")
    if not mention and not _BARE.match(channel):
        return error("subscribe.bad_channel", value=text[:60])
    if channel != inv.channel and inv.platform != "console":
        return error("subscribe.channel_here")
    return channel


def channel_label(inv: Invocation, channel: str) -> str:
    # A Discord mention shows the channel's name and never pings anyone.
    return f"<#{channel}>" if inv.platform == "discord" else f"#{channel}"


def may_change(inv: Invocation) -> Reply | None:
    """Admins subscribe channels; anyone may subscribe a direct message with the bot."""
    if inv.tenant and not inv.is_admin:
        return error("subscribe.admin_only")
    return None

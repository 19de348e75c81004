"""/subscribe <service | tag | all> [level] [channel]: one message per incident in a channel."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from commands._subscriptions import (
    channel_label,
    channel_of,
    level_of,
    may_change,
    subject_of,
    subject_text,
)

SPEC = CommandSpec(
    name="subscribe",
    description="cmd.subscribe",
    params=(
        Param("subject", ParamKind.TEXT, "param.subject", required=True, max_length=100),
        Param("level", ParamKind.TEXT, "param.level", max_length=20),
        Param("channel", ParamKind.TEXT, "param.channel", max_length=100),
    ),
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    refused = may_change(inv)
    if refused is not None:
        return refused
    subject = subject_of(ctx, inv, args.text("subject") or "")
    level = level_of(args.text("level"))
    channel = channel_of(inv, args.text("channel"))
    for checked in (subject, level, channel):
        if isinstance(checked, Reply):
            return checked
    assert isinstance(subject, tuple) and isinstance(level, str) and isinstance(channel, str)
    scope, target = subject
    new = await ctx.store.subscribe(
        inv.platform, inv.tenant, channel, scope, target, level=level, lang=inv.lang, user=inv.user
    )
    if ctx.digests is not None:
        await ctx.digests.sync()  # a new channel gets its digest job
    return Reply(
        ReplyKind.INFO,
        text=Message(
            "subscribe.added" if new else "subscribe.changed",
            channel=channel_label(inv, channel),
            subject=subject_text(ctx, inv, scope, target),
            level=level,
        ),
    )

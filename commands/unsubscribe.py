"""/unsubscribe <service | tag | all> [channel]: stop a channel's alerts about something."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind, error
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from commands._subscriptions import channel_label, channel_of, may_change, subject_of, subject_text

SPEC = CommandSpec(
    name="unsubscribe",
    description="cmd.unsubscribe",
    params=(
        Param("subject", ParamKind.TEXT, "param.subject", required=True, max_length=100),
        Param("channel", ParamKind.TEXT, "param.channel", max_length=100),
    ),
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    refused = may_change(inv)
    if refused is not None:
        return refused
    subject = subject_of(ctx, inv, args.text("subject") or "")
    channel = channel_of(inv, args.text("channel"))
    if isinstance(subject, Reply):
        return subject
    if isinstance(channel, Reply):
        return channel
    scope, target = subject
    params = {
        "channel": channel_label(inv, channel),
        "subject": subject_text(ctx, inv, scope, target),
    }
    if not await ctx.store.unsubscribe(inv.platform, inv.tenant, channel, scope, target):
        return error("subscribe.not_found", **params)
    if ctx.digests is not None:
        await ctx.digests.sync()  # a channel left with no subscriptions loses its digest
    return Reply(ReplyKind.INFO, text=Message("subscribe.removed", **params))

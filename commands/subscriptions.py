"""/subscriptions: this channel's subscriptions; for admins, the whole server's and dead letters."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.model import to_epoch
from bot.reply import Reply, ReplyKind, info
from bot.router import Args
from bot.spec import CommandSpec
from commands._subscriptions import channel_label, subject_text

SPEC = CommandSpec(name="subscriptions", description="cmd.subscriptions")

DEAD_LETTER_DAYS = 7


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    # Admins see the whole server; everyone else this channel (or their DM).
    whole = bool(inv.tenant) and inv.is_admin
    rows = await ctx.store.subscriptions(inv.platform, inv.tenant, None if whole else inv.channel)
    lines: list[Message] = [
        Message(
            "subscriptions.line",
            channel=channel_label(inv, r.channel),
            subject=subject_text(ctx, inv, r.scope, r.target),
            level=r.level,
        )
        for r in rows
    ]
    if whole:
        since = to_epoch(ctx.clock()) - DEAD_LETTER_DAYS * 86_400
        dead = await ctx.store.dead_letters(inv.platform, inv.tenant, since)
        if dead:
            lines.append(Message("subscriptions.dead_title", count=len(dead)))
            lines += [
                Message(
                    "subscriptions.dead_line",
                    channel=channel_label(inv, c),
                    kind=k.partition(":")[0],
                    error=e[:100],
                )
                for c, k, e, _at in dead
            ]
    if not lines:
        return info("subscriptions.none", ephemeral=True)
    return Reply(
        ReplyKind.INFO,
        title=Message("subscriptions.title", count=len(rows)),
        lines=tuple(lines),
        ephemeral=True,
    )

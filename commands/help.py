"""/help: what the bot does and every command with its usage."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec

SPEC = CommandSpec(name="help", description="cmd.help")


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    # Imported here: the registry imports this module, so a top-level import would be circular.
    from commands import COMMANDS

    lines = tuple(
        Message("help.line", usage=m.SPEC.usage(), description=Message(m.SPEC.description))
        for m in COMMANDS.values()
        if not m.SPEC.admin or inv.is_admin
    )
    return Reply(
        ReplyKind.INFO,
        title=Message("help.title"),
        text=Message("help.intro"),
        lines=lines,
        ephemeral=True,
    )

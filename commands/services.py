"""/services: the catalog, one line per service with its aliases."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec

SPEC = CommandSpec(name="services", description="cmd.services")


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    services = ctx.catalog.services
    lines = tuple(
        Message(
            "services.line",
            name=s.name,
            key=s.key,
            aliases=Message("services.aliases", aliases=", ".join(s.aliases)) if s.aliases else "",
        )
        for s in services
    )
    return Reply(
        ReplyKind.INFO,
        title=Message("services.title", count=len(services)),
        lines=lines,
        ephemeral=True,
    )

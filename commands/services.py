"""/services: the catalog, one line per service with its aliases."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.model import Service
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec

SPEC = CommandSpec(name="services", description="cmd.services")


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    services = ctx.catalog.services
    lines = tuple(_line(s, s.key, s.aliases) for s in services)
    own = ctx.tenants.services(inv.platform, inv.tenant) if ctx.tenants else []
    if own:
        # This server's own services first: they are what its admins added for it.
        lines = (
            Message("services.own_title", count=len(own)),
            # The first alias is the key the admin typed; the reference is internal.
            *(_line(s, s.aliases[0], s.aliases[1:]) for s in own),
            Message("services.title", count=len(services)),
            *lines,
        )
    return Reply(
        ReplyKind.INFO,
        title=Message("services.title", count=len(services) + len(own)),
        lines=lines,
        ephemeral=True,
    )


def _line(s: Service, key: str, aliases: tuple[str, ...]) -> Message:
    return Message(
        "services.line",
        name=s.name,
        key=key,
        aliases=Message("services.aliases", aliases=", ".join(aliases)) if aliases else "",
    )

"""/agents (admins): every probe agent's region, last contact, lag and results per second."""

from __future__ import annotations

import time

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.regions import region_name
from bot.reply import Reply, ReplyKind, error
from bot.router import Args
from bot.spec import CommandSpec

SPEC = CommandSpec(name="agents", description="cmd.agents", admin=True)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    if ctx.agents is None:
        return error("error.probes_off")
    now = time.time()
    statuses = await ctx.agents.status()
    lines = tuple(
        Message(
            "agents.line" if s.connected else "agents.line_gone",
            id=s.id,
            region=region_name(s.region, inv.lang),
            seen="—" if s.last_seen is None else _age(now - s.last_seen),
            lag="—" if s.lag_ms is None else f"{s.lag_ms / 1000:.1f} s",
            rate=f"{s.results_per_second:.1f}",
        )
        for s in sorted(statuses, key=lambda s: (not s.connected, s.region, s.id))
    )
    connected = sum(1 for s in statuses if s.connected)
    return Reply(
        ReplyKind.INFO,
        title=Message("agents.title", connected=connected, total=len(statuses)),
        text=None if statuses else Message("agents.none"),
        lines=lines,
        ephemeral=True,
    )


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"

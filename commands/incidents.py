"""/incidents: what is broken right now (open incidents) and what people report most this hour.

Read-only and for everyone: it is also what the Slack App Home shows. A server sees the catalog's
incidents and its own services', never another server's.
"""

from __future__ import annotations

from datetime import timedelta

from bot.alerts import duration_text
from bot.context import CommandContext
from bot.i18n import Message, RegionList
from bot.invocation import Invocation
from bot.model import from_epoch
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec

SPEC = CommandSpec(name="incidents", description="cmd.incidents")

TOP = 5
TOP_WINDOW = timedelta(hours=1)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    own = ctx.tenants.services(inv.platform, inv.tenant) if ctx.tenants else []
    visible = {s.key: s for s in (*ctx.catalog.services, *own)}
    now = ctx.clock()
    lines: list[Message] = []
    open_now = [
        i
        for i in await ctx.store.open_incidents()
        if i.service in visible and not i.detail.get("suppressed")
    ]
    for i in open_now:
        lines.append(
            Message(
                "incidents.line",
                name=visible[i.service].name,
                category=Message(f"category.{i.category}"),
                duration=duration_text(now - from_epoch(i.opened_at), inv.lang),
                regions=RegionList(tuple(i.detail.get("regions", ()))),
            )
        )
    # Hourly rollups: the hour under way counts too (until just after now).
    until = now + timedelta(seconds=1)
    top = await ctx.store.top_reported(sorted(visible), now - TOP_WINDOW, until, TOP)
    if top:
        items = " · ".join(f"{visible[k].name} {n:,}" for k, n in top)
        lines.append(Message("incidents.top", items=items))
    if not open_now:
        lines.insert(0, Message("incidents.none"))
    return Reply(
        ReplyKind.INFO,
        title=Message("incidents.title", count=len(open_now)),
        lines=tuple(lines),
        ephemeral=True,
    )

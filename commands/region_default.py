"""/region default <region>: an admin sets the region reports here count for by default."""

from __future__ import annotations

from bot.context import CommandContext
from bot.invocation import Invocation
from bot.regions import region_name
from bot.reply import Reply, error
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from commands._tenant import done

SPEC = CommandSpec(
    name="region default",
    description="cmd.region_default",
    params=(
        Param("region", ParamKind.REGION, "param.default_region", required=True, max_length=8),
    ),
    admin=True,
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    if not inv.tenant:
        return error("region.dm")
    region = args.text("region")
    assert region is not None  # required, converted by the router
    await ctx.store.set_tenant_setting(inv.platform, inv.tenant, "default_region", region)
    return done("region.default_set", region=f"{region_name(region, inv.lang)} ({region})")

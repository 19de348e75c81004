"""/worksforme <service> [region]: "it works for me", shown beside the reports."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.model import to_epoch
from bot.regions import region_name
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from bot.store import WorksForMeRow
from commands._common import user_region

SPEC = CommandSpec(
    name="worksforme",
    description="cmd.worksforme",
    params=(
        Param("service", ParamKind.SERVICE, "param.service", required=True),
        Param("region", ParamKind.REGION, "param.region", max_length=8),
    ),
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    service = args.service()
    assert service is not None  # required, checked by the router
    region = await user_region(ctx, inv, args.text("region"))
    sid = ctx.store.service_id(service.key)
    if sid is None:
        raise LookupError(f"service {service.key!r} is in the catalog but not in the store")
    dedupe = ctx.settings.reports.dedupe_minutes * 60
    new = await ctx.store.add_works_for_me(
        WorksForMeRow(sid, to_epoch(ctx.clock()), region, inv.platform, inv.tenant, inv.user),
        dedupe,
    )
    key = "wfm.counted" if new else "wfm.duplicate"
    message = Message(
        key, name=service.name, region=region_name(region, inv.lang), minutes=dedupe // 60
    )
    return Reply(ReplyKind.INFO, text=message, ephemeral=True)

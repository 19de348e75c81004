"""/service remove <key>: an admin removes a service this server added, with its history."""

from __future__ import annotations

from bot.context import CommandContext
from bot.invocation import Invocation
from bot.reply import Reply
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from bot.tenants import TenantServiceError
from commands._tenant import done, refused, tenants_of

SPEC = CommandSpec(
    name="service remove",
    description="cmd.service_remove",
    params=(Param("key", ParamKind.TEXT, "param.key", required=True, max_length=32),),
    admin=True,
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    key = (args.text("key") or "").lower()
    try:
        svc = await tenants_of(ctx).remove(inv.platform, inv.tenant, key)
    except TenantServiceError as exc:
        return refused(exc)
    return done("service.removed", name=svc.name)

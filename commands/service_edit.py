"""/service edit <key> [url] [name] [aliases]: an admin changes a service this server added."""

from __future__ import annotations

from bot.context import CommandContext
from bot.invocation import Invocation
from bot.reply import Reply
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from bot.tenants import TenantServiceError
from commands._tenant import change_from, done, refused, tenants_of

SPEC = CommandSpec(
    name="service edit",
    description="cmd.service_edit",
    params=(
        Param("key", ParamKind.TEXT, "param.key", required=True, max_length=32),
        Param("url", ParamKind.TEXT, "param.url", max_length=500),
        Param("name", ParamKind.TEXT, "param.name", max_length=64),
        Param("aliases", ParamKind.TEXT, "param.aliases", max_length=400),
    ),
    admin=True,
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    change = change_from(args)
    try:
        svc = await tenants_of(ctx).edit(inv.platform, inv.tenant, change)
    except TenantServiceError as exc:
        return refused(exc)
    return done("service.edited", name=svc.name, url=svc.targets[0].url)

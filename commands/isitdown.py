"""/isitdown <service or URL>: the verdict, with the per-region table, chart and buttons."""

from __future__ import annotations

from bot.context import CommandContext
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind, error
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from commands._common import verdict_buttons

SPEC = CommandSpec(
    name="isitdown",
    description="cmd.isitdown",
    params=(
        Param("service", ParamKind.SERVICE_OR_URL, "param.service", required=True, max_length=200),
    ),
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    service = args.service()
    if service is None:
        return await _check_url(ctx, args.url() or "")
    at = ctx.clock()
    verdict = await ctx.verdicts.verdict(service, at)
    chart = await ctx.verdicts.chart(service, at)
    return Reply(
        ReplyKind.VERDICT,
        verdict=verdict,
        chart=chart,
        buttons=verdict_buttons(service.key),
    )


async def _check_url(ctx: CommandContext, text: str) -> Reply:
    """A URL outside the catalog: probe it now from every region (at most a few seconds)."""
    if ctx.ondemand is None:
        return error("error.url_not_supported")
    url = text if "://" in text else f"https://{text}"
    refusal = ctx.ondemand.refuse(url)
    if refusal is not None:
        return error("error.url_refused", url=url, reason=refusal)
    verdict = await ctx.ondemand.check(url)
    return Reply(ReplyKind.VERDICT, verdict=verdict)

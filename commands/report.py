"""/report <service> [problem] [region] [note]: a crowd report, counted once per user and window."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.model import Problem, to_epoch
from bot.regions import region_name
from bot.reply import Reply, ReplyKind
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from bot.store import ReportOutcome, ReportRow
from commands._common import user_region

SPEC = CommandSpec(
    name="report",
    description="cmd.report",
    params=(
        Param("service", ParamKind.SERVICE, "param.service", required=True),
        Param("problem", ParamKind.PROBLEM, "param.problem", max_length=20),
        Param("region", ParamKind.REGION, "param.region", max_length=8),
        Param("note", ParamKind.TEXT, "param.note", max_length=200),
    ),
)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    service = args.service()
    assert service is not None  # required, checked by the router
    problem = args.problem() or Problem.OTHER
    region = await user_region(ctx, inv, args.text("region"))
    sid = ctx.store.service_id(service.key)
    if sid is None:
        raise LookupError(f"service {service.key!r} is in the catalog but not in the store")
    rules = ctx.report_rules
    outcome = await ctx.store.add_report(
        ReportRow(
            service_id=sid,
            at=to_epoch(ctx.clock()),
            region=region,
            problem=problem.value,
            platform=inv.platform,
            tenant=inv.tenant,
            user=inv.user,
            note=args.text("note") or "",
        ),
        rules,
    )
    key = {
        ReportOutcome.COUNTED: "report.counted",
        ReportOutcome.COMMENT: "report.comment",
        ReportOutcome.CAPPED: "report.capped",
        ReportOutcome.RATE_LIMITED: "report.rate_limited",
    }[outcome]
    message = Message(
        key,
        name=service.name,
        problem=Message(f"problem.{problem.value}"),
        region=region_name(region, inv.lang),
        minutes=rules.dedupe_seconds // 60,
    )
    return Reply(ReplyKind.INFO, text=message, ephemeral=True)

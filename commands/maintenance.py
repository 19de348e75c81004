"""/maintenance <service> <duration | end> [note]: declare (or end) a maintenance window.

During a window the verdict says "maintenance" and incidents are recorded but not alerted. A
service shared by every server (the catalog) belongs to the operator: its windows come from its
status page or the console, never from one server's admins. A server's admins declare windows
for the services that server added.
"""

from __future__ import annotations

import re
from datetime import timedelta

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.model import to_epoch
from bot.reply import Reply, ReplyKind, error
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind

SPEC = CommandSpec(
    name="maintenance",
    description="cmd.maintenance",
    params=(
        Param("service", ParamKind.SERVICE, "param.service", required=True),
        Param("duration", ParamKind.TEXT, "param.duration", required=True, max_length=20),
        Param("note", ParamKind.TEXT, "param.note", max_length=200),
    ),
    admin=True,
)

_DURATION = re.compile(r"^(\d{1,4})\s*(m|min|mins|minutes?|h|hours?|d|days?)$")
MAX_WINDOW = timedelta(days=7)


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    service = args.service()
    assert service is not None  # required, resolved by the router
    own_prefix = f"{inv.platform}:{inv.tenant}/"
    if inv.platform != "console" and not service.key.startswith(own_prefix):
        return error("maintenance.shared", name=service.name)
    raw = (args.text("duration") or "").strip().lower()
    now = to_epoch(ctx.clock())
    if raw in ("end", "stop", "off", "fin"):
        ended = await ctx.store.end_maintenance(service.key, now)
        key = "maintenance.ended" if ended else "maintenance.none"
        return Reply(ReplyKind.INFO, text=Message(key, name=service.name))
    length = _parse(raw)
    if length is None or length > MAX_WINDOW:
        return error("maintenance.bad_duration", value=raw[:20])
    note = args.text("note") or ""
    ends = now + int(length.total_seconds())
    await ctx.store.add_maintenance(
        service.key, inv.platform, inv.tenant, now, ends, note, inv.user
    )
    minutes = int(length.total_seconds() // 60)
    return Reply(
        ReplyKind.INFO,
        text=Message("maintenance.declared", name=service.name, minutes=minutes),
    )


def _parse(raw: str) -> timedelta | None:
    match = _DURATION.match(raw)
    if match is None:
        return None
    n, unit = int(match.group(1)), match.group(2)[0]
    if n == 0:
        return None
    return {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n)}[unit]

"""/digest [time] [day] [timezone]: when this channel gets its digest; no arguments shows it."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.context import CommandContext
from bot.digests import DAYS, schedule_of
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind, error
from bot.router import Args
from bot.spec import CommandSpec, Param, ParamKind
from commands._subscriptions import channel_label, may_change

SPEC = CommandSpec(
    name="digest",
    description="cmd.digest",
    params=(
        Param("time", ParamKind.TEXT, "param.time", max_length=8),
        Param("day", ParamKind.TEXT, "param.day", max_length=8),
        Param("timezone", ParamKind.TEXT, "param.timezone", max_length=64),
    ),
)

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


async def run(ctx: CommandContext, inv: Invocation, args: Args) -> Reply:
    label = channel_label(inv, inv.channel)
    given = [args.text(n) for n in ("time", "day", "timezone")]
    if any(given):
        refused = may_change(inv)
        if refused is not None:
            return refused
        checked = _check(*given)
        if isinstance(checked, Reply):
            return checked
        time, day, zone = checked
        changed = await ctx.store.set_digest(inv.platform, inv.tenant, inv.channel, time, zone, day)
        if not changed:
            return error("digest.none", channel=label)
        if ctx.digests is not None:
            await ctx.digests.sync()
    return await _show(ctx, inv, label)


def _check(
    time: str | None, day: str | None, zone: str | None
) -> tuple[str, str | None, str | None] | Reply:
    hhmm = (time or "09:00").strip().lower()
    if hhmm != "off":
        match = _HHMM.match(hhmm)
        if match is None:
            return error("digest.bad_time", value=hhmm[:20])
        hhmm = f"{int(match.group(1)):02d}:{match.group(2)}"
    weekday = day.strip().lower()[:3] if day else None
    if day and day.strip().lower() == "daily":
        weekday = "daily"
    elif weekday is not None and weekday not in DAYS:
        return error("digest.bad_day", value=(day or "")[:20])
    if zone:
        try:
            ZoneInfo(zone.strip())
        except (ZoneInfoNotFoundError, ValueError):
            return error("digest.bad_timezone", value=zone[:64])
    return hhmm, weekday, zone.strip() if zone else None


async def _show(ctx: CommandContext, inv: Invocation, label: str) -> Reply:
    channels = await ctx.store.digest_channels()
    mine = next(
        (
            c
            for c in channels
            if (c.platform, c.tenant, c.channel) == (inv.platform, inv.tenant, inv.channel)
        ),
        None,
    )
    if mine is None:
        return Reply(ReplyKind.INFO, text=Message("digest.none", channel=label), ephemeral=True)
    schedule = schedule_of(mine, ctx.settings.digest, ctx.settings.bot.timezone)
    if schedule is None:
        return Reply(ReplyKind.INFO, text=Message("digest.off", channel=label))
    hhmm = schedule.at.strftime("%H:%M")
    when = (
        Message("digest.daily", time=hhmm, timezone=schedule.timezone)
        if schedule.day is None
        else Message("digest.weekly", day=schedule.day, time=hhmm, timezone=schedule.timezone)
    )
    due = schedule.last_due(ctx.clock()) + schedule.span
    nxt = due.strftime("%Y-%m-%d %H:%M %Z")
    return Reply(ReplyKind.INFO, text=Message("digest.set", channel=label, when=when, next=nxt))

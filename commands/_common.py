"""Helpers shared by several commands: the verdict reply's buttons and the user's region."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.invocation import Invocation
from bot.regions import region_from_locale
from bot.reply import Button


def verdict_buttons(service_key: str) -> tuple[Button, ...]:
    """The buttons under a verdict; each dispatches a registered command."""
    # Imported here: the registry imports the command modules that import this one.
    from commands import COMMANDS

    buttons = (
        Button("report", service_key, Message("button.report")),
        Button("worksforme", service_key, Message("button.works")),
        Button("isitdown", service_key, Message("button.recheck")),
        Button("subscribe", service_key, Message("button.subscribe")),
    )
    return tuple(b for b in buttons if b.action in COMMANDS)


async def user_region(ctx: CommandContext, inv: Invocation, given: str | None) -> str:
    """The region given, else the user's locale, else the server's default, else the bot's."""
    if given:
        return given
    from_locale = region_from_locale(inv.locale)
    if from_locale:
        return from_locale
    if inv.tenant:
        tenant_default = await ctx.store.tenant_setting(inv.platform, inv.tenant, "default_region")
        if tenant_default:
            return tenant_default
    return ctx.settings.bot.default_region

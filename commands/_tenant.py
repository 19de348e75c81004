"""Helpers for the admin commands that change what one guild or workspace sees."""

from __future__ import annotations

from bot.context import CommandContext
from bot.i18n import Message
from bot.reply import Reply, ReplyKind, error
from bot.router import Args
from bot.tenants import ServiceChange, TenantCatalogs, TenantServiceError


def tenants_of(ctx: CommandContext) -> TenantCatalogs:
    # The composition root always provides them; a missing one is our bug (the router logs it
    # and apologises), not the user's.
    if ctx.tenants is None:
        raise RuntimeError("CommandContext.tenants is not set")
    return ctx.tenants


def refused(exc: TenantServiceError) -> Reply:
    return error(exc.key, **exc.params)


def done(key: str, /, **params: object) -> Reply:
    # Visible to the channel: an admin changing what everyone can check is worth seeing.
    return Reply(ReplyKind.INFO, text=Message(key, **params))


def change_from(args: Args) -> ServiceChange:
    """What /service add or edit was given (keys are case-insensitive; None: not given)."""
    aliases = args.text("aliases")
    return ServiceChange(
        key=(args.text("key") or "").lower(),
        name=args.text("name"),
        url=args.text("url"),
        aliases=None if aliases is None else tuple(a.strip() for a in aliases.split(",")),
    )

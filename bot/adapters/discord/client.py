"""The discord.py client: where it connects, which client class, and the hooks it needs.

discord.py has no base-URL option, so ``point_at`` sets the two class attributes it reads
(shared/PROTOCOLS.md): the REST base and the gateway URL. They are process-wide, which is fine
for a bot that talks to one Discord. Never call ``discord.http._set_api_version()``: it resets
the base.
"""

from __future__ import annotations

from typing import Any

import discord
import yarl

from bot.adapters.discord.components import ComponentHandler, ProblemSelect, VerdictButton
from bot.adapters.ratelimit import GlobalLimiter

__all__ = ["HandledClient", "ShardedHandledClient", "make_client", "point_at"]

API_PATH = "/api/v10"


def point_at(api_base: str, gateway_url: str) -> None:
    """Send REST to ``{api_base}/api/v10`` and open the gateway at ``gateway_url``."""
    discord.http.Route.BASE = api_base.rstrip("/") + API_PATH
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class _Hooks:
    """Shared by both client classes: the handler for clicks and the dynamic items to route."""

    handler: ComponentHandler | None

    async def setup_hook(self) -> None:
        # Dynamic items are matched by custom_id on every click, before any view lookup, so
        # buttons on messages sent before a restart reach the handler too.
        assert isinstance(self, discord.Client)
        self.add_dynamic_items(VerdictButton, ProblemSelect)


class HandledClient(_Hooks, discord.Client):
    def __init__(self, handler: ComponentHandler | None, **options: Any) -> None:
        super().__init__(**options)
        self.handler = handler


class ShardedHandledClient(_Hooks, discord.AutoShardedClient):
    def __init__(self, handler: ComponentHandler | None, **options: Any) -> None:
        super().__init__(**options)
        self.handler = handler


def make_client(
    handler: ComponentHandler | None,
    *,
    shards: int,
    guild_ready_timeout: float,
    max_ratelimit_timeout: float,
    limiter: GlobalLimiter,
    application_id: str = "",
) -> discord.Client:
    """An AutoSharded client when ``shards`` > 0, else a plain one; no privileged intents."""
    # Interactions arrive without any intent; "guilds" gives interaction.guild a cached guild.
    options: dict[str, Any] = {
        "intents": discord.Intents(guilds=True),
        "guild_ready_timeout": guild_ready_timeout,
        # A 429 asking for a longer wait becomes RateLimited (then DeliveryError(retry_after))
        # instead of a silent multi-minute sleep; the outbox retries later.
        "max_ratelimit_timeout": max_ratelimit_timeout,
        "allowed_mentions": discord.AllowedMentions.none(),
        # No message cache: the bot never reads messages, only interactions.
        "max_messages": None,
        "chunk_guilds_at_startup": False,
    }
    if application_id:  # else discord.py reads it from the application at login
        options["application_id"] = int(application_id)
    client: discord.Client
    if shards > 0:
        client = ShardedHandledClient(handler, shard_count=shards, **options)
    else:
        client = HandledClient(handler, **options)
    limit_requests(client.http, limiter)
    return client


def limit_requests(http: discord.http.HTTPClient, limiter: GlobalLimiter) -> None:
    """Put every bot-token REST request behind ``limiter`` (Discord's global limit).

    The global limit counts every request the bot makes (login, command sync, sends, edits),
    so the limiter has to see them all: a fan-out limited on its own still drew global 429s
    from the login requests just before it. discord.py has no hook for this, hence the wrap of
    the one method all REST calls go through. Interaction responses and followups use
    discord.py's webhook adapter instead, and Discord exempts them from the global limit too.
    """
    request = http.request

    async def limited(route: discord.http.Route, **kwargs: Any) -> Any:
        async with limiter:
            return await request(route, **kwargs)

    http.request = limited  # type: ignore[method-assign]

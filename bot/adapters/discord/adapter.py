"""The Discord adapter: a discord.py gateway client serving the slash commands, and a Sender.

``build`` is the registry's entry point (bot/adapters/registry.py). ``start`` logs in, syncs the
command tree (to the configured guilds for instant updates, else globally), connects the gateway
in the background and returns once Discord said READY. The token is read from the environment
variable named by ``[discord] token_env`` and never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot.adapters.base import Adapter, Complete, DeliveryError, Dispatch, Sent
from bot.adapters.discord.chartcache import ChartCache
from bot.adapters.discord.client import make_client, point_at
from bot.adapters.discord.commands import CatalogTranslator, add_commands
from bot.adapters.discord.delivery import DiscordDelivery
from bot.adapters.discord.interactions import ACK_BUDGET, InteractionHandler
from bot.adapters.ratelimit import GlobalLimiter
from bot.adapters.registry import AdapterDeps
from bot.config import DiscordSettings
from bot.errors import PlatformUnavailable, StartupError
from bot.reply import Reply
from bot.spec import CommandSpec

__all__ = ["DiscordAdapter", "build", "read_token", "sync_commands"]

log = logging.getLogger(__name__)

# Gives up on a send that Discord asks us to delay by more than this (discord.py's minimum is
# 30 s); the outbox retries it later instead of holding a worker.
MAX_RATELIMIT_WAIT = 30.0


def build(deps: AdapterDeps) -> Adapter:
    """The adapter for ``[discord]``; a missing token is a StartupError naming the variable."""
    settings = deps.settings.discord
    return DiscordAdapter(
        dispatch=deps.dispatch,
        complete=deps.complete,
        specs=deps.specs,
        settings=settings,
        token=read_token(settings, deps.environ),
    )


def read_token(settings: DiscordSettings, environ: Mapping[str, str]) -> str:
    token = environ.get(settings.token_env, "").strip()
    if not token:
        raise StartupError(
            f"the environment variable {settings.token_env} (named by [discord] token_env) is "
            "empty or unset; set it to the bot token from the Discord developer portal"
        )
    return token


class DiscordAdapter:
    """Serves interactions over the gateway; sends and edits proactive messages over REST.

    ``rate`` is the global request budget per second (Discord allows a bot 50); every REST
    request of the bot goes through it. The timeouts are discord.py's wait for GUILD_CREATEs
    after READY, and how long ``start`` waits for READY before giving up.
    """

    name = "discord"

    def __init__(
        self,
        *,
        dispatch: Dispatch,
        complete: Complete,
        specs: Mapping[str, CommandSpec],
        settings: DiscordSettings,
        token: str,
        rate: int = 50,
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
        ack_budget: float = ACK_BUDGET,
    ) -> None:
        self._settings = settings
        self._token = token
        self._specs = dict(specs)
        self._charts = ChartCache()
        self._handler = InteractionHandler(
            dispatch, complete, specs, charts=self._charts, ack_budget=ack_budget
        )
        self._limiter = GlobalLimiter(rate)
        self._guild_ready_timeout = guild_ready_timeout
        self._ready_timeout = ready_timeout
        self._client: discord.Client | None = None
        self._runner: asyncio.Task[None] | None = None
        self._delivery = DiscordDelivery(self._require_client, self._charts)

    @property
    def client(self) -> discord.Client | None:
        return self._client

    # ---- Adapter ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None:
            return
        # discord.py logs webhook URLs and raw INTERACTION_CREATE payloads at DEBUG, and both
        # hold interaction tokens (valid 15 minutes): never let them reach our logs.
        for name in ("discord.webhook", "discord.gateway", "discord.http"):
            logging.getLogger(name).setLevel(max(logging.INFO, logging.getLogger(name).level))
        point_at(self._settings.api_base, self._settings.gateway_url)
        client = make_client(
            self._handler,
            shards=self._settings.shards,
            guild_ready_timeout=self._guild_ready_timeout,
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
            limiter=self._limiter,
            application_id=self._settings.application_id,
        )
        self._client = client
        tree = self._tree(client)
        try:
            await _login(client, self._token, self._settings)
            await _sync(tree, self._settings)
            self._runner = asyncio.create_task(client.connect(reconnect=True), name="discord")
            self._runner.add_done_callback(_log_gateway_end)
            await self._wait_ready(client, self._runner)
        except BaseException:
            await self.stop()
            raise
        log.info(
            "discord connected user_id=%s guilds=%d shards=%s",
            client.user.id if client.user else "?",
            len(client.guilds),
            self._settings.shards or "none",
        )

    async def stop(self) -> None:
        client, runner = self._client, self._runner
        self._client = self._runner = None
        if client is not None:
            await client.close()
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
        await self._charts.close()

    def _tree(self, client: discord.Client) -> app_commands.CommandTree[Any]:
        tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
        add_commands(
            tree,
            self._specs,
            on_command=self._handler.on_command,
            on_autocomplete=self._handler.on_autocomplete,
        )
        return tree

    async def _wait_ready(self, client: discord.Client, runner: asyncio.Task[None]) -> None:
        ready = asyncio.ensure_future(client.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {ready, runner}, timeout=self._ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if ready in done:
            return
        if runner in done:
            exc = runner.exception()
            if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
                raise StartupError(
                    f"Discord refused the token in {self._settings.token_env}; "
                    "copy the bot token again from the developer portal"
                ) from None
            raise PlatformUnavailable(
                f"the Discord gateway at {self._settings.gateway_url} closed before READY: {exc}"
            ) from None
        raise PlatformUnavailable(
            f"no READY from the Discord gateway within {self._ready_timeout:.0f} s "
            f"({self._settings.gateway_url})"
        )

    # ---- Sender ----------------------------------------------------------------------------

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        return await self._delivery.send(channel, reply, key=key, thread_of=thread_of, lang=lang)

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        await self._delivery.edit(sent, reply, lang=lang)

    def _require_client(self) -> discord.Client:
        if self._client is None or not self._client.is_ready():
            raise DeliveryError("the Discord adapter is not connected")
        return self._client


async def sync_commands(
    settings: DiscordSettings, token: str, specs: Mapping[str, CommandSpec]
) -> list[str]:
    """Log in over REST only, sync the command tree, log out; one line per place synced."""
    point_at(settings.api_base, settings.gateway_url)
    client = make_client(
        None,
        shards=0,
        guild_ready_timeout=0.0,
        max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
        limiter=GlobalLimiter(),
        application_id=settings.application_id,
    )
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)

    async def never(*args: Any) -> Any:  # the tree is only synced, never served
        raise RuntimeError("discord-sync does not serve commands")

    add_commands(tree, specs, on_command=never, on_autocomplete=never)
    try:
        await _login(client, token, settings)
        return await _sync(tree, settings)
    finally:
        await client.close()


async def _login(client: discord.Client, token: str, settings: DiscordSettings) -> None:
    try:
        await client.login(token)
    except discord.LoginFailure:
        raise StartupError(
            f"Discord refused the token in {settings.token_env}; "
            "copy the bot token again from the developer portal"
        ) from None
    except discord.HTTPException as exc:
        if exc.status >= 500:
            raise PlatformUnavailable(f"Discord answered {exc.status} at login") from None
        raise StartupError(
            f"Discord refused the login at {settings.api_base} ({exc.status}: {exc.text}); "
            "check [discord] api_base"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise PlatformUnavailable(
            f"cannot reach Discord at {settings.api_base} ({exc}); retrying"
        ) from None


async def _sync(tree: app_commands.CommandTree[Any], settings: DiscordSettings) -> list[str]:
    """Register the commands: per configured guild (instant), else globally (slow to appear)."""
    await tree.set_translator(CatalogTranslator())
    try:
        return await _sync_to(tree, settings)
    except discord.HTTPException as exc:
        raise StartupError(
            f"Discord refused the command list ({exc.status}, code {exc.code}): {exc.text}"
        ) from None


async def _sync_to(tree: app_commands.CommandTree[Any], settings: DiscordSettings) -> list[str]:
    if not settings.guild_ids:
        synced = await tree.sync()
        log.info("discord commands synced scope=global count=%d", len(synced))
        return [f"{len(synced)} commands synced globally (Discord may take a while to show them)"]
    lines = []
    for guild_id in settings.guild_ids:
        guild = discord.Object(id=int(guild_id))
        tree.copy_global_to(guild=guild)
        try:
            synced = await tree.sync(guild=guild)
        except discord.Forbidden:
            raise StartupError(
                f"Discord refused to register commands in guild {guild_id} ([discord] "
                "guild_ids): invite the bot there with the applications.commands scope, "
                "or remove the id"
            ) from None
        log.info("discord commands synced scope=guild guild=%s count=%d", guild_id, len(synced))
        lines.append(f"{len(synced)} commands synced to guild {guild_id}")
    return lines


def _log_gateway_end(runner: asyncio.Task[None]) -> None:
    """discord.py reconnects by itself; it only gives up on errors such as a revoked token."""
    if runner.cancelled():
        return
    exc = runner.exception()
    if exc is not None:
        log.error("discord gateway stopped for good error=%s: %s", type(exc).__name__, exc)

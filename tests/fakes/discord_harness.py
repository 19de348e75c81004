"""The Discord adapter wired as bot/app.py wires it, in front of the fake Discord.

Nothing of ours is mocked: a real SQLite store in a temp dir, the real router with every
registered command, the real completer, the real discord.py client; only Discord is fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import yarl
from fakes.discord_fake import FakeDiscord
from fakes.seeding import CATALOG, SPECS, Clock

from bot.adapters.discord.adapter import DiscordAdapter
from bot.complete import Completer
from bot.config import Settings, parse_settings
from bot.context import CommandContext
from bot.invocation import Invocation
from bot.reply import Reply
from bot.resolve import Resolver
from bot.router import Router
from bot.store import Store
from bot.verdicts import VerdictService
from commands import COMMANDS


@dataclass
class Harness:
    fake: FakeDiscord
    adapter: DiscordAdapter
    router: Router
    settings: Settings

    @property
    def store(self) -> Store:
        return self.router.ctx.store


def discord_settings(fake: FakeDiscord, **discord_keys: Any) -> Settings:
    return parse_settings(
        {
            "bot": {"default_region": "US"},
            "reports": {"min_reports": 5},
            "discord": {
                "enabled": True,
                "api_base": fake.api_base,
                "gateway_url": fake.gateway_url,
                **discord_keys,
            },
        }
    )


@asynccontextmanager
async def restore_discord_urls() -> AsyncIterator[None]:
    """Route.BASE and the gateway URL are process-wide: put Discord's back afterwards."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    try:
        yield
    finally:
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(str(gateway))


@asynccontextmanager
async def running(
    tmp_path: Path,
    *,
    fake: FakeDiscord | None = None,
    rate: int = 50,
    token: str | None = None,
    seen: list[Invocation] | None = None,
    hold: asyncio.Event | None = None,
    ack_budget: float = 2.0,
    **discord_keys: Any,
) -> AsyncIterator[Harness]:
    """The fake Discord, a store and the adapter, started; everything closed afterwards.

    With ``seen``, every invocation the adapter dispatches is appended to it (then run as usual);
    with ``hold``, every dispatch waits until the event is set.
    """
    # A fake passed in that is already listening outlives this adapter (a restart test).
    own_fake = fake is None or not fake.port
    fake = fake or FakeDiscord()
    if not fake.port:
        await fake.start()
    settings = discord_settings(fake, **discord_keys)
    store = await Store.open(tmp_path / "discord.db", CATALOG)
    ctx = CommandContext(
        settings=settings,
        catalog=CATALOG,
        store=store,
        resolver=Resolver(CATALOG),
        verdicts=VerdictService(store, settings),
        clock=Clock(),
    )
    router = Router(ctx, COMMANDS)

    async def dispatch(inv: Invocation) -> Reply:
        if seen is not None:
            seen.append(inv)
        if hold is not None:
            await hold.wait()  # a slow command: it finishes when the test says so
        return await router.dispatch(inv)

    adapter = DiscordAdapter(
        dispatch=dispatch,
        complete=Completer(ctx.resolver, SPECS).complete,
        specs=SPECS,
        settings=settings.discord,
        token=fake.token if token is None else token,
        rate=rate,
        guild_ready_timeout=0.05,
        ready_timeout=10.0,
        ack_budget=ack_budget,
    )
    async with restore_discord_urls():
        try:
            await adapter.start()
            yield Harness(fake, adapter, router, settings)
            # Whatever the test did, Discord never had to refuse a payload over its limits.
            assert fake.invalid == [], fake.invalid
        finally:
            await adapter.stop()
            await store.close()
            if own_fake:
                await fake.close()


def options_of(command: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["name"]: o for o in command.get("options", [])}

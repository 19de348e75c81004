"""A real bot behind the real Slack adapter, wired to the local Slack (tests/fakes/slack.py).

The router, store (SQLite in a temp dir) and commands are the production ones; only Slack is
fake. In HTTP mode the adapter's route lives on an aiohttp app served on 127.0.0.1:0, as it would
on the bot's API listener.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from fakes.seeding import CATALOG, NOW, SPECS
from fakes.slack import FakeSlack
from fakes.slack_requests import signed_headers

from bot.adapters.base import Dispatch
from bot.adapters.registry import AdapterDeps
from bot.adapters.slack.adapter import SlackAdapter, build
from bot.config import parse_settings
from bot.context import CommandContext
from bot.resolve import Resolver
from bot.router import Router
from bot.store import Store
from bot.verdicts import VerdictService
from commands import COMMANDS

SECRET = "test-signing-secret"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def open_router(tmp_path: Path) -> Router:
    settings = parse_settings({"bot": {"default_region": "US"}, "reports": {"min_reports": 5}})
    store = await Store.open(tmp_path / "slack.db", CATALOG)
    ctx = CommandContext(
        settings=settings,
        catalog=CATALOG,
        store=store,
        resolver=Resolver(CATALOG),
        verdicts=VerdictService(store, settings),
        clock=Clock(),
    )
    return Router(ctx, COMMANDS)


def slack_settings(fake: FakeSlack, mode: str = "http", **slack: Any) -> Any:
    return parse_settings(
        {"slack": {"enabled": True, "mode": mode, "api_base": fake.api_base, **slack}}
    )


def environ(fake: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": fake.bot_token,
        "SLACK_APP_TOKEN": fake.app_token,
        "SLACK_SIGNING_SECRET": SECRET,
    }


@dataclass
class SlackBot:
    """The adapter under test, its web listener (HTTP mode) and a client to post to it."""

    fake: FakeSlack
    router: Router
    adapter: SlackAdapter
    runner: web.AppRunner | None = None
    port: int = 0
    session: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    async def post(
        self, body: str, *, headers: Mapping[str, str] | None = None, json_body: bool = False
    ) -> tuple[int, str]:
        """POST ``body`` to /slack/events, correctly signed unless ``headers`` are given."""
        content_type = "application/json" if json_body else None
        sent = (
            dict(headers)
            if headers is not None
            else signed_headers(SECRET, body, content_type=content_type)
        )
        async with self.session.post(self.events_url, data=body.encode(), headers=sent) as resp:
            return resp.status, await resp.text()

    async def close(self) -> None:
        await self.adapter.stop()
        await self.session.close()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.router.ctx.store.close()


async def start_bot(
    tmp_path: Path,
    fake: FakeSlack,
    *,
    mode: str = "http",
    dispatch: Dispatch | None = None,
    **slack: Any,
) -> SlackBot:
    """The adapter on the real router, unless ``dispatch`` replaces it (to hold a command)."""
    router = await open_router(tmp_path)
    web_app = web.Application(client_max_size=64 * 1024)
    adapter = build(
        AdapterDeps(
            settings=slack_settings(fake, mode, **slack),
            dispatch=dispatch or router.dispatch,
            complete=lambda *_: [],
            specs=SPECS,
            environ=environ(fake),
            web_app=web_app,
        )
    )
    assert isinstance(adapter, SlackAdapter)
    bot = SlackBot(fake, router, adapter)
    if mode == "http":
        bot.runner = web.AppRunner(web_app, access_log=None)
        await bot.runner.setup()
        site = web.TCPSite(bot.runner, "127.0.0.1", 0)
        await site.start()
        bot.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await adapter.start()
    except BaseException:
        await bot.close()
        raise
    return bot

"""The core with probing on: the local agent probes, re-checks confirm a fault, /agents shows it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import App, StartupError
from bot.config import parse_settings
from bot.i18n import render
from bot.invocation import Invocation
from bot.model import Category
from bot.reply import ReplyKind


class Target:
    """A loopback service whose health the test switches, counting the probes it answers."""

    def __init__(self) -> None:
        self.healthy = True
        self.hits = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def handle(request: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(status=200 if self.healthy else 503, text="hi")

        app = web.Application()
        app.router.add_get("/", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = Target()
    await t.start()
    yield t
    await t.stop()


def settings_for(tmp_path: Path, url: str, **probes: object) -> object:
    return parse_settings(
        {
            "bot": {"database": str(tmp_path / "core.db"), "default_region": "US"},
            "api": {"listen": "127.0.0.1:0"},
            # A long interval: anything faster than that in this test came from a re-check.
            "probes": {
                "interval_seconds": 3600,
                "allow_private": ["127.0.0.0/8"],
                "timeout_seconds": 2.0,
                **probes,
            },
            "verdict": {"confirm_failures": 3},
            "services": [{"key": "acme", "name": "Acme", "targets": {"web": url}}],
        }
    )


async def test_local_agent_probes_and_rechecks_confirm_a_fault(
    tmp_path: Path, target: Target
) -> None:
    app = await App.create(settings_for(tmp_path, target.url), demo=False)  # type: ignore[arg-type]
    await app.start()
    try:
        assert app.probing is not None and app.probing.local is not None
        stats = app.probing.local.stats
        assert stats is not None
        # The first scheduled run falls somewhere in the interval; ask for a re-check instead
        # of waiting for it: the same path cross-region confirmation uses.
        target.healthy = False
        async with asyncio.timeout(20):
            await stats.wait_for(lambda s: s.assignments >= 1)  # it knows the task now
            assert app.probing.hub.request_recheck(["probe:acme:web"]) == 1
            # That failure makes the coordinator burst two more re-checks: three results, sent.
            await stats.wait_for(lambda s: s.rechecks >= 3 and s.sent >= 3)
        verdict = await app.verdicts.verdict(app.catalog.services[0])
        # One region probing: "fails from the US; no other region is checking it".
        assert verdict.category is Category.REGIONAL
        assert [(r.region, r.probe_failed >= 3) for r in verdict.regions] == [("US", True)]
        assert target.hits >= 3
        # Admins see the local agent; members are refused.
        admin = await app.router.dispatch(Invocation("agents", {}, is_admin=True))
        assert admin.kind is ReplyKind.INFO
        assert any("local (the US)" in render(line) for line in admin.lines)
        member = await app.router.dispatch(Invocation("agents", {}, is_admin=False))
        assert member.kind is ReplyKind.ERROR
        # A chat user cannot point the bot at loopback, even though the operator allowed it.
        # (127.0.0.3: not a catalog host, which would resolve to that service instead.)
        refused = await app.router.dispatch(
            Invocation("isitdown", {"service": "http://127.0.0.3:8080/"})
        )
        assert refused.kind is ReplyKind.ERROR and "loopback" in render(refused.text)  # type: ignore[arg-type]
    finally:
        await app.close()


async def test_missing_agent_key_stops_startup_with_the_variable_name(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "bot": {"database": str(tmp_path / "core.db")},
            "api": {"listen": "127.0.0.1:0"},
            "agents": [{"id": "jp-1", "region": "JP", "key_env": "OUTAGEBOT_TEST_NO_SUCH_KEY"}],
        }
    )
    with pytest.raises(StartupError, match="OUTAGEBOT_TEST_NO_SUCH_KEY"):
        await App.create(settings, demo=False)

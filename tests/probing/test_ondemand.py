"""On-demand checks of URLs outside the catalog: real probes of loopback targets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
from aiohttp import web

from bot.config import ProbeSettings
from bot.i18n import render
from bot.model import Category
from bot.probes import make_context
from bot.probes.base import Outcome, Reason
from bot.probing.ondemand import OnDemand


@pytest.fixture
async def targets() -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


def loopback_context() -> object:
    # Only the test may reach loopback: chat on-demand checks use the default policy.
    return make_context(ProbeSettings(allow_private=("127.0.0.0/8",)), timeout=3.0)


async def test_up_from_every_region_is_probably_just_you(targets: str) -> None:
    ctx = loopback_context()

    async def agents(url: str, timeout: float) -> Mapping[str, Outcome]:
        # Two agents answering: the far side of the agent wire, as the hub would report it.
        return {"JP": Outcome(True, 200, 40.0), "GB": Outcome(True, 200, 35.0)}

    ondemand = OnDemand(region="US", ctx=ctx, remote=agents)  # type: ignore[arg-type]
    verdict = await ondemand.check(f"{targets}/ok")
    await ctx.session.close()  # type: ignore[attr-defined]
    assert verdict.category is Category.UP
    assert sorted(r.region for r in verdict.regions) == ["GB", "JP", "US"]
    assert "probably on your side" in render(verdict.headline)


async def test_failing_everywhere_is_down_with_reasons(targets: str) -> None:
    ctx = loopback_context()

    async def agents(url: str, timeout: float) -> Mapping[str, Outcome]:
        return {"JP": Outcome(False, 503, 20.0, Reason.STATUS, "HTTP 503 from JP")}

    ondemand = OnDemand(region="US", ctx=ctx, remote=agents)  # type: ignore[arg-type]
    verdict = await ondemand.check(f"{targets}/broken")
    await ctx.session.close()  # type: ignore[attr-defined]
    assert verdict.category is Category.DOWN
    notes = [render(n) for n in verdict.notes]
    assert any(n.startswith("From the US: ") and "503" in n for n in notes)
    assert "From Japan: HTTP 503 from JP" in notes


async def test_chat_policy_refuses_private_addresses_before_any_socket() -> None:
    ctx = make_context(ProbeSettings(allow_private=("127.0.0.0/8",)))
    # The operator allowed loopback for scheduled probes; a chat user still may not use it.
    chat_ctx = make_context(ProbeSettings())
    ondemand = OnDemand(region="US", ctx=chat_ctx)
    for url in ("http://127.0.0.1:8080/", "http://169.254.169.254/latest/", "ftp://example.com/"):
        assert ondemand.refuse(url) is not None, url
    assert ondemand.refuse("https://example.com/") is None
    await ctx.session.close()
    await chat_ctx.session.close()

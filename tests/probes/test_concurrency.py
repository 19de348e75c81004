"""Many probes at once: waiting for a turn must never count against a probe's timeout."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.config import ProbeSettings
from bot.model import Target
from bot.probes import make_context, run_probe


async def test_150_simultaneous_probes_of_a_slow_target_all_pass() -> None:
    async def slow(request: web.Request) -> web.Response:
        # The target's own behaviour (a slow server), not a wait for the test's sake.
        await asyncio.sleep(0.6)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=512)
    await site.start()
    target = Target("web", f"http://127.0.0.1:{runner.addresses[0][1]}/")
    # The aiohttp-based engine's pool of 100 made the second wave wait 0.6 s inside its 1 s
    # timeout; the h1 engine has no pool, and run_probe's gate waits before the clock starts.
    ctx = make_context(ProbeSettings(allow_private=("127.0.0.0/8",)), timeout=1.0)
    try:
        outcomes = await asyncio.gather(*(run_probe(target, ctx) for _ in range(150)))
    finally:
        await ctx.session.close()
        await runner.cleanup()
    assert [o.error for o in outcomes if not o.ok] == []
    assert max(o.latency_ms or 0 for o in outcomes) < 1000


async def test_the_gate_bounds_probes_in_flight_without_failing_them() -> None:
    in_flight = 0
    peak = 0

    async def counting(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", counting)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target = Target("web", f"http://127.0.0.1:{runner.addresses[0][1]}/")
    ctx = make_context(ProbeSettings(allow_private=("127.0.0.0/8",), max_in_flight=5), timeout=2.0)
    try:
        outcomes = await asyncio.gather(*(run_probe(target, ctx) for _ in range(40)))
    finally:
        await ctx.session.close()
        await runner.cleanup()
    assert all(o.ok for o in outcomes)
    assert peak <= 5

"""The demo's target server on loopback: answers each service's web and API paths per scenario."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.demo.scenario import REGION_ADDRESSES, SCENARIOS

_REGION_BY_ADDRESS = {addr: region for region, addr in REGION_ADDRESSES.items()}
_SCENARIOS = {s.key: s for s in SCENARIOS}


async def _handle(request: web.Request) -> web.Response:
    scenario = _SCENARIOS.get(request.match_info["service"])
    if scenario is None:
        return web.Response(status=404, text="no such demo service")
    if scenario.delay_ms:
        await asyncio.sleep(scenario.delay_ms / 1000)
    region = _REGION_BY_ADDRESS.get(request.remote or "")
    if region in scenario.failing_regions:
        return web.Response(status=503, text=f"{scenario.name} is unavailable from {region}")
    return web.Response(text=f"{scenario.name} OK")


class DemoTargets:
    """Runs the target server on 127.0.0.1 at an ephemeral port."""

    def __init__(self) -> None:
        app = web.Application()
        app.router.add_get("/{service}/{target}", _handle)
        self._runner = web.AppRunner(app, access_log=None)
        self.base_url = ""

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        await self._runner.cleanup()

"""Test harness for agents: a real core (aiohttp on loopback port 0, real Store on a SQLite file),
signed requests, and a loopback probe target. Nothing here talks to a non-loopback address.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.agents import AgentHub, Credential, add_agent_routes
from bot.agents.protocol import signed_headers
from bot.model import Catalog, Service, Target
from bot.probing.tasks import ProbeRecord, tasks_from_catalog
from bot.store import Store

KEY_JP = b"jp-key-0123456789abcdef"
KEY_US = b"us-key-0123456789abcdef"
CREDENTIALS = (Credential("jp-1", "JP", KEY_JP), Credential("us-1", "US", KEY_US))
WEB_TASK = "probe:acme:web"


def make_catalog(url: str = "http://127.0.0.1:9/") -> Catalog:
    """One service with two targets; ``url`` is only dialled by tests that run real probes."""
    return Catalog(
        (
            Service(
                key="acme",
                name="Acme",
                targets=(Target("web", url), Target("api", url.rstrip("/") + "/api")),
            ),
        )
    )


class Waitable:
    """A value that tests can await a condition on, without sleeping."""

    def __init__(self) -> None:
        self.records: list[ProbeRecord] = []
        self._changed = asyncio.Event()

    async def add(self, records: Any) -> None:
        self.records.extend(records)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def until(self, n: int, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while len(self.records) < n:
                await self._changed.wait()


class Core:
    """The core's agent API as bot/api.py mounts it: a small client_max_size, our own routes."""

    def __init__(
        self,
        db: Path,
        catalog: Catalog,
        *,
        credentials: tuple[Credential, ...] = CREDENTIALS,
        interval: int = 60,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.credentials = credentials
        self.interval = interval
        self.received = Waitable()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.store: Store
        self.hub: AgentHub

    def on_port(self, port: int) -> Core:
        """Listen on ``port`` (a restart on the port a previous core had)."""
        self.port = port
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Core:
        self.store = await Store.open(self.db, self.catalog)
        self.hub = AgentHub(
            store=self.store,
            tasks=tasks_from_catalog(self.catalog, self.interval),
            credentials=self.credentials,
            on_results=self.received.add,
        )
        app = web.Application(client_max_size=64 * 1024)
        add_agent_routes(app, self.hub)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            await self.store.close()

    async def counts(self) -> dict[str, int]:
        return await self.store.table_counts()


def batch(
    batch_id: str = "b1",
    *,
    region: str = "JP",
    n: int = 2,
    start_ms: int = 1_700_000_000_000,
    **fields: Any,
) -> dict[str, Any]:
    results = [
        {
            "service": "acme",
            "target": "web",
            "at_ms": start_ms + i,
            "ok": True,
            "status": 200,
            "latency_ms": 12.5,
            "error": None,
            **fields,
        }
        for i in range(n)
    ]
    return {"batch": batch_id, "region": region, "results": results}


async def call(
    http: aiohttp.ClientSession,
    core: Core,
    method: str,
    path: str,
    body: bytes | Mapping[str, Any] = b"",
    *,
    agent: str = "jp-1",
    key: bytes = KEY_JP,
    now: float | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    drop: tuple[str, ...] = (),
    params: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """A signed request; ``headers`` replace signed ones after signing, ``drop`` removes some."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = signed_headers(agent_id=agent, key=key, body=raw, now=now, request_id=request_id)
    signed.update(headers or {})
    for name in drop:
        del signed[name]
    async with http.request(
        method, core.url + path, data=raw, headers=signed, params=params
    ) as resp:
        text = await resp.read()
        doc = json.loads(text) if resp.content_type == "application/json" else text
        return resp.status, doc


async def start_target() -> tuple[web.AppRunner, str]:
    """A loopback HTTP server to probe: 200 "ok" on every path."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"

"""Fixtures for the probe tests: loopback servers, probe contexts, a test CA, canaries."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme
from aiohttp import web
from probe_targets import LOOPBACK, Canary, Site, make_app

from bot.probes.base import ProbeContext
from bot.probes.session import open_session
from bot.ssrf import Policy


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Site]]]:
    """Start the test app on ``host`` (127.0.0.1) port 0, optionally with TLS."""
    runners: list[web.AppRunner] = []
    never = asyncio.Event()

    async def start(*, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Site:
        site = Site()
        runner = web.AppRunner(make_app(site, never), shutdown_timeout=0.1)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, host, 0, ssl_context=tls).start()
        port = runner.addresses[0][1]
        site.base = f"{'https' if tls else 'http'}://{host}:{port}"
        return site

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def site(serve: Callable[..., Awaitable[Site]]) -> Site:
    return await serve()


@pytest.fixture
async def context() -> AsyncIterator[Callable[..., ProbeContext]]:
    """Build probe contexts (guarded sessions); their sessions are closed afterwards."""
    made: list[ProbeContext] = []

    def make(
        *,
        policy: Policy = LOOPBACK,
        timeout: float = 2.0,
        session_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        tls_warn_days: int = 14,
    ) -> ProbeContext:
        session = open_session(policy, timeout=session_timeout or timeout, ssl_context=ssl_context)
        ctx = ProbeContext(session, policy, timeout, tls_warn_days)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        await ctx.session.close()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts the test CA (and still verifies everything)."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
async def canary() -> AsyncIterator[Callable[..., Awaitable[Canary]]]:
    """Start canary listeners (``host`` defaults to 127.0.0.1, port 0)."""
    servers: list[asyncio.Server] = []

    async def start(host: str = "127.0.0.1") -> Canary:
        listener = Canary(host)
        server = await asyncio.start_server(listener.accepted, host, 0)
        servers.append(server)
        listener.port = server.sockets[0].getsockname()[1]
        return listener

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()

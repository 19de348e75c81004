"""``open_session``: the guarded session probes use, with the options ``make_session`` sets."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from probe_targets import LOOPBACK, Canary, Site

from bot.model import Target
from bot.probes.base import ProbeContext
from bot.probes.http import probe_http
from bot.probes.session import open_session
from bot.ssrf import describe

MakeContext = Callable[..., ProbeContext]


async def test_proxy_variables_are_ignored(
    site: Site,
    context: MakeContext,
    canary: Callable[..., Awaitable[Canary]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # RELIABILITY.md: a proxy would resolve names itself, past the guard (trust_env=False).
    proxy = await canary()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    outcome = await probe_http(Target("web", f"{site.base}/ok"), context())
    assert outcome.ok and site.methods == ["GET"]
    assert await proxy.accepted_before_now() == 0


async def test_an_explicit_proxy_is_refused(
    site: Site, canary: Callable[..., Awaitable[Canary]]
) -> None:
    proxy = await canary()
    session = open_session(LOOPBACK, timeout=2)
    try:
        with pytest.raises(aiohttp.ClientOSError) as caught:
            await session.get(f"{site.base}/ok", proxy=f"http://127.0.0.1:{proxy.port}")
    finally:
        await session.close()
    assert describe(caught.value) == "probes may not go through a proxy"
    assert await proxy.accepted_before_now() == 0


async def test_each_probe_opens_a_fresh_connection(site: Site, context: MakeContext) -> None:
    # force_close: a pooled keep-alive connection would hide a listener that has gone away,
    # a DNS change or a new certificate.
    ctx = context()
    for _ in range(3):
        assert (await probe_http(Target("web", f"{site.base}/ok"), ctx)).ok
    assert len(set(site.ports)) == 3  # three client ports: three connections
    assert ctx.session.trust_env is False

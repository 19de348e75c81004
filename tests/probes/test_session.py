"""``open_session``: the guarded probe session (no proxies, verifying TLS, fresh connections)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme
from probe_targets import LOOPBACK, Canary, Site, server_tls

from bot.model import Target
from bot.probes import run_probe
from bot.probes.base import ProbeContext
from bot.probes.http import probe_http
from bot.probes.session import open_session

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


async def test_proxy_variables_are_ignored_for_https_too(
    serve: Callable[..., Awaitable[Site]],
    context: MakeContext,
    canary: Callable[..., Awaitable[Canary]],
    monkeypatch: pytest.MonkeyPatch,
    ca: trustme.CA,
    trusting: ssl.SSLContext,
) -> None:
    # The engine has no proxy path at all (no argument, no environment variable).
    proxy = await canary()
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
    site = await serve(tls=server_tls(ca.issue_cert("127.0.0.1")))
    outcome = await probe_http(Target("web", f"{site.base}/ok"), context(ssl_context=trusting))
    assert outcome.ok and site.methods == ["GET"]
    assert await proxy.accepted_before_now() == 0


def test_a_context_that_does_not_verify_is_refused() -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="must verify"):
        open_session(LOOPBACK, timeout=2, ssl_context=lax)


async def test_each_probe_opens_a_fresh_connection(site: Site, context: MakeContext) -> None:
    # A pooled keep-alive connection would hide a listener that has gone away,
    # a DNS change or a new certificate.
    ctx = context()
    for _ in range(3):
        assert (await probe_http(Target("web", f"{site.base}/ok"), ctx)).ok
    assert len(set(site.ports)) == 3  # three client ports: three connections


async def test_a_closed_session_sends_nothing(site: Site, context: MakeContext) -> None:
    ctx = context()
    await ctx.session.close()
    outcome = await run_probe(Target("web", f"{site.base}/ok"), ctx)
    assert not outcome.ok and site.methods == []

"""``bot.probes``: the registry, ``run_probe``'s dispatch and deadline, and ``make_context``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
from probe_targets import Canary, Site

from bot.config import ProbeSettings
from bot.model import Target
from bot.probes import PROBERS, make_context, run_probe
from bot.probes.base import Outcome, ProbeContext, Reason
from bot.probes.dns import probe_dns
from bot.probes.http import probe_http
from bot.probes.tcp import probe_tcp

MakeContext = Callable[..., ProbeContext]


def test_registry_names_every_kind() -> None:
    assert {"http": probe_http, "tcp": probe_tcp, "dns": probe_dns} == PROBERS


async def test_dispatch_by_scheme(
    site: Site, context: MakeContext, canary: Callable[..., Awaitable[Canary]]
) -> None:
    listener = await canary()
    ctx = context()
    web = await run_probe(Target("web", f"{site.base}/ok"), ctx)
    port = await run_probe(Target("port", f"tcp://127.0.0.1:{listener.port}"), ctx)
    name = await run_probe(Target("dns", "dns://localhost", expect_records=("127.0.0.1",)), ctx)
    assert (web.ok, web.status) == (True, 200)
    assert (port.ok, port.status) == (True, None)
    assert name.ok
    assert site.methods == ["GET"]
    assert await listener.accepted_before_now() == 1


async def test_unsupported_scheme(context: MakeContext) -> None:
    outcome = await run_probe(Target("web", "ftp://127.0.0.1/file"), context())
    assert not outcome.ok and outcome.error is Reason.UNSUPPORTED_SCHEME
    assert outcome.detail == (
        "ftp://127.0.0.1/file uses the 'ftp' scheme; probes support http, https, tcp, dns"
    )


async def test_one_deadline_for_the_whole_probe(
    context: MakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = asyncio.Event()

    async def stuck(target: Target, ctx: ProbeContext) -> Outcome:
        await never.wait()
        return Outcome(True)

    monkeypatch.setitem(PROBERS, "http", stuck)
    started = time.perf_counter()
    outcome = await run_probe(Target("web", "http://127.0.0.1:9/"), context(timeout=0.5))
    elapsed = time.perf_counter() - started
    assert outcome.error is Reason.TIMEOUT
    assert outcome.detail == "no answer from http://127.0.0.1:9/ within 0.5 s"
    assert 0.4 < elapsed < 2.0


async def test_a_crashing_prober_becomes_a_failed_outcome(
    context: MakeContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(target: Target, ctx: ProbeContext) -> Outcome:
        raise RuntimeError("bug in a prober")

    monkeypatch.setitem(PROBERS, "http", broken)
    with caplog.at_level(logging.ERROR, logger="bot.probes"):
        outcome = await run_probe(Target("web", "http://127.0.0.1:9/"), context())
    assert not outcome.ok and outcome.error is Reason.CONNECTION
    assert outcome.detail == (
        "the probe of http://127.0.0.1:9/ failed unexpectedly; the log has the details"
    )
    assert "probe crashed kind=http" in caplog.text and "bug in a prober" in caplog.text


async def test_make_context_from_config_binds_the_source_address(
    serve: Callable[..., Awaitable[Site]],
) -> None:
    site = await serve()
    settings = ProbeSettings(allow_private=("127.0.0.0/8",), timeout_seconds=1.5, tls_warn_days=3)
    ctx = make_context(settings, local_addr="127.0.0.5")
    try:
        assert (ctx.timeout, ctx.tls_warn_days) == (1.5, 3)
        assert [str(n) for n in ctx.policy.allow_private] == ["127.0.0.0/8"]
        first = await run_probe(Target("web", f"{site.base}/ok"), ctx)
        second = await run_probe(Target("web", f"{site.base}/ok"), ctx)
    finally:
        await ctx.session.close()
    assert first.ok and second.ok
    assert site.remotes == ["127.0.0.5", "127.0.0.5"]


async def test_make_context_default_policy_blocks_loopback(
    site: Site, canary: Callable[..., Awaitable[Canary]]
) -> None:
    ctx = make_context(ProbeSettings(), timeout=0.5)
    try:
        assert ctx.timeout == 0.5
        outcome = await run_probe(Target("web", f"{site.base}/ok"), ctx)
    finally:
        await ctx.session.close()
    assert outcome.error is Reason.BLOCKED
    assert site.methods == []

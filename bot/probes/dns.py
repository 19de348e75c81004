"""The dns probe: ``dns://name`` answers when the name resolves (A/AAAA), to the expected records.

Resolution goes through the system resolver (the loop's ``getaddrinfo``), so the probe sends
nothing beyond what the host's own resolver sends; no socket is opened towards the answers, which
is why the SSRF guard has nothing to check here. The resolver is a parameter so tests can hand in
a fake one instead of asking a real DNS server about an Internet name.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from ipaddress import ip_address
from urllib.parse import urlsplit

from bot.model import Target
from bot.probes import messages
from bot.probes.base import Outcome, ProbeContext, Reason

Resolver = Callable[[str], Awaitable[Collection[str]]]
"""``name -> addresses`` (text); raises ``socket.gaierror`` when the name does not resolve."""


async def system_resolve(name: str) -> list[str]:
    """The A and AAAA addresses of ``name`` from the system resolver."""
    loop = asyncio.get_running_loop()
    answers = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return [
        str(sockaddr[0])
        for family, _, _, _, sockaddr in answers
        if family in (socket.AF_INET, socket.AF_INET6)
    ]


async def probe_dns(
    target: Target, ctx: ProbeContext, *, resolve: Resolver = system_resolve
) -> Outcome:
    """Resolve ``target``'s name; check ``target.expect_records`` are all among the answers."""
    name = urlsplit(target.url).hostname
    if not name:
        detail = messages.bad_target(target.url, "dns://name")
        return Outcome(False, error=Reason.DNS, detail=detail)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(ctx.timeout):
            answers = await resolve(name)
    except TimeoutError:
        return Outcome(False, error=Reason.TIMEOUT, detail=messages.timed_out(name, ctx.timeout))
    except socket.gaierror as exc:
        return Outcome(False, error=Reason.DNS, detail=messages.unresolved(name, exc.strerror))
    latency = (time.perf_counter() - started) * 1000
    found = sorted({_normal(a) for a in answers})
    if not found:
        detail = messages.no_records(name)
        return Outcome(False, latency_ms=latency, error=Reason.DNS, detail=detail)
    missing = [r for r in target.expect_records if _normal(r) not in found]
    if missing:
        detail = messages.records_missing(name, missing, found)
        return Outcome(False, latency_ms=latency, error=Reason.RECORDS, detail=detail)
    return Outcome(True, latency_ms=latency)


def _normal(address: str) -> str:
    """One spelling per address (``0:0::1`` is ``::1``); zone ids dropped; other text as is."""
    text = address.strip().partition("%")[0]
    try:
        return str(ip_address(text))
    except ValueError:
        return text

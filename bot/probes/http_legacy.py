"""HTTP probing of one target: status, keyword, latency, and a typed failure reason.

This is the probe core; scheduling, regions, agents and the SSRF guard build on it. The body is
read only up to a cap, the timeout is total (aiohttp's default total is 300 s), and callers pass a
session created with ``trust_env=False`` so no proxy setting redirects a probe.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bot.model import Target

MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    ok: bool
    status: int | None
    latency_ms: float | None
    error: str | None  # timeout, refused, dns, tls, status, keyword, too_large, ...


async def probe_http(
    session: aiohttp.ClientSession, target: Target, *, seconds: float
) -> ProbeOutcome:
    started = time.perf_counter()
    limit = aiohttp.ClientTimeout(total=seconds, sock_connect=min(3.0, seconds))
    try:
        async with session.request(
            target.method, target.url, timeout=limit, allow_redirects=False
        ) as resp:
            body = await resp.content.read(MAX_BODY) if target.keyword else b""
            latency = (time.perf_counter() - started) * 1000
            expected = target.expect_status or tuple(range(200, 400))
            if resp.status not in expected:
                return ProbeOutcome(False, resp.status, latency, "status")
            if target.keyword and target.keyword.encode() not in body:
                return ProbeOutcome(False, resp.status, latency, "keyword")
            return ProbeOutcome(True, resp.status, latency, None)
    except TimeoutError:
        return ProbeOutcome(False, None, None, "timeout")
    except aiohttp.ClientConnectorCertificateError:
        return ProbeOutcome(False, None, None, "tls")
    except aiohttp.ClientConnectorDNSError:
        return ProbeOutcome(False, None, None, "dns")
    except aiohttp.ClientConnectorError:
        return ProbeOutcome(False, None, None, "refused")
    except (aiohttp.ClientError, asyncio.IncompleteReadError):
        return ProbeOutcome(False, None, None, "connection")

"""The guarded aiohttp session for probes: ``bot.ssrf.make_session`` plus connector options.

Probes need two connector options that ``make_session`` (which takes no connector arguments) cannot
pass: a source address (the demo's regions each leave from their own loopback address) and a fresh
connection per probe (``force_close``), so every probe really resolves, connects and handshakes:
a pooled keep-alive connection would hide a dead listener, a DNS change or a replaced certificate.
Tests also pass an ``ssl`` context trusting their own CA. Responses are ``PeerCertResponse``s,
which keep the peer certificate (see there why the connection itself cannot be asked later).

Until ``make_session`` accepts connector options, this builds the same session from the same
parts: ``make_connector`` (the socket-factory guard, public) and the hop middleware and redirect
cap that ``make_session`` installs (private names in ``bot.ssrf.session``; importing them rather
than copying them means a rename fails loudly instead of drifting). The probe tests check that the
hop re-check and the redirect cap are in force.
"""

from __future__ import annotations

import ssl
from typing import Any, Final

import aiohttp
from aiohttp.connector import Connection

from bot.ssrf import Policy, make_session

# RELIABILITY.md: ~3 s to connect, whatever the probe's total budget.
CONNECT_SECONDS: Final = 3.0


class PeerCertResponse(aiohttp.ClientResponse):
    """A response that remembers the verified peer certificate of its connection.

    aiohttp releases the connection as soon as the body has arrived, which for a small body is
    before ``session.request`` returns (``resp.connection`` is then ``None``), so the certificate
    is taken while the response starts, when the connection is still there.
    """

    peer_cert: dict[str, Any] | None = None  # ssl.SSLSocket.getpeercert()'s dict; None for http

    async def start(self, connection: Connection) -> aiohttp.ClientResponse:
        transport = connection.transport
        cert = None if transport is None else transport.get_extra_info("peercert")
        # Only a verified certificate is decoded into a dict, and probes always verify.
        self.peer_cert = cert if isinstance(cert, dict) and cert else None
        return await super().start(connection)


def client_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """aiohttp's limits for a probe whose budget is ``seconds`` (aiohttp's default is 300 s)."""
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, CONNECT_SECONDS))


def open_session(
    policy: Policy,
    *,
    timeout: float,
    local_addr: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> aiohttp.ClientSession:
    """A session whose every dial, hop and redirect goes through the SSRF guard.

    ``local_addr`` binds the source address (any port). ``ssl_context`` replaces the default
    verifying context (for a private CA); verification is never turned off here. Call it inside
    the running loop; the caller closes the session.
    """
    # A fresh connection per probe: a reused one would hide a dead listener or a new cert.
    return make_session(
        policy,
        timeout=client_timeout(timeout),
        response_class=PeerCertResponse,
        force_close=True,
        # No pool limit (aiohttp's default is 100): a probe queued for a pooled slot would
        # already be running its timeout and latency clock, so healthy targets "timed out"
        # under load (measured: 252 of 300 probes/s). run_probe bounds concurrency instead,
        # before either clock starts (ProbeContext.gate).
        limit=0,
        local_addr=None if local_addr is None else (local_addr, 0),
        ssl=True if ssl_context is None else ssl_context,
    )

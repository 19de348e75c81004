"""The probe session: what every http/https probe dials through, and nothing else.

A ``ProbeSession`` holds no connections: every probe opens a fresh one (a pooled keep-alive
connection would hide a dead listener, a DNS change or a replaced certificate), through the SSRF
guard (``bot.ssrf``, its verdicts remembered per session by ``bot.ssrf.memo.Verdicts``), from an
optional source address (the demo's regions each leave from their own loopback address), with one
verifying ``bot.probes.tls.TlsClient`` reused for every handshake (building one loads the CA
store: a few milliseconds; sharing it is safe, it holds no per-connection state and no sessions).

There is no proxy support at all, and no environment variable is read (RELIABILITY.md: a proxy
would resolve the name itself, past the check).
"""

from __future__ import annotations

import functools
import ssl
from typing import Final

from bot.probes.tls import TlsClient
from bot.ssrf import Policy
from bot.ssrf.memo import Verdicts

# RELIABILITY.md: ~3 s to connect, whatever the probe's total budget.
CONNECT_SECONDS: Final = 3.0


@functools.cache
def default_tls() -> TlsClient:
    """The process's verifying TLS client (system CAs, hostname check, TLS 1.2+)."""
    return TlsClient.like(None)


class ProbeSession:
    """The guard, TLS context, source address and connect limit shared by a context's probes.

    ``close`` only marks it closed (there is nothing to release); probing through a closed
    session is a bug and raises ``RuntimeError``, as an aiohttp session would.
    """

    __slots__ = ("closed", "connect_timeout", "local_addr", "tls", "verdicts")

    def __init__(
        self,
        policy: Policy,
        *,
        connect_timeout: float = CONNECT_SECONDS,
        local_addr: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # Verification is never switched off (RELIABILITY.md; the expiry warning needs it too):
        # TlsClient.like refuses a context that does not verify.
        self.tls = default_tls() if ssl_context is None else TlsClient.like(ssl_context)
        self.verdicts = Verdicts(policy)
        self.connect_timeout = connect_timeout
        self.local_addr = local_addr
        self.closed = False

    @property
    def policy(self) -> Policy:
        return self.verdicts.policy

    async def close(self) -> None:
        self.closed = True


def open_session(
    policy: Policy,
    *,
    timeout: float,
    local_addr: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeSession:
    """A session whose every dial, hop and redirect goes through the SSRF guard.

    ``timeout`` is the budget of the probes it serves: connecting (and the TLS handshake) gets
    at most ``CONNECT_SECONDS`` of it. ``local_addr`` binds the source address (any port).
    ``ssl_context`` replaces the default trust (for a private CA): its CA certificates, protocol
    floor, ciphers and checks are used (``TlsClient.like``); it must verify.
    """
    return ProbeSession(
        policy,
        connect_timeout=min(timeout, CONNECT_SECONDS),
        local_addr=local_addr,
        ssl_context=ssl_context,
    )

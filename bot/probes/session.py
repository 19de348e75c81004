"""The probe session: what every http/https probe dials through, and nothing else.

A ``ProbeSession`` holds no connections: every probe opens a fresh one (a pooled keep-alive
connection would hide a dead listener, a DNS change or a replaced certificate), through the SSRF
guard (``bot.ssrf``, its verdicts remembered per session by ``bot.ssrf.memo.Verdicts``), from an
optional source address (the demo's regions each leave from their own loopback address), with one
verifying ``ssl.SSLContext`` reused for every handshake (building one loads the CA store: about a
millisecond; sharing it is safe, a context holds no per-connection state).

There is no proxy support at all, and no environment variable is read (RELIABILITY.md: a proxy
would resolve the name itself, past the check).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Callable
from datetime import datetime
from typing import Final

from bot.ssrf import Policy
from bot.ssrf.memo import Verdicts

# RELIABILITY.md: ~3 s to connect, whatever the probe's total budget.
CONNECT_SECONDS: Final = 3.0
_CERT_MEMO_MAX: Final = 1024


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The process's verifying client context (system CAs, hostname check, TLS 1.2+)."""
    return ssl.create_default_context()


class ProbeSession:
    """The guard, TLS context, source address and connect limit shared by a context's probes.

    ``close`` only marks it closed (there is nothing to release); probing through a closed
    session is a bug and raises ``RuntimeError``, as an aiohttp session would.
    """

    __slots__ = ("_cert_expiry", "closed", "connect_timeout", "local_addr", "tls", "verdicts")

    def __init__(
        self,
        policy: Policy,
        *,
        connect_timeout: float = CONNECT_SECONDS,
        local_addr: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        tls = default_tls() if ssl_context is None else ssl_context
        # Verification is never switched off (RELIABILITY.md; the expiry warning needs it too).
        if tls.verify_mode is not ssl.CERT_REQUIRED or not tls.check_hostname:
            raise ValueError("probe TLS contexts must verify certificates and host names")
        self.verdicts = Verdicts(policy)
        self.connect_timeout = connect_timeout
        self.local_addr = local_addr
        self.tls = tls
        self.closed = False
        # DER certificate -> its notAfter: decoding the dict form costs ~25 µs per handshake,
        # and a target presents the same certificate probe after probe.
        self._cert_expiry: dict[bytes, datetime | None] = {}

    @property
    def policy(self) -> Policy:
        return self.verdicts.policy

    def expiry_of(self, der: bytes, decode: Callable[[], datetime | None]) -> datetime | None:
        """The ``notAfter`` of certificate ``der``: remembered, else ``decode()``-d once."""
        try:
            return self._cert_expiry[der]
        except KeyError:
            pass
        expires = decode()
        if len(self._cert_expiry) >= _CERT_MEMO_MAX:
            self._cert_expiry.clear()
        self._cert_expiry[der] = expires
        return expires

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
    ``ssl_context`` replaces the default verifying context (for a private CA); it must verify.
    """
    return ProbeSession(
        policy,
        connect_timeout=min(timeout, CONNECT_SECONDS),
        local_addr=local_addr,
        ssl_context=ssl_context,
    )

"""The http/https probe: method, expected status, keyword present or absent, latency, TLS expiry.

Rules, each from RELIABILITY.md or a choice written down here:

- Redirects are followed by the guarded session, at most ``policy.max_redirects`` (3), each hop
  re-checked; the final response's status is the one judged. A 4th redirect is
  ``too_many_redirects``. Unless the target expects a 3xx status: then the redirect itself is
  what is checked, and it is not followed.
- Latency is measured from the start of the probe to the final response's headers (so it includes
  the redirects, DNS, connect and TLS), not to the end of the body.
- No body is read unless a keyword must be checked. Then at most ``BODY_CAP`` (64 KiB) is read, and
  keywords are looked for (as UTF-8 bytes, case-sensitive) in that much only. When the answer
  would need the part beyond the cap, the probe fails with ``too_large``: a required ``keyword``
  not in the first 64 KiB of a longer body, or a ``keyword_absent`` not in the first 64 KiB of a
  longer body (absence cannot be shown). A required keyword found, or a forbidden one found,
  within the cap decides at once, whatever the body's size.
- For https the peer certificate (verified; verification is never switched off) gives
  ``cert_expires_at``, and a ``warning`` when it expires within ``ctx.tls_warn_days``.
"""

from __future__ import annotations

import errno
import logging
import ssl
import time
from datetime import UTC, datetime, timedelta
from typing import Final

import aiohttp

from bot.model import Target, utcnow
from bot.probes import messages
from bot.probes.base import Outcome, ProbeContext, Reason
from bot.probes.session import PeerCertResponse, client_timeout
from bot.ssrf import describe

log = logging.getLogger(__name__)

BODY_CAP: Final = 64 * 1024  # RELIABILITY.md: a capped body read


async def probe_http(target: Target, ctx: ProbeContext) -> Outcome:
    """Probe ``target`` (http or https) with ``ctx.session``; never raises for a failure."""
    follow = not any(300 <= code < 400 for code in target.expect_status)
    started = time.perf_counter()
    try:
        async with ctx.session.request(
            target.method,
            target.url,
            timeout=client_timeout(ctx.timeout),
            allow_redirects=follow,
        ) as resp:
            latency = (time.perf_counter() - started) * 1000
            expires = _cert_expiry(resp)
            warning = _expiry_warning(resp, expires, ctx.tls_warn_days)
            failure = await _judge(target, resp)
            reason, detail = failure if failure is not None else (None, warning)
            return Outcome(
                ok=failure is None,
                status=resp.status,
                latency_ms=latency,
                error=reason,
                detail=detail,  # when ok, the warning (if any): callers that show one line
                cert_expires_at=expires,
                warning=warning,
            )
    except TimeoutError:  # also aiohttp's ServerTimeoutError and ConnectionTimeoutError
        detail = messages.timed_out(target.url, ctx.timeout)
        return Outcome(False, error=Reason.TIMEOUT, detail=detail)
    except aiohttp.TooManyRedirects:
        detail = messages.too_many_redirects(target.url, ctx.policy.max_redirects)
        return Outcome(False, error=Reason.TOO_MANY_REDIRECTS, detail=detail)
    except (aiohttp.ClientError, OSError) as exc:
        reason, detail = _classify(exc, target.url)
        log.debug("http probe failed url=%s reason=%s error=%r", target.url, reason, exc)
        return Outcome(False, error=reason, detail=detail)


async def _judge(target: Target, resp: aiohttp.ClientResponse) -> tuple[Reason, str] | None:
    """Why the response fails the target's expectations, or ``None`` when it passes."""
    url = str(resp.url)
    expected = target.expect_status
    if (resp.status not in expected) if expected else not 200 <= resp.status < 400:
        return Reason.STATUS, messages.bad_status(resp.status, url, expected)
    if not target.keyword and not target.keyword_absent:
        return None
    head, longer = await _read_capped(resp.content, BODY_CAP)
    if target.keyword and target.keyword.encode() not in head:
        if longer:
            return Reason.TOO_LARGE, messages.keyword_beyond_cap(target.keyword, url, BODY_CAP)
        return Reason.KEYWORD, messages.keyword_missing(target.keyword, url)
    if target.keyword_absent:
        if target.keyword_absent.encode() in head:
            return Reason.KEYWORD, messages.keyword_present(target.keyword_absent, url)
        if longer:
            return Reason.TOO_LARGE, messages.keyword_beyond_cap(
                target.keyword_absent, url, BODY_CAP
            )
    return None


async def _read_capped(content: aiohttp.StreamReader, cap: int) -> tuple[bytes, bool]:
    """The first ``cap`` bytes of the body, and whether the body goes on past them.

    ``read(n)`` returns what has arrived (possibly less than ``n``), so loop; one byte beyond
    the cap is enough to know the body is longer, and nothing more is read.
    """
    buf = bytearray()
    while len(buf) <= cap:
        chunk = await content.read(cap + 1 - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf[:cap]), len(buf) > cap


def _cert_expiry(resp: aiohttp.ClientResponse) -> datetime | None:
    """``notAfter`` of the final hop's peer certificate; ``None`` for plain http.

    Known only for sessions from ``bot.probes.session.open_session`` (``PeerCertResponse``).
    """
    cert = resp.peer_cert if isinstance(resp, PeerCertResponse) else None
    not_after = None if cert is None else cert.get("notAfter")
    if not isinstance(not_after, str):
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)


def _expiry_warning(
    resp: aiohttp.ClientResponse, expires: datetime | None, warn_days: int
) -> str | None:
    if expires is None:
        return None
    now = utcnow()
    if expires - now >= timedelta(days=warn_days):
        return None
    return messages.cert_expiring(resp.url.host or str(resp.url), expires, now)


def _classify(exc: BaseException, url: str) -> tuple[Reason, str]:
    """The reason and sentence for a failed request (no response, or no usable one)."""
    blocked = describe(exc)  # the guard's reason, however deep aiohttp wrapped it
    if blocked is not None:
        return Reason.BLOCKED, messages.blocked(blocked)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        # "certificate has expired" reads better than the whole "[SSL: ...] (_ssl.c:1006)".
        why = getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
        return Reason.TLS, messages.tls_invalid(exc.host, why)
    if isinstance(exc, aiohttp.ClientSSLError):
        return Reason.TLS, messages.tls_failed(exc.host, exc.os_error)
    if isinstance(exc, aiohttp.ServerFingerprintMismatch):
        return Reason.TLS, messages.tls_failed(exc.host, "certificate fingerprint mismatch")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Reason.DNS, messages.unresolved(exc.host, exc.os_error.strerror or exc.os_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        where = f"{exc.host}:{exc.port}"
        # Happy eyeballs merges per-address errors into one OSError with their common errno.
        if exc.os_error.errno == errno.ECONNREFUSED:
            return Reason.REFUSED, messages.refused(where)
        return Reason.CONNECTION, messages.connection_failed(where, exc.os_error.strerror or exc)
    if isinstance(exc, aiohttp.RedirectClientError):
        return Reason.BLOCKED, messages.bad_redirect(url, exc)
    return Reason.CONNECTION, messages.connection_failed(url, str(exc) or type(exc).__name__)

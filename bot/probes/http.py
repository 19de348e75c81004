"""The http/https probe: method, expected status, keyword present or absent, latency, TLS expiry.

Rules, each from RELIABILITY.md or a choice written down here:

- Every hop (the target and each redirect) is checked by the SSRF guard before it is dialled,
  and every address dialled is checked at connect time (``bot.probes.dial``). Redirects are
  followed up to ``policy.max_redirects`` (3); the final response's status is the one judged. A
  4th redirect is ``too_many_redirects``. Unless the target expects a 3xx status: then the
  redirect itself is what is checked, and it is not followed.
- Every probe opens a fresh connection (and for https does a full, verified handshake); nothing
  is pooled, no proxy is ever used, no environment variable is read.
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
- The whole probe, redirects included, ends at ``ctx.timeout``; connecting and the TLS handshake
  of each hop get at most ``session.connect_timeout`` of it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from yarl import URL

from bot.model import Target, utcnow
from bot.probes import dial, h1, messages
from bot.probes.base import DEADLINE_HELD, Outcome, ProbeContext, Reason
from bot.probes.session import ProbeSession
from bot.ssrf import Blocked

log = logging.getLogger(__name__)

BODY_CAP: Final = 64 * 1024  # RELIABILITY.md: a capped body read
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})  # the ones aiohttp follows, too


@dataclass(frozen=True, slots=True)
class _Hop:
    """One URL made ready to request: parsed once, remembered per (method, URL)."""

    url: URL
    text: str  # how messages name it: yarl's normal form without credentials, as aiohttp's
    name: str  # host for people (IDNA decoded), for the certificate warning
    endpoint: dial.Endpoint
    request: bytes


@functools.lru_cache(maxsize=4096)
def _plan(method: str, url: str) -> _Hop:
    """Parse ``url`` (already passed by the guard) into what a request on it needs."""
    parsed = URL(url)
    host = parsed.raw_host or ""
    port = parsed.port or 0
    tls = parsed.scheme.lower() == "https"
    target = parsed.raw_path_qs or "/"
    credentials = None if parsed.user is None else (parsed.user, parsed.password or "")
    request = h1.request_bytes(
        method, target, parsed.host_port_subcomponent or host, credentials=credentials
    )
    return _Hop(
        parsed,
        str(parsed.with_user(None)),
        parsed.host or host,
        dial.Endpoint.of(host, port, tls),
        request,
    )


class _TooManyRedirects(Exception):
    pass


class _BadRedirect(Exception):
    """A Location that is not a URL probes can follow (``why``: the Location, or why not)."""


@dataclass(slots=True)
class _Answer:
    """The final hop's response: what ``_judge`` needs."""

    hop: _Hop
    status: int
    headers_at: float
    cert_expires_at: datetime | None
    body: tuple[bytes, bool] | None  # (first BODY_CAP bytes, longer) when a keyword needs it


async def probe_http(target: Target, ctx: ProbeContext) -> Outcome:
    """Probe ``target`` (http or https) through ``ctx.session``; never raises for a failure."""
    session = ctx.session
    if session.closed:
        raise RuntimeError("probe through a closed ProbeSession")
    started = time.perf_counter()
    try:
        if DEADLINE_HELD.get():  # run_probe's deadline is this probe's deadline
            answer = await _fetch(target, session, ctx)
        else:
            async with asyncio.timeout(ctx.timeout):
                answer = await _fetch(target, session, ctx)
    except TimeoutError:
        detail = messages.timed_out(target.url, ctx.timeout)
        return Outcome(False, error=Reason.TIMEOUT, detail=detail)
    except _TooManyRedirects:
        detail = messages.too_many_redirects(target.url, ctx.policy.max_redirects)
        return Outcome(False, error=Reason.TOO_MANY_REDIRECTS, detail=detail)
    except (
        Blocked,
        dial.Unresolved,
        dial.ConnectFailed,
        dial.TlsFailed,
        h1.BadResponse,
        _BadRedirect,
        OSError,
    ) as exc:
        reason, detail = _classify(exc, target.url)
        log.debug("http probe failed url=%s reason=%s error=%r", target.url, reason, exc)
        return Outcome(False, error=reason, detail=detail)
    latency = (answer.headers_at - started) * 1000
    expires = answer.cert_expires_at
    warning = None if expires is None else _expiry_warning(answer.hop, expires, ctx.tls_warn_days)
    failure = _judge(target, answer)
    error: Reason | None = None
    sentence = warning  # when ok, the warning (if any): callers that show one line
    if failure is not None:
        error, sentence = failure
    return Outcome(
        ok=failure is None,
        status=answer.status,
        latency_ms=latency,
        error=error,
        detail=sentence,
        cert_expires_at=expires,
        warning=warning,
    )


async def _fetch(target: Target, session: ProbeSession, ctx: ProbeContext) -> _Answer:
    """Request ``target``, following redirects unless a 3xx is expected; the final answer."""
    follow = not any(300 <= code < 400 for code in target.expect_status)
    wants_body = bool(target.keyword or target.keyword_absent)
    method = target.method.upper()
    url = target.url
    # RELIABILITY.md: ~3 s to connect (and shake hands) whatever the probe's total budget.
    limit = session.connect_timeout if session.connect_timeout < ctx.timeout else None
    redirects = 0
    while True:
        session.verdicts.check_url(url)  # the hop guard: scheme, port, IP-literal hosts
        hop = _plan(method, url)
        conn = await dial.connect(session, hop.endpoint, limit=limit)
        try:
            await conn.send(hop.request)
            resp = await h1.read_head(conn, body_cap=BODY_CAP)
            status = resp.status
            if follow and status in _REDIRECTS and resp.location:
                redirects += 1
                if redirects > ctx.policy.max_redirects:
                    raise _TooManyRedirects
                url = _next_url(hop, resp.location)
                if (status == 303 and method != "HEAD") or (
                    status in (301, 302) and method == "POST"
                ):
                    method = "GET"
                continue
            body = None
            if wants_body and method != "HEAD" and _status_ok(status, target.expect_status):
                body = await resp.read_body()
            elif wants_body:
                body = (b"", False)
            return _Answer(hop, status, resp.headers_at, conn.cert_expires_at, body)
        finally:
            conn.close()


def _next_url(hop: _Hop, location: bytes) -> str:
    text = location.decode("utf-8", "surrogateescape").strip()
    try:
        nxt = hop.url.join(URL(text))
    except (TypeError, ValueError) as exc:
        raise _BadRedirect(text) from exc
    if nxt.scheme not in ("http", "https"):
        raise _BadRedirect(text)
    return str(nxt)


def _status_ok(status: int, expected: tuple[int, ...]) -> bool:
    return status in expected if expected else 200 <= status < 400


def _judge(target: Target, answer: _Answer) -> tuple[Reason, str] | None:
    """Why the answer fails the target's expectations, or ``None`` when it passes."""
    url = answer.hop.text
    if not _status_ok(answer.status, target.expect_status):
        return Reason.STATUS, messages.bad_status(answer.status, url, target.expect_status)
    if answer.body is None:
        return None
    head, longer = answer.body
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


def _expiry_warning(hop: _Hop, expires: datetime, warn_days: int) -> str | None:
    now = utcnow()
    if expires - now >= timedelta(days=warn_days):
        return None
    return messages.cert_expiring(hop.name, expires, now)


def _classify(exc: BaseException, url: str) -> tuple[Reason, str]:
    """The reason and sentence for a failed request (no response, or no usable one)."""
    if isinstance(exc, Blocked):
        return Reason.BLOCKED, messages.blocked(exc.reason)
    if isinstance(exc, _BadRedirect):
        return Reason.BLOCKED, messages.bad_redirect(url, exc)
    if isinstance(exc, dial.Unresolved):
        return Reason.DNS, messages.unresolved(exc.host, exc.why)
    if isinstance(exc, dial.ConnectFailed):
        if exc.refused:
            return Reason.REFUSED, messages.refused(exc.where)
        return Reason.CONNECTION, messages.connection_failed(
            exc.where, exc.error.strerror or exc.error
        )
    if isinstance(exc, dial.TlsFailed):
        error = exc.error
        verify = getattr(error, "verify_message", None)
        if verify:
            # "certificate has expired" reads better than "[SSL: ...] (_ssl.c:1006)".
            return Reason.TLS, messages.tls_invalid(exc.host, verify)
        return Reason.TLS, messages.tls_failed(exc.host, error)
    return Reason.CONNECTION, messages.connection_failed(url, str(exc) or type(exc).__name__)

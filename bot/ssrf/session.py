"""SSRF guard, part 2: the aiohttp client every probe path uses, with the check at connect time.

``make_socket_factory`` is the real boundary: aiohttp (3.12+) calls it with the exact sockaddr it
is about to dial, for IP-literal URLs, DNS names, every redirect hop and every DNS answer, so a
rebinding resolver cannot swap the address after the check. ``make_session`` adds a resolver that
drops blocked answers (so errors stay typed), no proxies (``trust_env=False``), every redirect hop
re-checked and at most three redirects.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Final

import aiohttp
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.ssrf.addresses import Blocked, Policy, check_endpoint, check_url, short

# RELIABILITY.md: aiohttp's default total timeout is 300 s; probes use ~10 s, ~3 s to connect.
DEFAULT_TIMEOUT: Final = aiohttp.ClientTimeout(total=10, sock_connect=3)


def make_socket_factory(policy: Policy) -> Callable[[AddrInfoType], socket.socket]:
    """A ``TCPConnector(socket_factory=...)`` that refuses blocked sockaddrs.

    aiohappyeyeballs calls it with each ``(family, type, proto, canonname, sockaddr)``
    just before ``sock_connect(sock, sockaddr)``, so the address checked is the address
    dialled: IP literals (which skip the resolver), every DNS answer, every redirect
    hop. It raises ``Blocked`` before a socket exists.
    """

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise Blocked(f"address family {family!r} is not allowed for probes")
        check_endpoint(str(sockaddr[0]), int(sockaddr[1]), policy)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


class _GuardedResolver(AbstractResolver):
    """Drops DNS answers the policy refuses, and refuses a name with no allowed answer.

    Not the security boundary (the socket factory is, and it sees these same answers
    when they are dialled): it makes the error readable. Without it a name whose answers
    are all blocked (``::1`` and ``127.0.0.1``) fails inside aiohappyeyeballs as a
    merged "Multiple exceptions" ``OSError`` that is no longer a ``Blocked``.
    """

    def __init__(self, inner: AbstractResolver, policy: Policy) -> None:
        self._inner = inner
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        kept: list[ResolveResult] = []
        refused: list[Blocked] = []
        for answer in answers:
            try:
                check_endpoint(answer["host"], answer["port"], self._policy)
            except Blocked as exc:
                refused.append(exc)
            else:
                kept.append(answer)
        if refused and not kept:
            raise Blocked(f"{short(host)} resolves only to blocked addresses: {refused[0]}")
        return kept

    async def close(self) -> None:
        # The caller's resolver is the caller's to close, as with TCPConnector itself;
        # our default ThreadedResolver holds nothing.
        return None


def make_connector(policy: Policy, **kwargs: Any) -> aiohttp.TCPConnector:
    """A ``TCPConnector`` whose every dial goes through the guard; ``kwargs`` pass through.

    A ``resolver=`` is wrapped, not replaced. ``socket_factory=`` is refused: it is the guard.
    """
    if "socket_factory" in kwargs:
        raise TypeError("make_connector installs its own socket_factory (the SSRF guard)")
    inner = kwargs.pop("resolver", None) or aiohttp.ThreadedResolver()
    return aiohttp.TCPConnector(
        socket_factory=make_socket_factory(policy),
        resolver=_GuardedResolver(inner, policy),
        **kwargs,
    )


def _hop_guard(policy: Policy) -> aiohttp.ClientMiddlewareType:
    """Client middleware, run by aiohttp for the first request and every redirect hop."""

    async def middleware(
        request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        if request.proxy is not None:
            # RELIABILITY.md: a proxy would resolve the name itself, past the check.
            raise Blocked("probes may not go through a proxy")
        check_url(str(request.url), policy)
        return await handler(request)

    return middleware


def _redirect_limit(policy: Policy) -> aiohttp.TraceConfig:
    """Refuse redirect number ``policy.max_redirects + 1`` of any request.

    ``max_redirects`` is a per-request argument in aiohttp (there is no session default),
    and aiohttp raises when the count *reaches* it, so ``max_redirects=3`` follows only
    two. A trace context lives for one request across all its hops, so count here.
    """

    async def on_redirect(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestRedirectParams,
    ) -> None:
        ctx.ssrf_redirects = getattr(ctx, "ssrf_redirects", 0) + 1
        if ctx.ssrf_redirects > policy.max_redirects:
            response = params.response
            response.close()  # aiohttp has not released it yet; don't leak the connection
            raise aiohttp.TooManyRedirects(
                response.request_info,
                (response,),
                message=f"more than {policy.max_redirects} redirects",
            )

    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(on_redirect)
    return trace


def make_session(
    policy: Policy,
    *,
    timeout: aiohttp.ClientTimeout,
    response_class: type[aiohttp.ClientResponse] = aiohttp.ClientResponse,
    **connector_kwargs: Any,
) -> aiohttp.ClientSession:
    """The client session for user-supplied URLs (see ``DEFAULT_TIMEOUT``).

    ``trust_env=False`` ignores ``*_proxy`` variables and netrc (RELIABILITY.md); the
    middleware re-checks every hop's URL and refuses per-request proxies; the trace
    config caps redirects at ``policy.max_redirects``; the connector checks every
    address actually dialled. ``connector_kwargs`` (source address, TLS context,
    force_close) go to the guarded connector; none of them can turn a check off.
    """
    return aiohttp.ClientSession(
        connector=make_connector(policy, **connector_kwargs),
        timeout=timeout,
        trust_env=False,
        response_class=response_class,
        middlewares=(_hop_guard(policy),),
        trace_configs=[_redirect_limit(policy)],
    )


def describe(exc: BaseException) -> str | None:
    """The ``Blocked`` reason inside ``exc``, its causes or its group, else ``None``.

    aiohttp wraps the guard's error (``ClientConnectorError ... from Blocked``,
    ``ClientOSError ... from Blocked``), so the reason is found by walking the chain.
    """
    seen: set[int] = set()
    queue: deque[BaseException] = deque([exc])
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, Blocked):
            return current.reason
        if isinstance(current, BaseExceptionGroup):
            queue.extend(current.exceptions)
        queue.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None

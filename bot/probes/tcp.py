"""The tcp probe: ``tcp://host:port`` answers when a TCP connection to it can be opened.

The name is resolved with the loop's ``getaddrinfo``; each answer is then dialled through the SSRF
guard's socket factory (``bot.ssrf.make_socket_factory``), which checks the exact address and port
before a socket exists, as ``bot.probes.dial`` does for http probes. Answers are tried in order
until one connects; the socket is closed at once (nothing is sent).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from aiohappyeyeballs import AddrInfoType

from bot.model import Target
from bot.probes import messages
from bot.probes.base import Outcome, ProbeContext, Reason
from bot.ssrf import Blocked, make_socket_factory


async def probe_tcp(target: Target, ctx: ProbeContext) -> Outcome:
    """Open (and close) a TCP connection to ``target``; never raises for a failure."""
    parts = urlsplit(target.url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, or out of range
        host, port = None, None
    if not host or port is None:
        detail = messages.bad_target(target.url, "tcp://host:port")
        return Outcome(False, error=Reason.CONNECTION, detail=detail)
    where = f"{host}:{port}"
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(ctx.timeout):
            answers = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            blocked, failures = await _dial_first(loop, answers, ctx)
    except TimeoutError:
        return Outcome(False, error=Reason.TIMEOUT, detail=messages.timed_out(where, ctx.timeout))
    except socket.gaierror as exc:
        return Outcome(False, error=Reason.DNS, detail=messages.unresolved(host, exc.strerror))
    if not blocked and not failures:
        return Outcome(True, latency_ms=(time.perf_counter() - started) * 1000)
    if not failures:
        return Outcome(False, error=Reason.BLOCKED, detail=messages.blocked(blocked[0].reason))
    if all(exc.errno == errno.ECONNREFUSED for exc in failures):
        return Outcome(False, error=Reason.REFUSED, detail=messages.refused(where))
    why = failures[0].strerror or failures[0]
    return Outcome(False, error=Reason.CONNECTION, detail=messages.connection_failed(where, why))


async def _dial_first(
    loop: asyncio.AbstractEventLoop,
    answers: Sequence[AddrInfoType],
    ctx: ProbeContext,
) -> tuple[list[Blocked], list[OSError]]:
    """Dial ``answers`` in order until one connects: ``([], [])`` then, else what went wrong."""
    factory = make_socket_factory(ctx.policy)
    blocked: list[Blocked] = []
    failures: list[OSError] = []
    for answer in answers:
        try:
            sock = factory(answer)
        except Blocked as exc:
            blocked.append(exc)
            continue
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, answer[4])
        except OSError as exc:
            failures.append(exc)
        else:
            return [], []
        finally:
            sock.close()
    if not answers:
        failures.append(OSError(errno.EHOSTUNREACH, "no address to connect to"))
    return blocked, failures

"""A probe's connection: resolve, check with the SSRF guard, connect, TLS handshake; fd waits.

The guard's connect-time rule (RELIABILITY.md: check the address actually dialled) holds by
construction: every sockaddr comes from ``_addresses``, is checked by the session's guard and is
then handed, the same tuple, to ``connect``; this module is the only place a probe socket is
made. IP-literal hosts skip the resolver and its thread pool (the address is the checked one).
A DNS name's answers are tried in order (no happy eyeballs: a probe wants to know whether the
target answers, not the fastest path to it); blocked answers are skipped, and a name with only
blocked answers is refused with the guard's reason.

Sockets are non-blocking and driven with ``add_reader``/``add_writer`` on their file descriptor,
not through asyncio transports: a probe sends one request and reads one response, and skipping
the transport and protocol objects (and, for TLS, asyncio's pure-Python SSL protocol layer) is
what makes a probe cheap (benchmarks/RESULTS.md, "Probe throughput"); OpenSSL reads and writes
the socket itself. TLS is ``bot.probes.tls`` (pyOpenSSL on a current OpenSSL: why, and what it
checks, is told there).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address

from bot.probes import tls
from bot.probes.session import ProbeSession
from bot.ssrf import Blocked, parse_host
from bot.ssrf.addresses import short

RECV_SIZE = 65536
_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_AGAIN = (BlockingIOError, InterruptedError, tls.WantRead)


class Unresolved(Exception):
    """The host name does not resolve (``why``: the resolver's words)."""

    def __init__(self, host: str, why: object) -> None:
        super().__init__(f"{host}: {why}")
        self.host = host
        self.why = why


class ConnectFailed(Exception):
    """No allowed address of ``where`` accepted a connection; ``error`` is the last OSError.

    ``refused`` is true when every attempt was refused (nothing listening anywhere).
    """

    def __init__(self, where: str, error: OSError, *, refused: bool) -> None:
        super().__init__(f"{where}: {error}")
        self.where = where
        self.error = error
        self.refused = refused


class TlsFailed(Exception):
    """The TLS handshake with ``host`` failed: a bad certificate, or no common protocol.

    ``error.verify_message``: why the certificate was refused (``None``: not a certificate).
    """

    def __init__(self, host: str, error: tls.HandshakeFailed) -> None:
        super().__init__(f"{host}: {error}")
        self.host = host
        self.error = error


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a hop connects: host as in the URL, port, TLS or not, and (IP literal) the address."""

    host: str  # yarl's raw_host: IDNA-encoded, IPv6 without brackets
    port: int
    tls: bool
    literal: tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]] | None

    @classmethod
    def of(cls, host: str, port: int, tls: bool) -> Endpoint:
        addr = parse_host(host)
        if addr is None:
            return cls(host, port, tls, None)
        # Dial the address the guard parsed (inet_aton forms such as 2130706433 included), so
        # the checked address and the dialled one are one and the same.
        if isinstance(addr, IPv4Address):
            return cls(host, port, tls, (socket.AF_INET, (str(addr), port)))
        return cls(host, port, tls, (socket.AF_INET6, (str(addr), port, 0, 0)))

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


class Connection:
    """One connected (and, for https, handshaken) non-blocking socket."""

    __slots__ = ("cert_expires_at", "fd", "loop", "sock", "stream", "tls")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        stream: tls.TlsStream | None = None,
        cert_expires_at: datetime | None = None,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.tls = stream
        # What send and recv go through: the TLS stream for https, the socket itself for http.
        self.stream: tls.TlsStream | socket.socket = sock if stream is None else stream
        self.cert_expires_at = cert_expires_at

    async def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.stream.send(view)
            except (BlockingIOError, InterruptedError, tls.WantWrite):
                await writable(self.loop, self.fd)
                continue
            except tls.WantRead:
                await readable(self.loop, self.fd)
                continue
            view = view[sent:]

    async def recv(self, *, wait_first: bool = False) -> bytes:
        """The next bytes (``b""`` at the end). ``wait_first``: nothing can be there yet."""
        if wait_first and not self._buffered():
            await readable(self.loop, self.fd)
        while True:
            try:
                return self.stream.recv(RECV_SIZE)
            except _AGAIN:
                await readable(self.loop, self.fd)
            except tls.WantWrite:
                await writable(self.loop, self.fd)

    def _buffered(self) -> bool:
        return self.tls is not None and self.tls.pending() > 0

    def close(self) -> None:
        # No TLS close_notify and no lingering: the probe is over, the peer learns it from FIN.
        self.sock.close()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def readable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut = loop.create_future()
    loop.add_reader(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def writable(loop: asyncio.AbstractEventLoop, fd: int) -> None:
    fut = loop.create_future()
    loop.add_writer(fd, _wake, fut)
    try:
        await fut
    finally:
        loop.remove_writer(fd)


async def connect(session: ProbeSession, endpoint: Endpoint, *, limit: float | None) -> Connection:
    """A connection to ``endpoint`` through the guard; raises ``Blocked``, ``Unresolved``,
    ``ConnectFailed``, ``TlsFailed`` or ``TimeoutError``.

    ``limit``: seconds for connecting and the TLS handshake together (``None``: the caller's
    deadline is the only one). Its timer is armed only when there is something to wait for:
    a connect that completes at once (loopback, LAN) costs none.
    """
    loop = asyncio.get_running_loop()
    deadline = None if limit is None else loop.time() + limit
    refused: list[Blocked] = []
    errors: list[OSError] = []
    for family, sockaddr in await _addresses(loop, endpoint):
        try:
            if family not in _FAMILIES:
                raise Blocked(f"address family {family!r} is not allowed for probes")
            session.verdicts.check_endpoint(sockaddr[0], sockaddr[1])
        except Blocked as exc:
            refused.append(exc)
            continue
        try:
            sock = await _connect(loop, family, sockaddr, session.local_addr, deadline)
        except TimeoutError:
            raise  # the connect limit: a timeout, not a refusal (TimeoutError is an OSError)
        except OSError as exc:
            errors.append(exc)
            continue
        if not endpoint.tls:
            return Connection(loop, sock)
        return await _handshake(loop, sock, session, endpoint, deadline)
    if errors:
        refused_all = all(e.errno == errno.ECONNREFUSED for e in errors)
        raise ConnectFailed(endpoint.where, errors[-1], refused=refused_all)
    if endpoint.literal is None and refused:
        raise Blocked(f"{short(endpoint.host)} resolves only to blocked addresses: {refused[0]}")
    if refused:
        raise refused[0]
    raise Unresolved(endpoint.host, "no addresses")


async def _addresses(
    loop: asyncio.AbstractEventLoop, endpoint: Endpoint
) -> list[tuple[socket.AddressFamily, tuple[str, int] | tuple[str, int, int, int]]]:
    if endpoint.literal is not None:
        return [endpoint.literal]
    try:
        infos = await loop.getaddrinfo(
            endpoint.host, endpoint.port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )
    except socket.gaierror as exc:
        raise Unresolved(endpoint.host, exc.strerror or exc) from exc
    return [(family, sockaddr) for family, _, _, _, sockaddr in infos]  # type: ignore[misc]


async def _connect(
    loop: asyncio.AbstractEventLoop,
    family: socket.AddressFamily,
    sockaddr: tuple[str, int] | tuple[str, int, int, int],
    local_addr: str | None,
    deadline: float | None,
) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if local_addr is not None:
            sock.bind((local_addr, 0))
        code = sock.connect_ex(sockaddr)
        if code in (errno.EINPROGRESS, errno.EINTR):
            if _established(sock):
                return sock
            async with _within(deadline):
                await writable(loop, sock.fileno())
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
    except BaseException:
        sock.close()
        raise
    return sock


def _within(deadline: float | None) -> AbstractAsyncContextManager[object]:
    return nullcontext() if deadline is None else asyncio.timeout_at(deadline)


def _established(sock: socket.socket) -> bool:
    """Whether a connect in progress has already completed (loopback and LAN peers often have).

    Linux answers ``getpeername`` only once the handshake is done (``ENOTCONN`` in SYN_SENT or
    after a refusal), so one cheap call can spare a wait for writability and a loop turn.
    """
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


async def _handshake(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    session: ProbeSession,
    endpoint: Endpoint,
    deadline: float | None,
) -> Connection:
    host = endpoint.host
    fd = sock.fileno()
    try:
        # The name (or IP address) the certificate must match, and SNI for a name.
        stream = session.tls.start(sock, host.rstrip("."))
        async with _within(deadline):
            while True:
                try:
                    stream.handshake()
                    break
                except tls.WantRead:
                    await readable(loop, fd)
                except tls.WantWrite:
                    await writable(loop, fd)
        expires = stream.not_after()
    except tls.HandshakeFailed as exc:
        sock.close()
        raise TlsFailed(host, exc) from exc
    except TimeoutError:
        sock.close()
        raise
    except OSError as exc:  # reset or closed mid-handshake: the connection failed, not TLS
        sock.close()
        raise ConnectFailed(endpoint.where, exc, refused=False) from exc
    except BaseException:
        sock.close()
        raise
    return Connection(loop, sock, stream, expires)

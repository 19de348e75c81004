"""Loopback targets for the probe tests: an aiohttp app, TLS contexts, canary listeners.

Everything listens on 127.0.0.x with port 0; nothing here resolves or contacts a public name.
The fixtures that start and stop these live in ``conftest.py``; tests import the helpers from
here (this directory is on ``sys.path`` under pytest's default import mode).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass, field

import trustme
from aiohttp import web

from bot.ssrf import Policy

LOOPBACK = Policy.from_config(["127.0.0.0/8"])
KEYWORD = "needle-7f3a"
FILLER = b"x" * (200 * 1024)  # well past the 64 KiB cap


@dataclass
class Site:
    """A running loopback app: its base URL and what it saw."""

    base: str = ""
    methods: list[str] = field(default_factory=list)
    remotes: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)  # client ports: one per connection


def make_app(site: Site, never: asyncio.Event) -> web.Application:
    """The test app; ``never`` is an event nobody sets (handlers that hang wait on it)."""

    def record(request: web.Request) -> None:
        site.methods.append(request.method)
        site.remotes.append(request.remote or "")
        peer = None if request.transport is None else request.transport.get_extra_info("peername")
        site.ports.append(peer[1] if peer else 0)

    async def ok(request: web.Request) -> web.Response:
        record(request)
        return web.Response(text=f"hello {KEYWORD} world")

    async def status(request: web.Request) -> web.Response:
        record(request)
        return web.Response(status=int(request.match_info["code"]), text="status page")

    async def hang(request: web.Request) -> web.Response:
        await never.wait()  # the probe's deadline must end the wait
        return web.Response(text="too late")

    async def stall_body(request: web.Request) -> web.StreamResponse:
        # Headers at once, then a body that never finishes: a keyword check must time out.
        resp = web.StreamResponse()
        resp.content_length = 100
        await resp.prepare(request)
        await resp.write(b"partial")
        await never.wait()
        return resp

    async def redirect(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        if left == 0:
            return web.Response(text=f"arrived {KEYWORD}")
        raise web.HTTPFound(f"/redirect/{left - 1}")

    async def redirect_to(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def big(request: web.Request) -> web.Response:
        where = request.match_info["where"]
        if where == "start":
            return web.Response(body=KEYWORD.encode() + FILLER)
        if where == "end":
            return web.Response(body=FILLER + KEYWORD.encode())
        return web.Response(body=FILLER)

    async def small(request: web.Request) -> web.Response:
        return web.Response(body=b"y" * 1000)

    app = web.Application()
    app.router.add_get("/ok", ok)  # also answers HEAD
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/hang", hang)
    app.router.add_get("/stall-body", stall_body)
    app.router.add_get("/redirect/{n}", redirect)
    app.router.add_get("/redirect-to", redirect_to)
    app.router.add_get("/big/{where}", big)
    app.router.add_get("/small", small)
    return app


def server_tls(cert: trustme.LeafCert) -> ssl.SSLContext:
    """A server context presenting ``cert``."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return ctx


@dataclass
class Canary:
    """A loopback listener that records the peer of every connection it accepts."""

    host: str
    port: int = 0
    peers: list[tuple[str, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def accepted(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.peers.append(writer.get_extra_info("peername")[:2])
        self.changed.set()
        writer.close()

    async def accepted_before_now(self) -> int:
        """How many connections were accepted before a connection made now.

        The listener accepts in order, so once our own connection is accepted, any earlier one
        (e.g. from a probe that should have been blocked) has been counted: no sleeping.
        """
        _, writer = await asyncio.open_connection(self.host, self.port)
        own = writer.get_extra_info("sockname")[:2]
        while own not in self.peers:
            self.changed.clear()
            await self.changed.wait()
        writer.close()
        await writer.wait_closed()
        return self.peers.index(own)


def closed_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on: bound (so the OS picked a free one), then closed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A plain (blocking) canary listener, for tests that run their own event loop."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(8)
    listener.settimeout(5)
    return listener


def accepted_before_now(listener: socket.socket) -> int:
    """``Canary.accepted_before_now`` for a plain listener: connect, accept up to our own."""
    with socket.create_connection(listener.getsockname()[:2]) as own:
        mine = own.getsockname()[:2]
        count = 0
        while True:
            conn, peer = listener.accept()
            conn.close()
            if peer[:2] == mine:
                return count
            count += 1

"""HTTP/1.1 for probes: one request on a fresh connection, the response head, a capped body.

Responses are parsed by ``httptools`` (llhttp, the parser Node.js uses), which handles the
framings (``Content-Length``, chunked, and a body delimited by the connection closing) and refuses
malformed input; anything it refuses, a head over ``MAX_HEAD`` and a body cut short all become a
``BadResponse``, never another exception. Requests say ``Connection: close`` (every probe opens a
fresh connection) and ``Accept-Encoding: identity`` (keywords are matched against the body as
sent); a gzip or deflate body sent anyway is inflated, up to the cap, as aiohttp did.
"""

from __future__ import annotations

import base64
import re
import time
import zlib
from typing import Final

import httptools

from bot.probes.dial import Connection

MAX_HEAD: Final = 64 * 1024  # status line and headers; aiohttp allowed 8 KiB per line
USER_AGENT: Final = "outagebot-probe/1"
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_SAFE_TARGET: Final = re.compile(r"[!-~]+")  # visible ASCII: no spaces, CR or LF
_GZIP: Final = {b"gzip": 16 + zlib.MAX_WBITS, b"x-gzip": 16 + zlib.MAX_WBITS}


class BadResponse(Exception):
    """The peer's answer is not a usable HTTP/1.1 response; the text says how, for people."""


def request_bytes(
    method: str, target: str, host: str, *, credentials: tuple[str, str] | None = None
) -> bytes:
    """The request head. ``target`` is the origin form (path and query), ``host`` the Host value,
    ``credentials`` the URL's user and password (sent as Basic auth, as aiohttp did).

    Raises ``ValueError`` for a method or URL part that could smuggle a header (yarl has already
    percent-encoded the URL, so this only guards against a bug upstream).
    """
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"not an HTTP method: {method!r}")
    if not _SAFE_TARGET.fullmatch(target) or not _SAFE_TARGET.fullmatch(host):
        raise ValueError(f"unsafe request target or host: {target!r} {host!r}")
    auth = ""
    if credentials is not None:
        token = base64.b64encode(":".join(credentials).encode()).decode("ascii")
        auth = f"Authorization: Basic {token}\r\n"
    return (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n{auth}"
        "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


class _State:
    """httptools callbacks for one response: the head's facts and the first bytes of the body."""

    __slots__ = (
        "body",
        "broken",
        "cap",
        "complete",
        "encoding",
        "framed",
        "head_done",
        "location",
    )

    def __init__(self) -> None:
        self.body = bytearray()
        self.broken: BadResponse | None = None  # the body is malformed (the head was fine)
        self.cap = 0  # body bytes kept (once past it, nothing more is)
        self.complete = False
        self.encoding: bytes | None = None
        self.framed = False  # Content-Length or chunked; else the body ends when the peer closes
        self.head_done = False
        self.location: bytes | None = None

    def on_message_begin(self) -> None:
        # A new message: after an interim 1xx answer, the real one starts from scratch.
        self.body.clear()
        self.complete = False
        self.encoding = None
        self.framed = False
        self.head_done = False
        self.location = None

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.lower()
        if key == b"location":
            self.location = value
        elif key == b"content-length":
            self.framed = True
        elif key == b"transfer-encoding":
            self.framed = self.framed or b"chunked" in value.lower()
        elif key == b"content-encoding":
            self.encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        if len(self.body) <= self.cap:
            self.body += body

    def on_message_complete(self) -> None:
        if self.head_done:
            self.complete = True


class Response:
    """A response whose head has arrived; its connection stays the caller's to close."""

    __slots__ = ("_conn", "_parser", "_state", "headers_at", "location", "status")

    def __init__(
        self, conn: Connection, parser: httptools.HttpResponseParser, state: _State
    ) -> None:
        self._conn = conn
        self._parser = parser
        self._state = state
        self.status = parser.get_status_code()
        self.location = state.location
        self.headers_at = time.perf_counter()

    async def read_body(self) -> tuple[bytes, bool]:
        """The first ``body_cap`` bytes of the (decoded) body, and whether it goes on past them.

        Reads no further than needed to know: one byte past the cap is enough.
        """
        state = self._state
        if self.status == 101:
            return b"", False  # the connection now speaks another protocol: no HTTP body
        cap = state.cap
        decoder = _decoder(state.encoding)
        if decoder is not None:
            # Keep every compressed byte: each read is inflated (and dropped) before the next.
            state.cap = 1 << 30
        out = bytearray()
        while True:
            if decoder is not None and state.body:
                out += _inflate(decoder, bytes(state.body), cap + 1 - len(out))
                state.body.clear()
            body = state.body if decoder is None else out
            if state.broken is not None:
                raise state.broken
            if len(body) > cap or state.complete:
                return bytes(body[:cap]), len(body) > cap
            data = await self._conn.recv()
            if not data:
                if state.framed:
                    raise BadResponse("the connection closed before the body ended")
                state.complete = True  # close-delimited: the end of the stream ends the body
                continue
            _feed(self._parser, state, data)


async def read_head(conn: Connection, *, body_cap: int) -> Response:
    """Read until the final response head (1xx interim responses are skipped).

    ``body_cap``: how much of the body ``Response.read_body`` may return later.
    """
    state = _State()
    state.cap = body_cap
    parser = httptools.HttpResponseParser(state)
    seen = 0
    data = await conn.recv(wait_first=True)
    while True:
        if not data:
            raise BadResponse("the server closed the connection without an HTTP response")
        seen += len(data)
        _feed(parser, state, data)
        # "100 Continue" and friends are interim: the real answer follows on this connection.
        # 101 Switching Protocols is final (what follows is no longer HTTP).
        if state.head_done:
            status = parser.get_status_code()
            if status == 101 or not 100 <= status < 200:
                return Response(conn, parser, state)
        if seen > MAX_HEAD:
            raise BadResponse(f"the response head is larger than {MAX_HEAD // 1024} KiB")
        data = await conn.recv()


def _feed(parser: httptools.HttpResponseParser, state: _State, data: bytes) -> None:
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        return  # 101 Switching Protocols: the head is complete, and nothing after it is HTTP
    except httptools.HttpParserError as exc:
        if state.complete:
            return  # bytes after a complete answer (a stray CRLF, say): the answer stands
        why = str(exc) or type(exc).__name__
        broken = BadResponse(f"not a valid HTTP/1.1 response ({why})")
        if not state.head_done:
            raise broken from exc
        # A sound head with a broken body: only a probe that reads the body fails.
        broken.__cause__ = exc
        state.broken = broken


def _decoder(encoding: bytes | None) -> zlib._Decompress | None:
    if encoding is None or encoding == b"identity":
        return None
    if encoding in _GZIP:
        return zlib.decompressobj(_GZIP[encoding])
    if encoding == b"deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped (auto) per RFC 9110
    return None  # an encoding we cannot undo: keywords are looked for in the bytes as sent


def _inflate(decoder: zlib._Decompress, data: bytes, room: int) -> bytes:
    if room <= 0:
        return b""
    try:
        return decoder.decompress(data, room)
    except zlib.error as exc:
        raise BadResponse(f"the compressed body is corrupt ({exc})") from exc

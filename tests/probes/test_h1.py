"""The lean HTTP/1.1 engine against loopback servers that answer with exact bytes.

Framings (Content-Length, chunked, close-delimited), answers that never end, heads that never
end, malformed answers, interim 1xx answers, compressed bodies: each is a typed failure or a
pass, never an exception, and a probe never waits for a keep-alive connection to close.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme
from probe_targets import KEYWORD, server_tls

from bot.model import Target
from bot.probes import run_probe
from bot.probes.base import ProbeContext, Reason
from bot.probes.http import probe_http

MakeContext = Callable[..., ProbeContext]
Respond = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Raw:
    """A loopback server whose handler writes exactly what the test says."""

    base: str = ""
    requests: list[bytes] = field(default_factory=list)


@pytest.fixture
async def raw() -> AsyncIterator[Callable[..., Awaitable[Raw]]]:
    servers: list[asyncio.Server] = []
    handlers: set[asyncio.Task[None]] = set()

    async def start(
        respond: Respond, *, tls: ssl.SSLContext | None = None, wait_request: bool = True
    ) -> Raw:
        site = Raw()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            try:
                if wait_request:
                    site.requests.append(await reader.readuntil(b"\r\n\r\n"))
                await respond(writer)
            except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
                pass  # the probe hung up first, as it may
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        site.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        return site

    yield start
    for task in handlers:
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    for server in servers:
        server.close()
        await server.wait_closed()


def answer(data: bytes, *, hang: bool = False) -> Respond:
    """Write ``data``; then close, or (``hang``) keep the connection open and silent."""

    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        if hang:
            await asyncio.Event().wait()  # until the probe hangs up or the test ends

    return respond


def web(url: str, **kwargs: object) -> Target:
    return Target("web", url, **kwargs)  # type: ignore[arg-type]


def chunked(*parts: bytes) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"


NEEDLE = KEYWORD.encode()


async def test_content_length_body_and_keep_alive_not_awaited(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    # The server ignores "Connection: close" and keeps the connection open: a complete
    # Content-Length body ends the probe all the same.
    body = b"hello " + NEEDLE
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    site = await raw(answer(data, hang=True))
    outcome = await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())
    assert outcome.ok and outcome.status == 200
    request = site.requests[0]
    assert request.startswith(b"GET / HTTP/1.1\r\n") and b"\r\nConnection: close\r\n" in request


async def test_chunked_body_with_the_keyword_split_across_chunks(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    site = await raw(answer(chunked(b"abc " + NEEDLE[:4], NEEDLE[4:] + b" xyz"), hang=True))
    assert (await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())).ok
    missing = await probe_http(web(f"{site.base}/", keyword="absent-word"), context())
    assert missing.error is Reason.KEYWORD


async def test_close_delimited_body(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    # No Content-Length, not chunked: the body is whatever comes before the server closes.
    site = await raw(answer(b"HTTP/1.1 200 OK\r\n\r\nsome text " + NEEDLE + b" more"))
    ctx = context()
    assert (await probe_http(web(f"{site.base}/", keyword=KEYWORD), ctx)).ok
    gone = await probe_http(web(f"{site.base}/", keyword_absent=KEYWORD), ctx)
    assert gone.error is Reason.KEYWORD
    clean = await probe_http(web(f"{site.base}/", keyword_absent="maintenance"), ctx)
    assert clean.ok


async def test_a_body_cut_short_is_a_connection_failure(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    site = await raw(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this"))
    url = f"{site.base}/"
    outcome = await probe_http(web(url, keyword=KEYWORD), context())
    assert not outcome.ok and outcome.error is Reason.CONNECTION
    assert outcome.detail == (
        f"the connection to {url} failed: the connection closed before the body ended"
    )


async def test_an_endless_chunked_body_stops_at_the_cap(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    sent = 0

    async def endless(writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 8192
        while True:  # until the probe hangs up
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            await writer.drain()

    site = await raw(endless)
    outcome = await probe_http(web(f"{site.base}/", keyword=KEYWORD), context(timeout=5))
    assert outcome.error is Reason.TOO_LARGE and outcome.status == 200
    found_early = await probe_http(web(f"{site.base}/", keyword_absent="y"), context(timeout=5))
    assert found_early.error is Reason.TOO_LARGE  # absence past 64 KiB cannot be shown


async def test_an_endless_head_is_refused(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    async def endless(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        while True:
            writer.write(b"X-Filler: " + b"a" * 1000 + b"\r\n")
            await writer.drain()

    site = await raw(endless)
    outcome = await probe_http(web(f"{site.base}/"), context(timeout=5))
    assert outcome.error is Reason.CONNECTION
    assert outcome.detail is not None and "larger than 64 KiB" in outcome.detail


@pytest.mark.parametrize(
    "data",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"\x16\x03\x01\x00\x05hello",
    ],
)
async def test_malformed_answers_are_typed_failures(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext, data: bytes
) -> None:
    site = await raw(answer(data))
    url = f"{site.base}/"
    outcome = await run_probe(web(url, keyword=KEYWORD), context())
    assert not outcome.ok and outcome.error is Reason.CONNECTION and outcome.status is None
    assert outcome.detail is not None and outcome.detail.startswith(f"the connection to {url}")
    assert "unexpectedly" not in outcome.detail  # a typed failure, not a crash


async def test_malformed_chunked_body_is_a_typed_failure(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    site = await raw(answer(data))
    outcome = await run_probe(web(f"{site.base}/", keyword=KEYWORD), context())
    assert outcome.error is Reason.CONNECTION and outcome.status is None
    assert outcome.detail is not None and "not a valid HTTP/1.1 response" in outcome.detail


async def test_an_answer_sent_one_byte_at_a_time(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = chunked(NEEDLE)

    async def trickle(writer: asyncio.StreamWriter) -> None:
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()

    site = await raw(trickle)
    assert (await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())).ok


async def test_interim_100_continue_is_skipped(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n"
    site = await raw(answer(data))
    outcome = await probe_http(web(f"{site.base}/"), context())
    assert outcome.error is Reason.STATUS and outcome.status == 503


async def test_a_gzip_body_sent_unasked_is_inflated(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    body = gzip.compress(b"start " + NEEDLE + b" end")
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)
    site = await raw(answer(data + body))
    assert (await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())).ok
    assert b"\r\nAccept-Encoding: identity\r\n" in site.requests[0]


async def test_a_corrupt_gzip_body_is_a_typed_failure(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot gzip!!"
    site = await raw(answer(data))
    outcome = await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())
    assert outcome.error is Reason.CONNECTION
    assert outcome.detail is not None and "compressed body is corrupt" in outcome.detail


@pytest.mark.parametrize(
    ("method", "data"),
    [
        # HEAD: a Content-Length but no body follows; the probe must not wait for one.
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ],
)
async def test_no_body_means_an_empty_body(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext, method: str, data: bytes
) -> None:
    site = await raw(answer(data, hang=True))
    outcome = await probe_http(web(f"{site.base}/", method=method, keyword=KEYWORD), context())
    assert outcome.error is Reason.KEYWORD


async def test_a_failing_status_is_judged_without_reading_the_body(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    # A 503 whose body never arrives: the status decides; waiting for the body would time out.
    site = await raw(answer(b"HTTP/1.1 503 Oops\r\nContent-Length: 50\r\n\r\n", hang=True))
    outcome = await probe_http(web(f"{site.base}/", keyword=KEYWORD), context(timeout=5))
    assert outcome.error is Reason.STATUS and outcome.status == 503


async def test_a_server_that_never_answers_tls_times_out(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext, trusting: ssl.SSLContext
) -> None:
    # Accepts the TCP connection, then stays silent: the handshake must not outlive the probe.
    async def silent(writer: asyncio.StreamWriter) -> None:
        await asyncio.Event().wait()

    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        url = f"https://127.0.0.1:{port}/"
        outcome = await probe_http(web(url), context(timeout=0.5, ssl_context=trusting))
    finally:
        server.close()
    assert outcome.error is Reason.TIMEOUT
    assert outcome.detail == f"no answer from {url} within 0.5 s"


async def test_https_to_a_plain_http_server_is_tls(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext, trusting: ssl.SSLContext
) -> None:
    # Answers at once, as a plain HTTP server answers a TLS ClientHello.
    bad = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    site = await raw(answer(bad), wait_request=False)
    url = site.base.replace("http://", "https://") + "/"
    outcome = await probe_http(web(url), context(ssl_context=trusting))
    assert outcome.error is Reason.TLS and outcome.status is None
    assert outcome.detail is not None
    assert outcome.detail.startswith("the TLS handshake with 127.0.0.1 failed")


async def test_tls_redirect_keeps_the_final_hops_certificate(
    raw: Callable[..., Awaitable[Raw]],
    context: MakeContext,
    ca: trustme.CA,
    trusting: ssl.SSLContext,
) -> None:
    tls = server_tls(ca.issue_cert("127.0.0.1"))
    final = await raw(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), tls=tls)
    hop = b"HTTP/1.1 301 Moved\r\nLocation: %s/x\r\nContent-Length: 0\r\n\r\n" % final.base.encode()
    first = await raw(answer(hop))
    outcome = await probe_http(web(f"{first.base}/"), context(ssl_context=trusting))
    assert outcome.ok and outcome.status == 200 and outcome.cert_expires_at is not None
    assert final.requests[0].startswith(b"GET /x HTTP/1.1\r\n")


async def test_a_bad_location_is_blocked(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = b"HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n"
    site = await raw(answer(data))
    outcome = await probe_http(web(f"{site.base}/"), context())
    assert outcome.error is Reason.BLOCKED
    assert (
        outcome.detail is not None and "redirects to a URL probes may not follow" in outcome.detail
    )


async def test_a_header_smuggling_method_sends_nothing(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    site = await raw(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    target = web(f"{site.base}/", method="GET / HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET")
    outcome = await run_probe(target, context())
    assert not outcome.ok
    assert site.requests == []


async def test_failures_leave_no_socket_open(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext, trusting: ssl.SSLContext
) -> None:
    silent = await raw(answer(b"", hang=True))
    garbage = await raw(answer(b"garbage\r\n\r\n"))
    ctx = context(timeout=0.3, ssl_context=trusting)
    urls = [
        f"{silent.base}/",
        silent.base.replace("http://", "https://") + "/",
        f"{garbage.base}/",
        garbage.base.replace("http://", "https://") + "/",
    ]
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for url in urls * 3:
            assert not (await run_probe(web(url, keyword=KEYWORD), ctx)).ok
        gc.collect()
    # Our side of every connection was closed by the probe (timeouts mid-handshake included),
    # not left to the garbage collector, which warns about each socket it has to close.
    ports = [site.base.rsplit(":", 1)[1] for site in (silent, garbage)]
    leaked = [
        str(w.message)
        for w in caught
        if issubclass(w.category, ResourceWarning)
        and any(f", {p})" in str(w.message) for p in ports)
    ]
    assert leaked == []
    own = [p for p in Path("/proc/self/fd").iterdir() if _is_client_socket(p, silent, garbage)]
    assert own == []


def _is_client_socket(fd: Path, *sites: Raw) -> bool:
    """Whether ``fd`` is a TCP socket of ours connected to one of ``sites`` (via /proc)."""
    try:
        target = str(fd.readlink())
    except OSError:
        return False
    if not target.startswith("socket:["):
        return False
    inode = target[len("socket:[") : -1]
    ports = {int(site.base.rsplit(":", 1)[1]) for site in sites}
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        cols = line.split()
        remote_port = int(cols[2].split(":")[1], 16)
        if cols[9] == inode and remote_port in ports and cols[3] != "0A":  # 0A: LISTEN
            return True
    return False


async def test_the_connect_limit_covers_the_tls_handshake(
    context: MakeContext, trusting: ssl.SSLContext
) -> None:
    # A budget of 10 minutes, a connect limit of 0.3 s: a handshake that never ends is the
    # connect limit's to end (the outer guard only keeps a broken limit from hanging the suite).
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        ctx = context(timeout=600, session_timeout=0.3, ssl_context=trusting)
        async with asyncio.timeout(60):
            outcome = await run_probe(web(f"https://127.0.0.1:{port}/"), ctx)
    finally:
        server.close()
    assert outcome.error is Reason.TIMEOUT


async def test_interim_answer_in_its_own_read(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    async def two_steps(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")
        await writer.drain()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(NEEDLE), NEEDLE))
        await writer.drain()

    site = await raw(two_steps)
    outcome = await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())
    assert outcome.ok and outcome.status == 200


async def test_switching_protocols_is_final_and_has_no_body(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    site = await raw(answer(data + b"\x81\x05hello", hang=True))
    plain = await probe_http(web(f"{site.base}/", expect_status=(101,)), context())
    assert plain.ok and plain.status == 101
    keyword = await probe_http(web(f"{site.base}/", expect_status=(101,), keyword="x"), context())
    assert keyword.error is Reason.KEYWORD


async def test_credentials_in_the_url_are_sent_as_basic_auth(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    site = await raw(answer(b"HTTP/1.1 204 No Content\r\n\r\n"))
    url = site.base.replace("http://", "http://probe:s%3Acret@") + "/status"
    assert (await probe_http(web(url), context())).ok
    # base64("probe:s:cret")
    assert b"\r\nAuthorization: Basic cHJvYmU6czpjcmV0\r\n" in site.requests[0]
    assert site.requests[0].startswith(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_messages_never_echo_url_credentials(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    site = await raw(answer(b"HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n"))
    url = site.base.replace("http://", "http://probe:secret@") + "/"
    outcome = await probe_http(web(url), context())
    assert outcome.detail == f"HTTP 503 from {site.base}/ (expected 2xx or 3xx)"


async def test_bytes_after_a_complete_answer_do_not_spoil_it(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    body = b"x " + NEEDLE
    data = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\r\n\r\nXYZ" % (
        len(body),
        body,
    )
    site = await raw(answer(data))
    assert (await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())).ok


async def test_a_broken_body_fails_only_probes_that_read_it(
    raw: Callable[..., Awaitable[Raw]], context: MakeContext
) -> None:
    data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"
    site = await raw(answer(data))
    assert (await probe_http(web(f"{site.base}/"), context())).ok
    reading = await probe_http(web(f"{site.base}/", keyword=KEYWORD), context())
    assert reading.error is Reason.CONNECTION

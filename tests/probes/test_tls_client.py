"""``bot.probes.tls``: the probes' TLS client (pyOpenSSL) against loopback TLS servers.

The server side is the standard library's ``ssl`` (the system OpenSSL) behind asyncio, on
127.0.0.1 port 0; certificates come from throwaway trustme CAs. Names that are not IP
addresses are only ever put in SNI and checked against certificates: nothing resolves them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from probe_targets import server_tls

from bot.probes import tls
from bot.probes.dial import Connection, readable, writable
from bot.probes.tls import HandshakeFailed, TlsClient


@dataclass
class Server:
    """A loopback TLS listener: its port, and the SNI name of each handshake (``None``: none)."""

    port: int = 0
    names: list[str | None] = field(default_factory=list)
    reused: list[bool] = field(default_factory=list)


Serve = Callable[[ssl.SSLContext], Awaitable[Server]]
Shake = Callable[..., Awaitable[tuple[socket.socket, tls.TlsStream]]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[asyncio.Server] = []

    async def start(ctx: ssl.SSLContext) -> Server:
        server = Server()

        def sni(obj: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            server.names.append(name)

        ctx.sni_callback = sni

        async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            server.reused.append(writer.get_extra_info("ssl_object").session_reused)
            writer.close()

        listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        servers.append(listener)
        server.port = listener.sockets[0].getsockname()[1]
        return server

    yield start
    for listener in servers:
        listener.close()
        await listener.wait_closed()


@pytest.fixture
async def shake() -> AsyncIterator[Shake]:
    """Connect to 127.0.0.1:``port`` and run ``client``'s handshake for ``host``."""
    socks: list[socket.socket] = []

    async def run(
        client: TlsClient, port: int, host: str = "127.0.0.1"
    ) -> tuple[socket.socket, tls.TlsStream]:
        loop = asyncio.get_running_loop()
        sock = socket.create_connection(("127.0.0.1", port))
        socks.append(sock)
        sock.setblocking(False)
        stream = client.start(sock, host)
        while True:
            try:
                stream.handshake()
                return sock, stream
            except tls.WantRead:
                await readable(loop, sock.fileno())
            except tls.WantWrite:
                await writable(loop, sock.fileno())

    yield run
    for sock in socks:
        sock.close()


@pytest.fixture
def client(trusting: ssl.SSLContext) -> TlsClient:
    return TlsClient.like(trusting)


async def refusal(shake: Shake, client: TlsClient, port: int, host: str = "127.0.0.1") -> str:
    with pytest.raises(HandshakeFailed) as caught:
        await shake(client, port, host)
    assert caught.value.verify_message is not None, caught.value
    return caught.value.verify_message


async def test_a_name_is_checked_and_sent_as_sni(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    server = await serve(server_tls(ca.issue_cert("status.example", not_after=not_after)))
    _, stream = await shake(client, server.port, "status.example")
    assert server.names == ["status.example"]
    assert stream.not_after() == not_after


async def test_an_ip_address_is_checked_and_not_sent_as_sni(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    server = await serve(server_tls(ca.issue_cert("127.0.0.1")))
    await shake(client, server.port, "127.0.0.1")
    assert server.names == [None]  # RFC 6066 3: literal IP addresses are not sent in SNI


async def test_a_certificate_for_another_name_is_refused(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    server = await serve(server_tls(ca.issue_cert("status.example", "127.0.0.1")))
    why = await refusal(shake, client, server.port, "other.example")
    assert why == "Hostname mismatch, certificate is not valid for 'other.example'."


async def test_a_wildcard_covers_one_whole_label_only(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA, tmp_path: Path
) -> None:
    # As ssl checks names: "*" is a whole left-most label, never a part of one (trustme
    # refuses to issue "w*.example.net", so that certificate is made here).
    server = await serve(server_tls(ca.issue_cert("*.example.org")))
    await shake(client, server.port, "www.example.org")
    assert "Hostname mismatch" in await refusal(shake, client, server.port, "a.b.example.org")
    partial = await serve(leaf_for(ca, "w*.example.net", tmp_path))
    assert "Hostname mismatch" in await refusal(shake, client, partial.port, "www.example.net")


def leaf_for(ca: trustme.CA, dns_name: str, folder: Path) -> ssl.SSLContext:
    """A server context with a certificate from ``ca`` for ``dns_name``, taken as written."""
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "leaf.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "leaf.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(folder / "leaf.pem", folder / "leaf.key")
    return ctx


async def test_a_certificate_for_another_ip_address_is_refused(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    # The name "127.0.0.1" as a DNS SAN does not make it valid for the address either.
    server = await serve(server_tls(ca.issue_cert("127.0.0.2", "localhost")))
    why = await refusal(shake, client, server.port, "127.0.0.1")
    assert why == "IP address mismatch, certificate is not valid for '127.0.0.1'."


async def test_a_certificate_from_an_untrusted_ca_is_refused(
    serve: Serve, shake: Shake, ca: trustme.CA
) -> None:
    server = await serve(server_tls(ca.issue_cert("127.0.0.1")))
    other = ssl.create_default_context(cadata=trustme.CA().cert_pem.bytes().decode())
    why = await refusal(shake, TlsClient.like(other), server.port)
    assert why == "unable to get local issuer certificate"


async def test_the_system_trust_roots_do_not_include_a_test_ca(
    serve: Serve, shake: Shake, ca: trustme.CA
) -> None:
    server = await serve(server_tls(ca.issue_cert("127.0.0.1")))
    why = await refusal(shake, TlsClient.like(None), server.port)
    assert why == "unable to get local issuer certificate"


async def test_a_self_signed_certificate_is_refused(
    serve: Serve, shake: Shake, client: TlsClient
) -> None:
    own = trustme.CA()  # a CA certificate is self-signed; the server presents it as its own
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with own.cert_pem.tempfile() as cert, own.private_key_pem.tempfile() as key:
        ctx.load_cert_chain(cert, key)
    server = await serve(ctx)
    assert await refusal(shake, client, server.port) == "self-signed certificate"


async def test_an_expired_certificate_is_refused(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    now = datetime.now(UTC)
    cert = ca.issue_cert(
        "127.0.0.1", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    server = await serve(server_tls(cert))
    assert await refusal(shake, client, server.port) == "certificate has expired"


async def test_every_handshake_is_a_full_one(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    # The server issues session tickets (TLS 1.2 and 1.3 alike); the client never uses one, so
    # each probe sees the certificate as it is now.
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = server_tls(ca.issue_cert("127.0.0.1"))
        ctx.maximum_version = version
        server = await serve(ctx)
        for _ in range(3):
            conn = Connection(asyncio.get_running_loop(), *await shake(client, server.port))
            assert await conn.recv() == b""  # the server closed (and its handler ran)
        assert server.reused == [False, False, False]


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_older_than_1_2_is_refused(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    ctx = server_tls(ca.issue_cert("127.0.0.1"))
    try:  # OpenSSL allows TLS 1.1 only at security level 0
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ssl.SSLError, ValueError):
        pytest.skip("this OpenSSL cannot serve TLS 1.1")
    server = await serve(ctx)
    # Prove the server does speak TLS 1.1 (to a client that allows it), or the test proves nothing.
    old = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1_1
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=old)
    except (ssl.SSLError, ConnectionError):
        pytest.skip("this OpenSSL cannot speak TLS 1.1")
    assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
    writer.close()
    with pytest.raises(HandshakeFailed) as caught:
        await shake(client, server.port)
    assert caught.value.verify_message is None  # a protocol failure, not a certificate one


async def test_cipher_suites_refused_by_the_standard_library_are_refused(
    serve: Serve, shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    # Python's cipher string ends in !SHA1: CBC suites with a SHA-1 MAC are not offered.
    ctx = server_tls(ca.issue_cert("127.0.0.1"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    server = await serve(ctx)
    # The server does serve it (to a client that offers it), or the test proves nothing.
    sha1 = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    sha1.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    _, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=sha1)
    assert writer.get_extra_info("cipher")[0] == "ECDHE-ECDSA-AES128-SHA"
    writer.close()
    with pytest.raises(HandshakeFailed) as caught:
        await shake(client, server.port)
    assert caught.value.verify_message is None


def test_a_context_that_does_not_verify_is_refused() -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="must verify"):
        TlsClient.like(lax)


def test_an_empty_host_name_is_refused_before_any_handshake(client: TlsClient) -> None:
    # OpenSSL would take an empty name as "no name to check" and accept any trusted chain.
    left, right = socket.socketpair()
    try:
        with pytest.raises(HandshakeFailed):
            client.start(left, "")
    finally:
        left.close()
        right.close()


async def test_a_close_without_close_notify_ends_the_body(
    shake: Shake, client: TlsClient, ca: trustme.CA
) -> None:
    """Many servers close the connection after a response without a TLS close_notify; for a
    response read to the end of the connection that is its end, not a failure."""

    async def handle(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        await writer.drain()
        writer.transport.abort()  # TCP close, no close_notify

    listener = await asyncio.start_server(
        handle, "127.0.0.1", 0, ssl=server_tls(ca.issue_cert("127.0.0.1"))
    )
    try:
        sock, stream = await shake(client, listener.sockets[0].getsockname()[1])
        loop, got = asyncio.get_running_loop(), b""
        while True:
            try:
                chunk = stream.recv(4096)
            except tls.WantRead:
                await readable(loop, sock.fileno())
                continue
            if not chunk:
                break
            got += chunk
        assert got.endswith(b"all of it")
    finally:
        listener.close()
        await listener.wait_closed()

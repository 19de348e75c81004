"""TLS for probes: one full, verified client handshake per connection, on a current OpenSSL.

Why not the standard library's ``ssl``: it links the system's OpenSSL (3.0 on Debian 12), whose
client handshake costs about 1 ms of CPU, which capped https probes below the 750/s-per-core
target. pyOpenSSL drives the OpenSSL that cryptography's wheel bundles (3.5 or later), which
costs about a quarter less per probe (benchmarks/RESULTS.md, "Probe throughput").

What the client does is what ``ssl.create_default_context()`` did for the probes before:

- Trust roots: the system's (``ssl.get_default_verify_paths()``, the files the standard
  library's default context loads), or, when the session is given an ``ssl.SSLContext``,
  the CA certificates loaded into it (from ``cafile`` or ``cadata``; a ``capath`` directory's
  are loaded lazily by OpenSSL, cannot be listed, and so are not trusted here: fail closed).
- The chain is verified by OpenSSL during the handshake (``VERIFY_PEER``: a failed check
  aborts it), and so is the name: ``X509_VERIFY_PARAM`` host (no partial wildcards) or IP
  address, as ``ssl`` sets them for ``server_hostname``. SNI is sent for names only.
- TLS 1.2 at least; the context's cipher list at security level 2; its verify flags.
- The key-exchange groups OpenSSL 3.0 offers, with an X25519 key share only: OpenSSL 3.5+
  would also send an ML-KEM-768 share (post-quantum), ~0.1 ms of CPU per handshake for
  nothing (a probe's request carries no secret), and the ClientHello stays what it was.
- No session is ever reused: none is kept or set, so every probe pays a full handshake
  (a resumed one would not show a replaced or expired certificate).

pyOpenSSL has no API for the ``X509_VERIFY_PARAM`` name check nor for the group list: both go
through cryptography's OpenSSL bindings on pyOpenSSL's handles (``_context``, ``_ssl``),
pinned by the major versions in pyproject.toml and covered by tests/probes/test_tls_client.py.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import ssl
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL, crypto

_binding = Binding()
_lib: Final[Any] = _binding.lib
_ffi: Final[Any] = _binding.ffi
# Fail at import, not at the first https probe, should a cryptography release drop one.
_NEEDED: Final = (
    "SSL_CTX_get0_param",
    "SSL_CTX_set1_curves_list",
    "SSL_get0_param",
    "SSL_get_verify_result",
    "X509_VERIFY_PARAM_set1_host",
    "X509_VERIFY_PARAM_set1_ip",
    "X509_VERIFY_PARAM_set_flags",
    "X509_VERIFY_PARAM_set_hostflags",
    "X509_verify_cert_error_string",
)
if _missing := [name for name in _NEEDED if not hasattr(_lib, name)]:
    raise ImportError(f"cryptography's OpenSSL bindings lack {', '.join(_missing)}")

# What OpenSSL 3.0 offers by default (its first group, X25519, is the only key share).
GROUPS: Final = b"X25519:P-256:X448:P-521:P-384:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"
# The standard library's cipher strings begin with it (Python 3.10+, PEP 644).
_SECLEVEL: Final = "@SECLEVEL=2"
_MISMATCH: Final = {
    _lib.X509_V_ERR_HOSTNAME_MISMATCH: "Hostname mismatch",
    _lib.X509_V_ERR_IP_ADDRESS_MISMATCH: "IP address mismatch",
}

# The handshake, ``recv`` and ``send`` raise these when the socket must become readable or
# writable first; the caller waits on the file descriptor and calls again.
WantRead = SSL.WantReadError
WantWrite = SSL.WantWriteError


class HandshakeFailed(Exception):
    """The handshake failed: ``verify_message`` says why the certificate was refused (as
    ``ssl.SSLCertVerificationError.verify_message`` did), else ``None``."""

    def __init__(self, why: str, *, verify_message: str | None = None) -> None:
        super().__init__(why)
        self.verify_message = verify_message


class TlsClient:
    """A verifying client configuration; built once per session, shared by its probes."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: SSL.Context) -> None:
        self._ctx = ctx

    @classmethod
    def like(cls, template: ssl.SSLContext | None) -> TlsClient:
        """A client with ``template``'s CA certificates, protocol floor, ciphers and checks;
        ``None``: the system's trust roots and ``ssl.create_default_context()``'s settings."""
        source = ssl.create_default_context() if template is None else template
        if source.verify_mode is not ssl.CERT_REQUIRED or not source.check_hostname:
            raise ValueError("probe TLS contexts must verify certificates and host names")
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        ctx.set_verify(SSL.VERIFY_PEER)  # no callback: OpenSSL's verdict stands
        ctx.set_min_proto_version(max(int(source.minimum_version), SSL.TLS1_2_VERSION))
        if source.maximum_version is not ssl.TLSVersion.MAXIMUM_SUPPORTED:
            ctx.set_max_proto_version(int(source.maximum_version))
        ctx.set_options(SSL.OP_ALL | SSL.OP_NO_COMPRESSION)
        tls12 = [c["name"] for c in source.get_ciphers() if c["protocol"] != "TLSv1.3"]
        ctx.set_cipher_list(":".join([_SECLEVEL, *tls12]).encode())
        handle = ctx._context  # see the module docstring
        if _lib.SSL_CTX_set1_curves_list(handle, GROUPS) != 1:
            raise ssl.SSLError("the bundled OpenSSL refused the key-exchange groups")
        param = _lib.SSL_CTX_get0_param(handle)
        _lib.X509_VERIFY_PARAM_set_flags(param, int(source.verify_flags))
        flags = _lib.X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS
        if not source.hostname_checks_common_name:
            flags |= _lib.X509_CHECK_FLAG_NEVER_CHECK_SUBJECT
        _lib.X509_VERIFY_PARAM_set_hostflags(param, flags)
        if template is None:
            paths = ssl.get_default_verify_paths()
            if paths.cafile or paths.capath:
                ctx.load_verify_locations(paths.cafile, paths.capath)
        else:
            store = ctx.get_cert_store()
            assert store is not None  # a new context always has one
            for der in template.get_ca_certs(binary_form=True):
                store.add_cert(crypto.load_certificate(crypto.FILETYPE_ASN1, der))
        return cls(ctx)

    def start(self, sock: socket.socket, host: str) -> TlsStream:
        """A client connection over connected socket ``sock`` to ``host`` (a DNS name, or an IP
        address in its usual text form), its handshake not yet begun.

        The certificate must be valid for ``host``: OpenSSL checks it during the handshake.
        """
        if not host:
            # OpenSSL takes an empty name as "no name to check" (the chain alone): never that.
            raise HandshakeFailed("no host name to check the certificate against")
        conn = SSL.Connection(self._ctx, sock)
        param = _lib.SSL_get0_param(conn._ssl)  # see the module docstring
        try:
            ip = ipaddress.ip_address(host).packed
        except ValueError:
            name = host.encode("idna")
            ok = _lib.X509_VERIFY_PARAM_set1_host(param, name, len(name))
            conn.set_tlsext_host_name(name)
        else:
            ok = _lib.X509_VERIFY_PARAM_set1_ip(param, ip, len(ip))
        if ok != 1:  # never go on with no name to check
            raise HandshakeFailed(f"cannot check a certificate for {host!r}")
        conn.set_connect_state()
        return TlsStream(conn, host)


class TlsStream:
    """One client TLS connection on a non-blocking socket (the caller owns the socket)."""

    __slots__ = ("_conn", "_host")

    def __init__(self, conn: SSL.Connection, host: str) -> None:
        self._conn = conn
        self._host = host

    def handshake(self) -> None:
        """Go on with the handshake: returns once done; raises ``WantRead``/``WantWrite``,
        ``HandshakeFailed``, or ``OSError`` when the connection fails under it."""
        conn = self._conn
        try:
            conn.do_handshake()
        except (WantRead, WantWrite):
            raise
        except SSL.SysCallError as exc:
            if _errno(exc) is None:  # ``ssl`` raised SSLEOFError here: a TLS failure too
                raise HandshakeFailed("the server closed the connection mid-handshake") from exc
            raise _os_error(exc) from exc
        except SSL.ZeroReturnError as exc:
            raise HandshakeFailed("the server closed the connection mid-handshake") from exc
        except SSL.Error as exc:
            raise self._failure(exc) from exc
        # Belt and braces: VERIFY_PEER has already aborted any handshake that failed a check.
        if _lib.SSL_get_verify_result(conn._ssl) != _lib.X509_V_OK:
            raise self._failure(SSL.Error("certificate verify failed"))

    def _failure(self, exc: SSL.Error) -> HandshakeFailed:
        code = _lib.SSL_get_verify_result(self._conn._ssl)
        if code != _lib.X509_V_OK:
            why = _ffi.string(_lib.X509_verify_cert_error_string(code)).decode()
            if code in _MISMATCH:  # the standard library's wording
                why = f"{_MISMATCH[code]}, certificate is not valid for '{self._host}'."
            return HandshakeFailed(f"certificate verify failed: {why}", verify_message=why)
        return HandshakeFailed(_reasons(exc))

    def not_after(self) -> datetime | None:
        """The peer certificate's ``notAfter`` (its expiry), once the handshake is done."""
        cert = self._conn.get_peer_certificate()
        stamp = None if cert is None else cert.get_notAfter()
        return None if stamp is None else _asn1_time(stamp)

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes, ``b""`` at the end; ``WantRead``/``WantWrite``, ``OSError``."""
        try:
            return self._conn.recv(size)
        except (WantRead, WantWrite):
            raise
        except SSL.ZeroReturnError:
            return b""  # close_notify: the end
        except SSL.SysCallError as exc:
            if _errno(exc) is None:
                # The server closed without close_notify, as many do after a response read to
                # the end of the connection: the end of the body (what ssl's default
                # suppress_ragged_eofs did), not a failed probe.
                return b""
            raise _os_error(exc) from exc
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {_reasons(exc)}") from exc

    def send(self, data: bytes | memoryview) -> int:
        try:
            return self._conn.send(data)
        except (WantRead, WantWrite):
            raise
        except SSL.SysCallError as exc:
            raise _os_error(exc) from exc
        except SSL.Error as exc:
            raise ConnectionError(f"TLS error: {_reasons(exc)}") from exc

    def pending(self) -> int:
        """Decrypted bytes already buffered (readable without waiting on the socket)."""
        return self._conn.pending()


@functools.lru_cache(maxsize=1024)
def _asn1_time(stamp: bytes) -> datetime | None:
    """``YYYYMMDDHHMMSSZ`` (RFC 5280 4.1.2.5; pyOpenSSL gives UTCTime in this form too) as a
    datetime. Cached: parsing costs ~10 µs, and a target's certificate is the same each time."""
    try:
        return datetime.strptime(stamp.decode("ascii"), "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:  # UnicodeDecodeError included
        return None


def _errno(exc: SSL.SysCallError) -> int | None:
    """The socket error under ``exc``; ``None`` for an EOF (pyOpenSSL's ``-1``)."""
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) and code > 0 else None


def _os_error(exc: SSL.SysCallError) -> OSError:
    code = _errno(exc)
    if code is None:  # an EOF in the handshake or while sending: the connection failed
        return ConnectionError("the server closed the connection without a TLS close_notify")
    return OSError(code, os.strerror(code))


def _reasons(exc: SSL.Error) -> str:
    """OpenSSL's reasons ("wrong version number"), not its ``[('SSL routines', ...)]`` list."""
    stack = exc.args[0] if exc.args else None
    if isinstance(stack, list):
        reasons = [str(entry[2]) for entry in stack if isinstance(entry, tuple) and len(entry) == 3]
        if reasons:
            return "; ".join(reasons)
    return str(exc) or type(exc).__name__

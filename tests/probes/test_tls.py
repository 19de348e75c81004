"""The https probe against a loopback TLS server with certificates from a test CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import trustme
from probe_targets import Site, server_tls

from bot.model import Target
from bot.probes.base import ProbeContext, Reason
from bot.probes.http import probe_http

MakeContext = Callable[..., ProbeContext]
Serve = Callable[..., Awaitable[Site]]


async def test_valid_certificate_gives_its_expiry(
    serve: Serve, context: MakeContext, ca: trustme.CA, trusting: ssl.SSLContext
) -> None:
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
    site = await serve(tls=server_tls(ca.issue_cert("127.0.0.1", not_after=not_after)))
    outcome = await probe_http(Target("web", f"{site.base}/ok"), context(ssl_context=trusting))
    assert outcome.ok and outcome.status == 200
    assert outcome.cert_expires_at == not_after
    assert outcome.warning is None and outcome.detail is None


async def test_certificate_expiring_soon_warns(
    serve: Serve, context: MakeContext, ca: trustme.CA, trusting: ssl.SSLContext
) -> None:
    not_after = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5, hours=1)
    site = await serve(tls=server_tls(ca.issue_cert("127.0.0.1", not_after=not_after)))
    ctx = context(ssl_context=trusting, tls_warn_days=14)
    outcome = await probe_http(Target("web", f"{site.base}/ok"), ctx)
    assert outcome.ok  # a warning, not a failure
    assert outcome.cert_expires_at == not_after
    expected = (
        f"the TLS certificate of 127.0.0.1 expires in 5 days ({not_after:%Y-%m-%d %H:%M} UTC)"
    )
    assert outcome.warning == expected and outcome.detail == expected


async def test_untrusted_certificate_is_tls(
    serve: Serve, context: MakeContext, ca: trustme.CA
) -> None:
    # The default context trusts the system CAs only, not the test CA.
    site = await serve(tls=server_tls(ca.issue_cert("127.0.0.1")))
    outcome = await probe_http(Target("web", f"{site.base}/ok"), context())
    assert not outcome.ok and outcome.error is Reason.TLS and outcome.status is None
    assert outcome.detail is not None
    assert outcome.detail == (
        "the TLS certificate of 127.0.0.1 is not valid: unable to get local issuer certificate"
    )


async def test_certificate_for_another_name_is_tls(
    serve: Serve, context: MakeContext, ca: trustme.CA, trusting: ssl.SSLContext
) -> None:
    site = await serve(tls=server_tls(ca.issue_cert("other.example")))
    outcome = await probe_http(Target("web", f"{site.base}/ok"), context(ssl_context=trusting))
    assert outcome.error is Reason.TLS
    assert outcome.detail is not None and "IP address mismatch" in outcome.detail


async def test_expired_certificate_is_tls(
    serve: Serve, context: MakeContext, ca: trustme.CA, trusting: ssl.SSLContext
) -> None:
    now = datetime.now(UTC)
    cert = ca.issue_cert(
        "127.0.0.1", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    site = await serve(tls=server_tls(cert))
    outcome = await probe_http(Target("web", f"{site.base}/ok"), context(ssl_context=trusting))
    assert outcome.error is Reason.TLS
    assert (
        outcome.detail == "the TLS certificate of 127.0.0.1 is not valid: certificate has expired"
    )

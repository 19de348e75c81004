"""The http probe against loopback servers: status, keywords, the body cap, redirects, errors."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from probe_targets import KEYWORD, Canary, Site, closed_port

from bot.model import Target
from bot.probes import run_probe
from bot.probes.base import ProbeContext, Reason
from bot.probes.http import probe_http
from bot.ssrf import Policy

MakeContext = Callable[..., ProbeContext]


def web(url: str, **kwargs: object) -> Target:
    return Target("web", url, **kwargs)  # type: ignore[arg-type]


async def test_ok_reports_status_and_latency(site: Site, context: MakeContext) -> None:
    outcome = await probe_http(web(f"{site.base}/ok"), context())
    assert outcome.ok and outcome.error is None and outcome.detail is None
    assert outcome.status == 200
    assert outcome.latency_ms is not None and outcome.latency_ms > 0
    assert outcome.cert_expires_at is None  # plain http


async def test_server_error_is_status_with_a_sentence(site: Site, context: MakeContext) -> None:
    url = f"{site.base}/status/503"
    outcome = await probe_http(web(url), context())
    assert not outcome.ok and outcome.error is Reason.STATUS and outcome.status == 503
    assert outcome.detail == f"HTTP 503 from {url} (expected 2xx or 3xx)"
    assert outcome.latency_ms is not None


@pytest.mark.parametrize(
    ("code", "expect", "ok", "wanted"),
    [
        (404, (404,), True, None),
        (200, (204,), False, "204"),
        (201, (200, 204), False, "200 or 204"),
        (202, (204, 200, 201), False, "200, 201 or 204"),
        (399, (), True, None),
    ],
)
async def test_expected_status_set(
    site: Site,
    context: MakeContext,
    code: int,
    expect: tuple[int, ...],
    ok: bool,
    wanted: str | None,
) -> None:
    outcome = await probe_http(web(f"{site.base}/status/{code}", expect_status=expect), context())
    assert outcome.ok is ok and outcome.status == code
    if wanted is not None:
        assert outcome.error is Reason.STATUS
        assert outcome.detail is not None and outcome.detail.endswith(f"(expected {wanted})")


async def test_head_method_is_sent(site: Site, context: MakeContext) -> None:
    outcome = await probe_http(web(f"{site.base}/ok", method="HEAD"), context())
    assert outcome.ok and outcome.status == 200
    assert site.methods == ["HEAD"]


async def test_keyword_present_and_missing(site: Site, context: MakeContext) -> None:
    ctx = context()
    assert (await probe_http(web(f"{site.base}/ok", keyword=KEYWORD), ctx)).ok
    url = f"{site.base}/ok"
    missing = await probe_http(web(url, keyword="not-there"), ctx)
    assert not missing.ok and missing.error is Reason.KEYWORD and missing.status == 200
    assert missing.detail == f"'not-there' is not in the body of {url}"


async def test_keyword_absent(site: Site, context: MakeContext) -> None:
    ctx = context()
    assert (await probe_http(web(f"{site.base}/ok", keyword_absent="maintenance"), ctx)).ok
    found = await probe_http(web(f"{site.base}/ok", keyword_absent=KEYWORD), ctx)
    assert not found.ok and found.error is Reason.KEYWORD
    assert found.detail is not None and "appears in the body" in found.detail


async def test_body_cap_rule(site: Site, context: MakeContext) -> None:
    """Keywords are looked for in the first 64 KiB; needing more than that is too_large."""
    ctx = context()
    # Found within the cap: decided, however long the body is.
    assert (await probe_http(web(f"{site.base}/big/start", keyword=KEYWORD), ctx)).ok
    forbidden_early = await probe_http(web(f"{site.base}/big/start", keyword_absent=KEYWORD), ctx)
    assert forbidden_early.error is Reason.KEYWORD
    # The keyword sits after 200 KiB: the probe does not read that far.
    beyond = await probe_http(web(f"{site.base}/big/end", keyword=KEYWORD), ctx)
    assert not beyond.ok and beyond.error is Reason.TOO_LARGE and beyond.status == 200
    assert beyond.detail is not None and "larger than 64 KiB" in beyond.detail
    # Absence cannot be shown without reading the rest.
    unknown = await probe_http(web(f"{site.base}/big/none", keyword_absent=KEYWORD), ctx)
    assert unknown.error is Reason.TOO_LARGE
    # A small body is read whole: a missing keyword is a plain keyword failure.
    small = await probe_http(web(f"{site.base}/small", keyword=KEYWORD), ctx)
    assert small.error is Reason.KEYWORD
    # Without a keyword the body is not read at all, so size does not matter.
    assert (await probe_http(web(f"{site.base}/big/none"), ctx)).ok


async def test_hang_ends_at_the_timeout(site: Site, context: MakeContext) -> None:
    started = time.perf_counter()
    outcome = await probe_http(web(f"{site.base}/hang"), context(timeout=0.5))
    elapsed = time.perf_counter() - started
    assert not outcome.ok and outcome.error is Reason.TIMEOUT
    assert outcome.detail == f"no answer from {site.base}/hang within 0.5 s"
    assert 0.4 < elapsed < 2.0


async def test_body_that_never_ends_times_out(site: Site, context: MakeContext) -> None:
    outcome = await probe_http(
        web(f"{site.base}/stall-body", keyword=KEYWORD), context(timeout=0.5)
    )
    assert outcome.error is Reason.TIMEOUT


async def test_run_probe_deadline_holds_even_with_a_lax_session(
    site: Site, context: MakeContext
) -> None:
    # The session would wait 30 s; the probe's one deadline (ctx.timeout) ends it.
    ctx = context(timeout=0.5, session_timeout=30)
    started = time.perf_counter()
    outcome = await run_probe(web(f"{site.base}/hang"), ctx)
    assert outcome.error is Reason.TIMEOUT
    assert time.perf_counter() - started < 2.0


async def test_three_redirects_are_followed(site: Site, context: MakeContext) -> None:
    outcome = await probe_http(web(f"{site.base}/redirect/3", keyword=KEYWORD), context())
    assert outcome.ok and outcome.status == 200


async def test_an_expected_redirect_is_not_followed(site: Site, context: MakeContext) -> None:
    outcome = await probe_http(web(f"{site.base}/redirect/2", expect_status=(302,)), context())
    assert outcome.ok and outcome.status == 302


async def test_a_fourth_redirect_is_refused(site: Site, context: MakeContext) -> None:
    url = f"{site.base}/redirect/4"
    outcome = await probe_http(web(url), context())
    assert not outcome.ok and outcome.error is Reason.TOO_MANY_REDIRECTS
    assert outcome.detail == f"{url} redirects more than 3 times"


async def test_redirect_to_a_blocked_address_is_not_followed(
    site: Site, context: MakeContext, canary: Callable[..., Awaitable[Canary]]
) -> None:
    # Only the first server's address is allowed; the redirect points at another loopback
    # address where a canary counts connections (never a non-loopback address: RELIABILITY.md).
    target = await canary("127.0.0.2")
    ctx = context(policy=Policy.from_config(["127.0.0.1/32"]))
    hop = f"http://127.0.0.2:{target.port}/"
    outcome = await probe_http(web(f"{site.base}/redirect-to?to={hop}"), ctx)
    assert not outcome.ok and outcome.error is Reason.BLOCKED
    assert outcome.detail is not None and "127.0.0.2 is a loopback address" in outcome.detail
    assert await target.accepted_before_now() == 0


async def test_redirect_to_another_scheme_is_blocked(site: Site, context: MakeContext) -> None:
    outcome = await probe_http(web(f"{site.base}/redirect-to?to=ftp://127.0.0.1/x"), context())
    assert not outcome.ok and outcome.error is Reason.BLOCKED


async def test_blocked_target_opens_no_connection(
    context: MakeContext, canary: Callable[..., Awaitable[Canary]]
) -> None:
    target = await canary()
    outcome = await probe_http(web(f"http://127.0.0.1:{target.port}/"), context(policy=Policy()))
    assert not outcome.ok and outcome.error is Reason.BLOCKED
    assert outcome.detail is not None
    assert (
        "127.0.0.1 is a loopback address (127.0.0.0/8); probes may not reach it" in outcome.detail
    )
    assert await target.accepted_before_now() == 0


async def test_refused(context: MakeContext) -> None:
    port = closed_port()
    outcome = await probe_http(web(f"http://127.0.0.1:{port}/"), context())
    assert not outcome.ok and outcome.error is Reason.REFUSED
    assert outcome.detail == f"127.0.0.1:{port} refused the connection (nothing is listening there)"


async def test_localhost_resolves_and_is_refused(context: MakeContext) -> None:
    # "localhost" resolves locally (/etc/hosts); both its answers are refused.
    port = closed_port()
    ctx = context(policy=Policy.from_config(["127.0.0.0/8", "::1/128"]))
    outcome = await probe_http(web(f"http://localhost:{port}/"), ctx)
    assert outcome.error is Reason.REFUSED


async def test_connection_closed_without_an_answer(
    context: MakeContext, canary: Callable[..., Awaitable[Canary]]
) -> None:
    # The canary accepts and hangs up at once: connected, but no HTTP response.
    listener = await canary()
    url = f"http://127.0.0.1:{listener.port}/"
    outcome = await probe_http(web(url), context())
    assert not outcome.ok and outcome.error is Reason.CONNECTION and outcome.status is None
    assert outcome.detail is not None and outcome.detail.startswith(f"the connection to {url}")

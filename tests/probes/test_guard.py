"""The http engine and the SSRF guard: names, rebinding, literals, redirects, source address.

A test resolver (the loop's ``getaddrinfo`` replaced) stands in for DNS; canaries on other
loopback addresses count connections that must never happen (RELIABILITY.md: never a
non-loopback address, not even to show that it is blocked).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from probe_targets import Canary, Site

from bot.model import Target
from bot.probes.base import ProbeContext, Reason
from bot.probes.http import probe_http
from bot.ssrf import Blocked, Policy, check_url
from bot.ssrf.addresses import check_endpoint
from bot.ssrf.memo import Verdicts

MakeContext = Callable[..., ProbeContext]
StartCanary = Callable[..., Awaitable[Canary]]
ONLY_127_0_0_1 = Policy.from_config(["127.0.0.1/32"])


def web(url: str, **kwargs: object) -> Target:
    return Target("web", url, **kwargs)  # type: ignore[arg-type]


class Resolver:
    """Answers for names, in turn: each call pops the next list of addresses for that name."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def getaddrinfo(self, host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        turns = self.answers.get(host)
        if not turns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = turns.pop(0) if len(turns) > 1 else turns[0]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.fixture
def resolve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Resolver]]:
    def install(answers: dict[str, list[list[str]]]) -> Resolver:
        resolver = Resolver(answers)
        monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", resolver.getaddrinfo)
        return resolver

    yield install


async def test_dns_rebinding_is_caught_at_connect_time(
    site: Site, context: MakeContext, canary: StartCanary, resolve: Callable[..., Resolver]
) -> None:
    # First answer: the allowed site. Second: an address outside the policy (the canary).
    port = int(site.base.rsplit(":", 1)[1])
    target = await canary("127.0.0.2")
    resolver = resolve({"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    ctx = context(policy=ONLY_127_0_0_1)
    first = await probe_http(web(f"http://rebind.test:{port}/ok"), ctx)
    assert first.ok
    # Now the name points at the canary: the address dialled is the one checked.
    second = await probe_http(web(f"http://rebind.test:{target.port}/ok"), ctx)
    assert second.error is Reason.BLOCKED
    assert second.detail is not None
    assert "rebind.test resolves only to blocked addresses" in second.detail
    assert "127.0.0.2 is a loopback address" in second.detail
    assert resolver.calls == ["rebind.test", "rebind.test"]
    assert await target.accepted_before_now() == 0


async def test_blocked_answers_are_skipped_for_allowed_ones(
    site: Site, context: MakeContext, canary: StartCanary, resolve: Callable[..., Resolver]
) -> None:
    port = int(site.base.rsplit(":", 1)[1])
    # A canary on the same port at 127.0.0.2 would be reached first if the guard let it.
    listener = socket.socket()
    try:
        listener.bind(("127.0.0.2", port))
    except OSError:
        listener.close()
        pytest.skip("port in use on 127.0.0.2")
    listener.listen(8)
    listener.setblocking(False)
    try:
        resolve({"mixed.test": [["127.0.0.2", "127.0.0.1"]]})
        outcome = await probe_http(
            web(f"http://mixed.test:{port}/ok"), context(policy=ONLY_127_0_0_1)
        )
        assert outcome.ok and site.methods == ["GET"]
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected to the blocked answer
    finally:
        listener.close()


async def test_redirect_to_a_name_that_resolves_to_a_blocked_address(
    site: Site, context: MakeContext, canary: StartCanary, resolve: Callable[..., Resolver]
) -> None:
    target = await canary("127.0.0.2")
    resolve({"inside.test": [["127.0.0.2"]]})
    hop = f"http://inside.test:{target.port}/"
    outcome = await probe_http(
        web(f"{site.base}/redirect-to?to={hop}"), context(policy=ONLY_127_0_0_1)
    )
    assert outcome.error is Reason.BLOCKED
    assert await target.accepted_before_now() == 0


async def test_an_unknown_name_is_dns(
    context: MakeContext, resolve: Callable[..., Resolver]
) -> None:
    resolve({})
    outcome = await probe_http(web("http://nowhere.test:8080/"), context())
    assert outcome.error is Reason.DNS
    assert outcome.detail == "nowhere.test does not resolve (Name or service not known)"


async def test_ip_literals_never_use_the_resolver(
    site: Site, context: MakeContext, resolve: Callable[..., Resolver]
) -> None:
    resolver = resolve({})
    assert (await probe_http(web(f"{site.base}/ok"), context())).ok
    assert resolver.calls == []


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0x7f.0.0.1", "0177.0.0.1"])
async def test_other_ipv4_spellings_are_checked_and_dialled_as_parsed(
    site: Site, context: MakeContext, canary: StartCanary, host: str
) -> None:
    port = int(site.base.rsplit(":", 1)[1])
    assert (await probe_http(web(f"http://{host}:{port}/ok"), context())).ok
    target = await canary()
    blocked = await probe_http(web(f"http://{host}:{target.port}/"), context(policy=Policy()))
    assert blocked.error is Reason.BLOCKED
    assert await target.accepted_before_now() == 0


async def test_a_dns_name_on_an_unlisted_port_is_refused_before_resolving(
    context: MakeContext, resolve: Callable[..., Resolver]
) -> None:
    resolver = resolve({"example.test": [["127.0.0.1"]]})
    outcome = await probe_http(web("http://example.test:6379/"), context(policy=Policy()))
    assert outcome.error is Reason.BLOCKED
    assert outcome.detail is not None and "port 6379 is not allowed" in outcome.detail
    assert resolver.calls == []


async def test_redirect_to_ipv6_loopback_is_blocked(site: Site, context: MakeContext) -> None:
    # No listener is needed: the guard refuses ::1 before any socket exists.
    outcome = await probe_http(web(f"{site.base}/redirect-to?to=http://[::1]:8080/"), context())
    assert outcome.error is Reason.BLOCKED
    assert outcome.detail is not None and "::1 is the IPv6 loopback address" in outcome.detail


async def test_source_address_is_bound(site: Site, context: MakeContext) -> None:
    ctx = context()
    session = type(ctx.session)(ctx.policy, local_addr="127.0.0.7")
    outcome = await probe_http(web(f"{site.base}/ok"), ProbeContext(session, ctx.policy, 2.0))
    assert outcome.ok and site.remotes == ["127.0.0.7"]


def test_remembered_verdicts_are_the_guards() -> None:
    # The memo saves the cost of deciding again, never the decision: each answer equals the
    # guard's own, refusals included, call after call.
    verdicts = Verdicts(ONLY_127_0_0_1)
    cases = [("127.0.0.1", 8080), ("127.0.0.2", 8080), ("::ffff:169.254.169.254", 80)]
    for _ in range(2):
        for host, port in cases:
            try:
                check_endpoint(host, port, ONLY_127_0_0_1)
            except Blocked as exc:
                with pytest.raises(Blocked) as caught:
                    verdicts.check_endpoint(host, port)
                assert caught.value.reason == exc.reason
            else:
                verdicts.check_endpoint(host, port)
        for url in ("http://127.0.0.1:1/", "ftp://127.0.0.1/", "http://[::1]/"):
            try:
                check_url(url, ONLY_127_0_0_1)
            except Blocked as exc:
                with pytest.raises(Blocked) as caught:
                    verdicts.check_url(url)
                assert caught.value.reason == exc.reason
            else:
                verdicts.check_url(url)

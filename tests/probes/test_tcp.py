"""The tcp probe on loopback: connect, refused, blocked before any socket, timeout."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from probe_targets import Canary, closed_port

from bot.model import Target
from bot.probes.base import ProbeContext, Reason
from bot.probes.tcp import probe_tcp
from bot.ssrf import Policy

MakeContext = Callable[..., ProbeContext]
StartCanary = Callable[..., Awaitable[Canary]]


def tcp(host: str, port: int) -> Target:
    return Target("port", f"tcp://{host}:{port}")


async def test_open_port_is_ok(context: MakeContext, canary: StartCanary) -> None:
    listener = await canary()
    outcome = await probe_tcp(tcp("127.0.0.1", listener.port), context())
    assert outcome.ok and outcome.error is None and outcome.status is None
    assert outcome.latency_ms is not None and outcome.latency_ms > 0
    assert await listener.accepted_before_now() == 1


async def test_name_is_resolved_and_answers_tried_in_order(
    context: MakeContext, canary: StartCanary
) -> None:
    # "localhost" resolves locally; if it also gives ::1 first, the policy blocks that answer
    # and the probe goes on to 127.0.0.1.
    listener = await canary()
    outcome = await probe_tcp(tcp("localhost", listener.port), context())
    assert outcome.ok
    assert await listener.accepted_before_now() == 1


async def test_refused(context: MakeContext) -> None:
    port = closed_port()
    outcome = await probe_tcp(tcp("127.0.0.1", port), context())
    assert not outcome.ok and outcome.error is Reason.REFUSED
    assert outcome.detail == f"127.0.0.1:{port} refused the connection (nothing is listening there)"


async def test_blocked_address_opens_no_connection(
    context: MakeContext, canary: StartCanary
) -> None:
    listener = await canary()
    outcome = await probe_tcp(tcp("127.0.0.1", listener.port), context(policy=Policy()))
    assert not outcome.ok and outcome.error is Reason.BLOCKED
    assert (
        outcome.detail == "127.0.0.1 is a loopback address (127.0.0.0/8); probes may not reach it"
    )
    assert await listener.accepted_before_now() == 0


async def test_blocked_port_opens_no_connection(context: MakeContext, canary: StartCanary) -> None:
    listener = await canary()
    policy = Policy.from_config(["127.0.0.0/8"], allow_any_port_for_allowed_ranges=False)
    outcome = await probe_tcp(tcp("127.0.0.1", listener.port), context(policy=policy))
    assert outcome.error is Reason.BLOCKED
    assert outcome.detail is not None and outcome.detail.startswith(f"port {listener.port} is not")
    assert await listener.accepted_before_now() == 0


async def test_unresolvable_name_is_dns(
    context: MakeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fake getaddrinfo: no real DNS query for a name that is not local.
    async def nxdomain(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", nxdomain)
    outcome = await probe_tcp(tcp("nowhere.test", 443), context())
    assert outcome.error is Reason.DNS
    assert outcome.detail == "nowhere.test does not resolve (Name or service not known)"


async def test_target_without_port(context: MakeContext) -> None:
    outcome = await probe_tcp(Target("port", "tcp://127.0.0.1"), context())
    assert outcome.error is Reason.CONNECTION
    assert outcome.detail == "tcp://127.0.0.1 is not a valid target (expected tcp://host:port)"


@pytest.fixture
async def full_backlog() -> AsyncIterator[int]:
    """A loopback port whose accept queue is full, so a new connect gets no answer.

    A listener with backlog 0 that never accepts: once its queue is full the kernel drops new
    SYNs, and connect() waits. Fill it until a connect stalls (detected with a short timeout).
    """
    loop = asyncio.get_running_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    held: list[socket.socket] = []
    try:
        for _ in range(16):
            sock = socket.socket()
            sock.setblocking(False)
            held.append(sock)
            try:
                async with asyncio.timeout(0.2):
                    await loop.sock_connect(sock, listener.getsockname())
            except TimeoutError:
                break
        else:
            pytest.skip("this kernel never stalls a connect to a full accept queue")
        yield int(listener.getsockname()[1])
    finally:
        for sock in held:
            sock.close()
        listener.close()


async def test_no_answer_is_timeout(context: MakeContext, full_backlog: int) -> None:
    started = time.perf_counter()
    outcome = await probe_tcp(tcp("127.0.0.1", full_backlog), context(timeout=0.5))
    assert not outcome.ok and outcome.error is Reason.TIMEOUT
    assert outcome.detail == f"no answer from 127.0.0.1:{full_backlog} within 0.5 s"
    assert time.perf_counter() - started < 2.0

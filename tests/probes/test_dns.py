"""The dns probe: "localhost" through the system resolver, everything else through fake resolvers.

No test asks a real DNS server about an Internet name (RELIABILITY.md): names that are not local
go to a resolver object passed in.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from bot.model import Target
from bot.probes.base import ProbeContext, Reason
from bot.probes.dns import probe_dns

MakeContext = Callable[..., ProbeContext]


def dns(name: str, *records: str) -> Target:
    return Target("dns", f"dns://{name}", expect_records=records)


async def test_localhost_resolves(context: MakeContext) -> None:
    outcome = await probe_dns(dns("localhost", "127.0.0.1"), context())
    assert outcome.ok and outcome.error is None
    assert outcome.latency_ms is not None


async def test_missing_expected_record(context: MakeContext) -> None:
    outcome = await probe_dns(dns("localhost", "127.0.0.1", "10.9.8.7"), context())
    assert not outcome.ok and outcome.error is Reason.RECORDS
    assert outcome.detail is not None
    assert outcome.detail.startswith("localhost resolves to ")
    assert outcome.detail.endswith("not to 10.9.8.7 as expected")


async def test_records_compare_as_addresses(context: MakeContext) -> None:
    async def answers(name: str) -> list[str]:
        return ["0:0:0:0:0:0:0:1", "fe80::1%eth0", "192.0.2.7"]

    target = dns("svc.example", "::1", "fe80::1", "192.0.2.7")
    assert (await probe_dns(target, context(), resolve=answers)).ok


async def test_name_that_does_not_resolve(context: MakeContext) -> None:
    asked: list[str] = []

    async def nxdomain(name: str) -> list[str]:
        asked.append(name)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    outcome = await probe_dns(dns("nowhere.example"), context(), resolve=nxdomain)
    assert asked == ["nowhere.example"]
    assert not outcome.ok and outcome.error is Reason.DNS
    assert outcome.detail == "nowhere.example does not resolve (Name or service not known)"


async def test_no_addresses(context: MakeContext) -> None:
    async def empty(name: str) -> list[str]:
        return []

    outcome = await probe_dns(dns("mx-only.example"), context(), resolve=empty)
    assert outcome.error is Reason.DNS
    assert outcome.detail == "mx-only.example has no A or AAAA records"


async def test_resolver_that_never_answers_times_out(context: MakeContext) -> None:
    never = asyncio.Event()

    async def silent(name: str) -> list[str]:
        await never.wait()
        return []

    started = time.perf_counter()
    outcome = await probe_dns(dns("slow.example"), context(timeout=0.5), resolve=silent)
    assert outcome.error is Reason.TIMEOUT
    assert outcome.detail == "no answer from slow.example within 0.5 s"
    assert time.perf_counter() - started < 2.0

"""The agent against a real core on loopback: results arrive, the spool holds them while the core
is down and drains with zero duplicates when it is back, rechecks and on-demand checks work, and
batches the core refuses are set aside instead of retried forever.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_harness import KEY_JP, KEY_US, WEB_TASK, Core, batch, make_catalog, start_target

from bot.agents import Agent, DiskSpool, MemorySpool
from bot.agents.http_link import HttpLink
from bot.agents.local import LocalAgent
from bot.agents.stats import AgentStats
from bot.config import ProbeSettings
from bot.model import Target
from bot.probes import make_context, run_probe
from bot.probes.base import ProbeContext, Reason
from bot.probing.tasks import ProbeTask

SETTINGS = ProbeSettings(allow_private=("127.0.0.0/8",), timeout_seconds=2.0)


@pytest.fixture
async def target() -> AsyncIterator[str]:
    runner, url = await start_target()
    yield url
    await runner.cleanup()


@pytest.fixture
async def probe_ctx() -> AsyncIterator[ProbeContext]:
    ctx = make_context(SETTINGS)
    yield ctx
    await ctx.session.close()


@pytest.fixture
async def live_core(tmp_path: Path, target: str) -> AsyncIterator[Core]:
    """A core whose catalog points at the loopback target, probed every second."""
    core = await Core(tmp_path / "core.db", make_catalog(target), interval=1).start()
    yield core
    await core.stop()


def make_agent(
    core_url: str,
    spool: DiskSpool | MemorySpool,
    ctx: ProbeContext,
    *,
    key: bytes = KEY_JP,
    region: str = "JP",
    ondemand_ctx: ProbeContext | None = None,
) -> Agent:
    quick = ondemand_ctx or ctx
    return Agent(
        link=HttpLink(core_url=core_url, agent_id="jp-1", key=key, request_seconds=5),
        spool=spool,
        probe=lambda t: run_probe(t, ctx),
        ondemand_probe=lambda t: run_probe(t, quick),
        region=region,
        batch_seconds=0.05,
        poll_seconds=5,
        retry_min=0.02,
        retry_max=0.1,
    )


async def until(stats: AgentStats, predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(seconds):
        await stats.wait_for(predicate)


async def test_results_arrive(live_core: Core, tmp_path: Path, probe_ctx: ProbeContext) -> None:
    spool = await DiskSpool.open(tmp_path / "spool")
    agent = make_agent(live_core.url, spool, probe_ctx)
    await agent.start()
    try:
        await live_core.received.until(2)
    finally:
        await agent.stop()
        spool.close()
    records = live_core.received.records
    assert {(r.service, r.region) for r in records} == {("acme", "JP")}
    assert all(r.outcome.ok and r.outcome.status == 200 for r in records)
    assert (await live_core.counts())["probe_results"] == agent.stats.produced
    assert len(spool) == 0 and not list((tmp_path / "spool").glob("*.json"))


async def test_spool_survives_a_core_outage_with_no_duplicates(
    live_core: Core, tmp_path: Path, probe_ctx: ProbeContext
) -> None:
    spool_dir = tmp_path / "spool"
    spool = await DiskSpool.open(spool_dir)
    agent = make_agent(live_core.url, spool, probe_ctx)
    await agent.start()
    core = live_core
    try:
        await until(agent.stats, lambda s: s.sent >= 1)
        await core.stop()  # the core goes away; the agent keeps probing
        sent_before = agent.stats.sent
        await until(agent.stats, lambda s: s.send_failures >= 1 and s.spooled >= sent_before + 3)
        assert len(list(spool_dir.glob("*.json"))) >= 2  # on disk, not only in memory
        assert agent.stats.sent == sent_before

        core = await Core(core.db, core.catalog, interval=1).on_port(core.port).start()
        await until(agent.stats, lambda s: s.sent >= sent_before + 3 and len(spool) == 0)
    finally:
        await agent.stop()
        spool.close()
        await core.stop()
    rows = await _count_rows(core)
    assert rows == agent.stats.produced
    assert agent.stats.rejected == 0 and len(spool) == 0


async def _count_rows(core: Core) -> int:
    reopened = await Core(core.db, core.catalog).start()
    try:
        return (await reopened.counts())["probe_results"]
    finally:
        await reopened.stop()


async def test_batch_accepted_before_a_crash_is_sent_again_as_duplicate(
    core: Core, tmp_path: Path, probe_ctx: ProbeContext
) -> None:
    # The core stored the batch but the agent died before deleting its spool file.
    spool = await DiskSpool.open(tmp_path / "spool")
    body = json.dumps(batch("crashed", n=3)).encode()
    await spool.put("crashed", body)
    link = HttpLink(core_url=core.url, agent_id="jp-1", key=KEY_JP)
    try:
        assert await link.send(body) is False  # stored, not a duplicate
    finally:
        await link.close()
    spool.close()

    spool = await DiskSpool.open(tmp_path / "spool")  # the restarted agent finds the file
    assert len(spool) == 1
    agent = make_agent(core.url, spool, probe_ctx)
    await agent.start()
    try:
        await until(agent.stats, lambda s: s.duplicates == 1)
    finally:
        await agent.stop()
        spool.close()
    assert (await core.counts())["probe_results"] == 3
    assert not list((tmp_path / "spool").glob("*.json"))


async def test_refused_batch_is_set_aside_not_retried(
    core: Core, tmp_path: Path, probe_ctx: ProbeContext
) -> None:
    spool = await DiskSpool.open(tmp_path / "spool")
    await spool.put("bad", json.dumps(batch("bad", service="nope")).encode())
    await spool.put("good", json.dumps(batch("good", n=2)).encode())
    agent = make_agent(core.url, spool, probe_ctx)
    await agent.start()
    try:
        await until(agent.stats, lambda s: s.rejected == 1 and s.sent == 1)
    finally:
        await agent.stop()
        spool.close()
    rejected = tmp_path / "spool" / "rejected"
    [kept] = rejected.glob("*.json")
    assert "bad" in kept.name
    assert "unknown service/target" in kept.with_name(kept.name + ".why").read_text()
    assert (await core.counts())["probe_results"] == 2


async def test_wrong_key_keeps_batches_for_the_operator_to_fix(
    core: Core, tmp_path: Path, probe_ctx: ProbeContext, caplog: pytest.LogCaptureFixture
) -> None:
    spool = await DiskSpool.open(tmp_path / "spool")
    await spool.put("b1", json.dumps(batch("b1")).encode())
    agent = make_agent(core.url, spool, probe_ctx, key=KEY_US)
    await agent.start()
    try:
        await until(agent.stats, lambda s: s.send_failures >= 2)
    finally:
        await agent.stop(drain_seconds=0.5)
        spool.close()
    assert agent.stats.rejected == 0 and len(spool) == 1  # kept, not thrown away
    assert "refused our signature" in caplog.text
    assert KEY_US.decode() not in caplog.text


async def test_second_agent_on_one_spool_is_refused(tmp_path: Path) -> None:
    from bot.agents.spool import SpoolLocked

    first = await DiskSpool.open(tmp_path / "spool")
    try:
        with pytest.raises(SpoolLocked):
            await DiskSpool.open(tmp_path / "spool")
    finally:
        first.close()


async def test_region_mismatch_stops_the_agent(
    core: Core, tmp_path: Path, probe_ctx: ProbeContext
) -> None:
    agent = make_agent(core.url, MemorySpool(), probe_ctx, region="US")  # core says JP
    await agent.start()
    try:
        async with asyncio.timeout(10):
            await agent.failed.wait()
    finally:
        await agent.stop()
    assert agent.error is not None and "region JP" in str(agent.error)


async def test_recheck_and_on_demand_reach_a_running_agent(
    tmp_path: Path, target: str, probe_ctx: ProbeContext
) -> None:
    # Interval of a day: nothing runs on schedule during the test, only what the core asks.
    core = await Core(tmp_path / "core.db", make_catalog(target), interval=86_400).start()
    # As run_agent builds it: on-demand URLs come from chat, so no operator-allowed ranges.
    public = make_context(SETTINGS.model_copy(update={"allow_private": ()}))
    agent = make_agent(core.url, MemorySpool(), probe_ctx, ondemand_ctx=public)
    await agent.start()
    try:
        await until(agent.stats, lambda s: s.assignments >= 1)
        assert core.hub.request_recheck([WEB_TASK]) == 1
        await core.received.until(1)
        assert [(r.service, r.target) for r in core.received.records] == [("acme", "web")]
        assert core.received.records[0].outcome.ok  # the operator's loopback target: allowed

        by_region = await core.hub.probe_by_region(target + "ondemand", 10)
        assert set(by_region) == {"JP"}
        assert by_region["JP"].error is Reason.BLOCKED  # the same loopback URL, from chat
        await until(agent.stats, lambda s: s.ondemand == 1)  # the agent saw its answer land
    finally:
        await agent.stop()
        await core.stop()
        await public.session.close()


async def test_local_agent_writes_through_the_hub(
    tmp_path: Path, target: str, probe_ctx: ProbeContext
) -> None:
    core = await Core(tmp_path / "core.db", make_catalog(target), interval=1).start()
    local = LocalAgent(core.hub, region="US", probe_settings=SETTINGS)
    await local.start()
    try:
        await core.received.until(2)
    finally:
        await local.stop()
    assert local.stats is not None
    produced = local.stats.produced
    try:
        assert {r.region for r in core.received.records} == {"US"}
        assert (await core.counts())["probe_results"] == produced
        status = {s.id: s for s in await core.hub.status()}
        assert status["local"].connected and status["local"].results == produced
        with pytest.raises(ValueError, match="already used"):
            core.hub.local_link("jp-1", "JP")
        # The core probes its own region itself; on-demand checks ask remote agents only.
        assert await core.hub.probe_by_region("http://example.invalid/", 0.01) == {}
    finally:
        await core.stop()


async def test_public_only_tasks_never_get_the_operators_private_ranges(
    tmp_path: Path, target: str
) -> None:
    """A URL a chat admin gave is probed under the public policy even where loopback is allowed."""
    core = await Core(tmp_path / "core.db", make_catalog(target), interval=1).start()
    web = Target("web", target)
    core.hub.set_tasks(
        [
            ProbeTask("acme", web, 1),
            ProbeTask("acme", Target("api", target), 1, public_only=True),
        ]
    )
    local = LocalAgent(core.hub, region="US", probe_settings=SETTINGS)
    await local.start()
    try:
        async with asyncio.timeout(10):
            while not {"web", "api"} <= {r.target for r in core.received.records}:
                await core.received.until(len(core.received.records) + 1)
    finally:
        await local.stop()
        await core.stop()
    by_target = {r.target: r.outcome for r in core.received.records}
    assert by_target["web"].ok
    assert not by_target["api"].ok and by_target["api"].error is Reason.BLOCKED

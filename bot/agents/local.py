"""The core's own region, probed by an in-process agent: the same Agent over a ``LocalLink``.

``[probes] local_agent = true`` (the default) means the core probes as ``[bot] default_region``
with exactly the code remote agents run (schedule, batches, re-checks, on-demand), writing through
the hub without HTTP or a key. Its spool is in memory: the store is in the same process, so
there is no network outage to outlast, only a database hiccup.
"""

from __future__ import annotations

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.agents.client import Agent, probe_contexts
from bot.agents.hub import AgentHub
from bot.agents.spool import MemorySpool
from bot.agents.stats import AgentStats
from bot.config import ProbeSettings
from bot.probes import run_probe
from bot.probes.base import ProbeContext


class LocalAgent:
    def __init__(
        self,
        hub: AgentHub,
        *,
        region: str,
        probe_settings: ProbeSettings,
        scheduler: AsyncIOScheduler | None = None,
        agent_id: str = "local",
    ) -> None:
        self._hub = hub
        self._region = region
        self._settings = probe_settings
        self._scheduler = scheduler
        self._agent_id = agent_id
        self._contexts: tuple[ProbeContext, ...] | None = None
        self.agent: Agent | None = None

    @property
    def stats(self) -> AgentStats | None:
        return None if self.agent is None else self.agent.stats

    async def start(self) -> None:
        """Register with the hub and start probing (the scheduler, if shared, must be running)."""
        ctx, quick, public = self._contexts = probe_contexts(self._settings)
        self.agent = Agent(
            link=self._hub.local_link(self._agent_id, self._region),
            spool=MemorySpool(),
            probe=lambda target: run_probe(target, ctx),
            ondemand_probe=lambda target: run_probe(target, quick),
            public_probe=lambda target: run_probe(target, public),
            region=self._region,
            scheduler=self._scheduler,
        )
        await self.agent.start()

    async def stop(self) -> None:
        if self.agent is not None:
            await self.agent.stop(drain_seconds=2.0)
        if self._contexts is not None:
            for ctx in self._contexts:
                await ctx.session.close()
            self._contexts = None

"""Probing as the core runs it: the agent hub, the local agent, confirmation and on-demand checks.

Assembled once at start from the config and the catalog. Results from every region (the local
agent in-process, remote agents over signed HTTP) enter through the hub, are stored, and feed the
coordinator, whose re-check bursts go back out through the hub to every region.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from aiohttp import web

from bot.agents import AgentHub, LocalAgent, add_agent_routes, load_credentials
from bot.agents.hub import connected_window
from bot.config import ProbeSettings, Settings
from bot.model import Catalog, Service
from bot.probes import make_context
from bot.probing.confirm import Confirmer
from bot.probing.coordinator import ProbeCoordinator, RecheckPolicy
from bot.probing.ondemand import OnDemand
from bot.probing.tasks import ProbeTask, tasks_from_catalog
from bot.store import Store


class Probing:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        store: Store,
        environ: Mapping[str, str],
        tenant_services: Sequence[Service] = (),
    ) -> None:
        p, v = settings.probes, settings.verdict
        self._catalog = catalog
        self._settings = settings
        tasks = self._tasks(tenant_services)
        self.coordinator = ProbeCoordinator(
            Confirmer(failures=v.confirm_failures, successes=v.recover_successes),
            {t.id: t for t in tasks},
            # confirm_failures re-checks per region: every region can confirm from the burst
            # alone instead of waiting for its next scheduled probe.
            policy=RecheckPolicy(enabled=p.recheck, bursts=v.confirm_failures),
            remote=self._burst,
        )
        # Raises MissingKey (a clear message naming the variable) when a key is not set.
        self.hub = AgentHub(
            store=store,
            tasks=tasks,
            credentials=load_credentials(settings.agents, environ),
            on_results=self.coordinator.on_results,
            connected_seconds=connected_window(p.interval_seconds),
        )
        self.local: LocalAgent | None = None
        # Chat users never get the operator's private ranges: a default policy, the chat timeout.
        # (Built here, inside the running loop, because the probe session needs one.)
        chat = ProbeSettings(ports=p.ports, tls_warn_days=p.tls_warn_days)
        self.ondemand = OnDemand(
            region=settings.bot.default_region,
            ctx=make_context(chat, timeout=p.on_demand_timeout_seconds),
            remote=self.hub.probe_by_region,
        )

    def _tasks(self, tenant_services: Sequence[Service]) -> list[ProbeTask]:
        interval = self._settings.probes.interval_seconds
        # Chat admins gave these URLs: probed under the public policy wherever they run.
        own = tasks_from_catalog(Catalog(tuple(tenant_services)), interval, public_only=True)
        return tasks_from_catalog(self._catalog, interval) + own

    def set_tenant_services(self, services: Sequence[Service]) -> None:
        """Probe the catalog plus these; agents pick up the change within one long poll."""
        tasks = self._tasks(services)
        self.coordinator.update_tasks({t.id: t for t in tasks})
        self.hub.set_tasks(tasks)

    def mount(self, app: web.Application) -> None:
        """Add the agent endpoints to the API server (before it starts)."""
        add_agent_routes(app, self.hub)

    async def start(self) -> None:
        p = self._settings.probes
        region = self._settings.bot.default_region
        if p.local_agent:
            self.local = LocalAgent(self.hub, region=region, probe_settings=p)
            await self.local.start()

    async def _burst(
        self, task_ids: Sequence[str], times: int, spacing: float, regions: Sequence[str] | None
    ) -> None:
        for i in range(times):
            if i:
                # Pacing between re-checks of a live target, not a wait for another task.
                await asyncio.sleep(spacing)
            self.hub.request_recheck(task_ids, regions)

    async def close(self) -> None:
        if self.local is not None:
            await self.local.stop()
        await self.coordinator.close()
        self.hub.close()
        await self.ondemand.close()

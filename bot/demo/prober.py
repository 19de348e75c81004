"""The demo's simulated regions: real HTTP probes, each region from its own loopback address.

Each region has its own probe context: the same SSRF-guarded session as production probes, bound
to the region's source address, under a policy that allows only 127.0.0.0/8 (any port there, as
the demo target server listens on an ephemeral one).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from bot.config import ProbeSettings
from bot.demo.scenario import REGION_ADDRESSES
from bot.model import Service, to_epoch
from bot.probes import ProbeContext, make_context, run_probe
from bot.store import ProbeRow, Store

log = logging.getLogger(__name__)

# The demo targets all live on loopback; nothing else is reachable from a demo probe.
DEMO_PROBES = ProbeSettings(allow_private=("127.0.0.0/8",))


class DemoProber:
    def __init__(
        self, store: Store, services: tuple[Service, ...], *, timeout: float = 2.0
    ) -> None:
        self._store = store
        self._services = services
        self._timeout = timeout
        self._contexts: dict[str, ProbeContext] = {}

    async def start(self) -> None:
        for region, address in REGION_ADDRESSES.items():
            self._contexts[region] = make_context(
                DEMO_PROBES, local_addr=address, timeout=self._timeout
            )

    async def stop(self) -> None:
        for ctx in self._contexts.values():
            await ctx.session.close()
        self._contexts.clear()

    async def round(self, at: datetime) -> int:
        """Probe every demo target from every region once; store the results stamped ``at``."""
        at_ms = to_epoch(at) * 1000 + at.microsecond // 1000
        jobs = [
            (service, target, region, run_probe(target, ctx))
            for region, ctx in self._contexts.items()
            for service in self._services
            for target in service.targets
        ]
        outcomes = await asyncio.gather(*(job[3] for job in jobs))
        rows = []
        for (service, target, region, _), outcome in zip(jobs, outcomes, strict=True):
            sid = self._store.service_id(service.key)
            if sid is None:
                continue
            rows.append(
                ProbeRow(
                    sid,
                    target.kind,
                    region,
                    at_ms,
                    outcome.ok,
                    outcome.status,
                    outcome.latency_ms,
                    outcome.error,
                )
            )
        return await self._store.add_probe_results(rows)

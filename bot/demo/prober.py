"""The demo's simulated regions: real HTTP probes, each region from its own loopback address."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import aiohttp

from bot.demo.scenario import REGION_ADDRESSES
from bot.model import Service, to_epoch
from bot.probes import probe_http
from bot.store import ProbeRow, Store

log = logging.getLogger(__name__)


class DemoProber:
    def __init__(
        self, store: Store, services: tuple[Service, ...], *, timeout: float = 2.0
    ) -> None:
        self._store = store
        self._services = services
        self._timeout = timeout
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        for region, address in REGION_ADDRESSES.items():
            connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
            self._sessions[region] = aiohttp.ClientSession(connector=connector, trust_env=False)

    async def stop(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def round(self, at: datetime) -> int:
        """Probe every demo target from every region once; store the results stamped ``at``."""
        at_ms = to_epoch(at) * 1000 + at.microsecond // 1000
        jobs = [
            (service, target, region, probe_http(session, target, seconds=self._timeout))
            for region, session in self._sessions.items()
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

"""Demo mode: loopback target services, simulated regions and seeded history, all offline.

Started by ``outagebot run --demo`` (the default when no chat adapter is configured). The demo uses
its own throwaway database next to the configured one, so it never mixes with real data, and it
never probes the real catalog: only its own loopback services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.demo.prober import DemoProber
from bot.demo.scenario import SCENARIOS, demo_services
from bot.demo.seed import seed
from bot.demo.server import DemoTargets
from bot.demo.stories import StoryTeller
from bot.model import Catalog, Service
from bot.store import ImportCounts, Store

log = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS = 10
STORY_INTERVAL_SECONDS = 60


def demo_database(database: str) -> Path:
    """``outagebot.db`` -> ``outagebot.demo.db``: the demo's own file."""
    path = Path(database)
    return path.with_name(f"{path.stem}.demo{path.suffix or '.db'}")


def reset_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class Demo:
    def __init__(self) -> None:
        self._targets = DemoTargets()
        self._prober: DemoProber | None = None
        self.services: tuple[Service, ...] = ()

    async def start_targets(self) -> tuple[Service, ...]:
        """Start the loopback services; return their catalog entries."""
        await self._targets.start()
        self.services = demo_services(self._targets.base_url)
        return self.services

    async def start(
        self,
        *,
        store: Store,
        catalog: Catalog,
        scheduler: AsyncIOScheduler,
        clock: Callable[[], datetime],
        dedupe_seconds: int,
    ) -> ImportCounts:
        now = clock()
        counts = await seed(store, catalog, now, dedupe_seconds)
        self._prober = DemoProber(store, self.services)
        await self._prober.start()
        # Warm-up: three real probe rounds, stamped one interval apart ending now, so the
        # confirmation rule (3 failures) already holds for the first /isitdown.
        for back in (2, 1, 0):
            await self._prober.round(now - timedelta(seconds=back * PROBE_INTERVAL_SECONDS))
        prober = self._prober

        async def tick() -> None:
            await prober.round(clock())

        scheduler.add_job(
            tick,
            "interval",
            seconds=PROBE_INTERVAL_SECONDS,
            id="demo-probes",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            jitter=1,
        )
        # The stories go on: each minute, the reports they would have had.
        teller = StoryTeller(store, clock, dedupe_seconds, now)
        scheduler.add_job(
            teller.tell,
            "interval",
            seconds=STORY_INTERVAL_SECONDS,
            id="demo-stories",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        for s in SCENARIOS:
            log.info("demo service key=%s story=%s", s.key, s.story)
        return counts

    async def stop(self) -> None:
        if self._prober is not None:
            await self._prober.stop()
        await self._targets.stop()

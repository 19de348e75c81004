"""The demo's stories going on while it runs: each minute, the reports they would have had.

Seeded once, the stories' reports would leave the verdict's 30-minute window within half an hour
and the demo's outages would fade to "up". ``StoryTeller.tell`` runs every minute and stores
what the stories add since its last run (``bot.demo.seed.live_batch``), through the import path.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

from bot.demo.seed import WINDOW_SECONDS, live_batch
from bot.model import to_epoch
from bot.store import Store


class StoryTeller:
    def __init__(
        self, store: Store, clock: Callable[[], datetime], dedupe_seconds: int, started: datetime
    ) -> None:
        self._store = store
        self._clock = clock
        self._dedupe = dedupe_seconds
        self._told = to_epoch(started)  # the stories are stored up to here
        self._rng = random.Random(7)

    async def tell(self) -> int:
        """Store what the stories added since the last call; how many reports that was."""
        until = to_epoch(self._clock())
        if until <= self._told:
            return 0  # no time passed, or the clock stepped back: those seconds are told
        # After a long pause (a suspended laptop) only what the window can show is added.
        since = max(self._told, until - WINDOW_SECONDS)
        batch = live_batch(self._store.service_ids(), since, until, self._rng, told=self._told)
        await self._store.import_batch(batch, self._dedupe)
        self._told = until  # only once stored: after a failed import the next run covers it
        return len(batch.reports)

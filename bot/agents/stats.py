"""What an agent has done so far: counters for logs and health, and a way to await a change.

``wait_for`` lets a caller (a health check, a test) wait for a condition on the counters without
polling or sleeping: every change wakes the waiters, which re-check their predicate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class AgentStats:
    produced: int = 0  # probe records made by scheduled runs and re-checks
    spooled: int = 0  # batches written to the spool
    sent: int = 0  # batches the core acknowledged (stored now or before)
    duplicates: int = 0  # of those, batches the core already had
    rejected: int = 0  # batches the core refused for their content (kept in rejected/)
    send_failures: int = 0  # attempts that found the core unavailable
    assignments: int = 0  # assignments applied
    rechecks: int = 0  # re-check runs started on the core's request
    ondemand: int = 0  # on-demand probes answered
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def bump(self, name: str, n: int = 1) -> None:
        setattr(self, name, getattr(self, name) + n)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_for(self, predicate: Callable[[AgentStats], bool]) -> None:
        """Return once ``predicate(self)`` holds (bound it with ``asyncio.timeout``)."""
        while not predicate(self):
            await self._changed.wait()

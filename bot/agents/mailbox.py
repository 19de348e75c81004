"""Per-agent command mailboxes for the long poll, and the on-demand requests awaiting answers.

A mailbox holds what the core wants an agent to do next (re-check these tasks, probe this URL)
until the agent's next ``GET /commands`` takes it. Re-checks are a set (asking twice before the
agent polls is one re-check); probe requests are capped, since each one already has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Final

from bot.agents.wire import Commands, ProbeRequest

# An agent polls at least every 25 s; more pending URL checks than this is a flood, not demand.
MAX_PENDING_PROBES: Final = 100


class Mailbox:
    def __init__(self) -> None:
        self._recheck: dict[str, None] = {}  # an ordered set
        self._probes: deque[ProbeRequest] = deque(maxlen=MAX_PENDING_PROBES)
        self._ready = asyncio.Event()

    def empty(self) -> bool:
        return not self._recheck and not self._probes

    def recheck(self, task_ids: Iterable[str]) -> None:
        self._recheck.update(dict.fromkeys(task_ids))
        self.wake()

    def probe(self, request: ProbeRequest) -> None:
        self._probes.append(request)
        self.wake()

    def forget(self, request_id: str) -> None:
        """Drop a probe request nobody waits for any more (it timed out)."""
        kept = [p for p in self._probes if p.request != request_id]
        self._probes.clear()
        self._probes.extend(kept)

    def take(self, version: str | None) -> Commands:
        commands = Commands(tuple(self._recheck), tuple(self._probes), version)
        self._recheck.clear()
        self._probes.clear()
        self._ready.clear()
        return commands

    def wake(self) -> None:
        self._ready.set()

    async def wait(self, seconds: float) -> None:
        """Until something arrives, ``wake()`` is called, or ``seconds`` pass."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), seconds)

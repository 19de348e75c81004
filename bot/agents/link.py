"""How an agent reaches the core: the ``CoreLink`` contract, its two errors, and the local link.

An ``Agent`` only ever talks to a ``CoreLink``. ``HttpLink`` (``http_link.py``) signs requests to
a remote core; ``LocalLink`` calls the hub in the same process, which is how the core probes its
own region without HTTP or a key. Both raise the same two errors, so the agent's retry and spool
logic is the same for both:

- ``CoreUnavailable``: try again later (connection refused, timeout, 5xx, a refused signature or
  clock); the batch stays in the spool.
- ``BatchRejected``: this batch can never be accepted (400, 403, 413); it is set aside.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Protocol

from bot.agents.auth import Peer
from bot.agents.wire import (
    Assignment,
    BadInput,
    Commands,
    dumps,
    outcome_json,
    parse_assignment,
)
from bot.probes.base import Outcome

if TYPE_CHECKING:
    from bot.agents.hub import AgentHub


class CoreUnavailable(Exception):
    """The core cannot take the request now; retry later with backoff."""


class BatchRejected(Exception):
    """The core refused this batch for what it contains; resending it cannot help."""


class CoreLink(Protocol):
    """The four things an agent asks of the core (see the ``bot.agents`` docstring)."""

    async def assignment(self) -> Assignment: ...

    async def send(self, body: bytes) -> bool:
        """Deliver one results batch (its JSON body); True if the core already had it."""
        ...

    async def commands(self, wait: float) -> Commands: ...

    async def answer(self, request_id: str, outcome: Outcome) -> None: ...

    async def close(self) -> None: ...


class LocalLink:
    """The core's in-process agent: the hub's own methods, with the HTTP errors' meaning."""

    def __init__(self, hub: AgentHub, peer: Peer) -> None:
        self._hub = hub
        self.peer = peer

    async def assignment(self) -> Assignment:
        try:
            return parse_assignment(await self._hub.assignment(self.peer))
        except sqlite3.Error as exc:
            raise CoreUnavailable(f"the database is unavailable: {exc}") from exc

    async def send(self, body: bytes) -> bool:
        try:
            reply = await self._hub.accept(self.peer, body)
        except BadInput as exc:
            raise BatchRejected(exc.message) from exc
        except sqlite3.Error as exc:
            raise CoreUnavailable(f"the database is unavailable: {exc}") from exc
        return bool(reply["duplicate"])

    async def commands(self, wait: float) -> Commands:
        try:
            return await self._hub.commands(self.peer, wait)
        except sqlite3.Error as exc:
            raise CoreUnavailable(f"the database is unavailable: {exc}") from exc

    async def answer(self, request_id: str, outcome: Outcome) -> None:
        body = dumps({"request": request_id, "outcome": outcome_json(outcome)})
        self._hub.answer(self.peer, body)

    async def close(self) -> None:
        return None

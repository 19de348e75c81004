"""The core's side of the agents: assignments, result batches, commands and on-demand checks.

``AgentHub`` is transport-free: ``routes.py`` calls it after checking a signature, and the core's
own in-process agent calls it through ``LocalLink`` without HTTP, so both paths share the same
validation, storage and callbacks. Input problems raise ``BadInput`` (4xx); storage failures
raise ``sqlite3.Error`` (the routes turn those into 503, never into a verdict).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.agents.auth import Credential, Peer, Verifier
from bot.agents.link import LocalLink
from bot.agents.mailbox import Mailbox
from bot.agents.protocol import MAX_WAIT_SECONDS, new_id
from bot.agents.wire import (
    BadInput,
    Commands,
    ProbeRequest,
    loads,
    parse_answer,
    parse_batch_head,
    parse_results,
    task_json,
    tasks_version,
)
from bot.model import from_epoch
from bot.probes.base import Outcome
from bot.probing.tasks import ProbeRecord, ProbeTask, ResultSink
from bot.store import AgentBatch, ProbeRow, Store

log = logging.getLogger(__name__)

RATE_WINDOW_SECONDS: Final = 60.0  # results_per_second averages over this
TOUCH_EVERY_SECONDS: Final = 30.0  # at most one last_seen write per agent this often


def connected_window(interval_seconds: float) -> float:
    """How recently an agent must have been seen to count as connected: two probe intervals,
    but never less than two long polls (an idle agent only polls every ``MAX_WAIT_SECONDS``)."""
    return 2 * max(interval_seconds, MAX_WAIT_SECONDS + 5)


_MAX_URL: Final = 2048


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    """One agent's answer to an on-demand check; ``outcome`` None: no answer in time."""

    agent_id: str
    region: str
    outcome: Outcome | None


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """An agent's health, as ``GET /api/v1/agents`` shows it."""

    id: str
    region: str
    last_seen: float | None  # epoch seconds of the last signed request or batch
    lag_ms: float | None  # the newest result's age when its batch arrived
    results_per_second: float  # results accepted in the last 60 s, divided by 60
    batches: int
    results: int
    connected: bool  # seen within ``connected_seconds`` (2 probe intervals by default)

    def json(self) -> dict[str, Any]:
        seen = None if self.last_seen is None else from_epoch(self.last_seen)
        return {
            "id": self.id,
            "region": self.region,
            "last_seen": None if seen is None else seen.isoformat().replace("+00:00", "Z"),
            "lag_ms": self.lag_ms,
            "results_per_second": round(self.results_per_second, 3),
            "batches": self.batches,
            "results": self.results,
            "connected": self.connected,
        }


class AgentHub:
    def __init__(
        self,
        *,
        store: Store,
        tasks: Sequence[ProbeTask],
        credentials: Sequence[Credential],
        on_results: ResultSink | None = None,
        connected_seconds: float = connected_window(60),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = Verifier(credentials, clock=clock)
        self._store = store
        self._on_results = on_results
        self._connected = connected_seconds
        self._clock = clock
        self._peers: dict[str, Peer] = {c.agent_id: Peer(c.agent_id, c.region) for c in credentials}
        self._boxes: dict[str, Mailbox] = {}
        self._contact: dict[str, float] = {}
        self._touched: dict[str, float] = {}
        self._rates: dict[str, deque[tuple[float, int]]] = {}
        self._pending: dict[str, dict[str, asyncio.Future[Outcome]]] = {}
        self._local: set[str] = set()  # in-process agents (local_link)
        self._closed = False
        self.set_tasks(tasks)

    # ---- configuration ------------------------------------------------------------------------

    def set_tasks(self, tasks: Sequence[ProbeTask]) -> None:
        """Replace the task list; waiting long polls return at once with the new version."""
        self._tasks = {t.id: t for t in tasks}
        self._known = {(t.service, t.target.kind) for t in tasks}
        self._task_json = [task_json(t) for t in tasks]
        self.version = tasks_version(self._task_json)
        for box in self._boxes.values():
            box.wake()

    def local_link(self, agent_id: str, region: str) -> LocalLink:
        """A link for an agent inside this process (the core's own region), no HTTP or key."""
        if agent_id in self._peers and agent_id not in self._local:
            raise ValueError(f"agent id {agent_id!r} is already used by an [[agents]] entry")
        peer = Peer(agent_id, region)
        self._peers[agent_id] = peer
        self._local.add(agent_id)
        return LocalLink(self, peer)

    def close(self) -> None:
        """Release every long poll now (the server is stopping)."""
        self._closed = True
        for box in self._boxes.values():
            box.wake()

    # ---- what agents call ---------------------------------------------------------------------

    async def assignment(self, peer: Peer) -> dict[str, Any]:
        await self._seen(peer)
        return {
            "agent": peer.agent_id,
            "region": peer.region,
            "tasks": self._task_json,
            "version": self.version,
        }

    async def accept(self, peer: Peer, body: bytes) -> dict[str, Any]:
        """Check and store a results batch; the same batch id twice is stored once."""
        batch_id, region, raw = parse_batch_head(loads(body))
        if region != peer.region:
            raise BadInput(
                403,
                f"region: agent {peer.agent_id} may only send results for {peer.region}, "
                f"not {region!r}",
            )
        now = self._clock()
        records = parse_results(raw, region, now_ms=int(now * 1000))
        rows = [self._row(i, r) for i, r in enumerate(records)]
        outcome = await self._store.add_agent_batch(
            AgentBatch(peer.agent_id, region, batch_id, rows, int(now * 1000))
        )
        self._contact[peer.agent_id] = now
        self._touched[peer.agent_id] = now  # add_agent_batch wrote last_seen
        if outcome.duplicate:
            log.info("duplicate batch agent=%s batch=%s", peer.agent_id, batch_id)
            return {"accepted": 0, "duplicate": True}
        self._rates.setdefault(peer.agent_id, deque()).append((now, outcome.accepted))
        self._rate(peer.agent_id, now)  # drops entries older than the window
        if outcome.accepted:
            # No new rows: a late resend whose batch id was pruned; the consumer saw these.
            await self._notify(records)
        return {"accepted": outcome.accepted, "duplicate": False}

    async def commands(self, peer: Peer, wait: float) -> Commands:
        """What this agent should do next, waiting up to ``wait`` seconds for something."""
        await self._seen(peer)
        box = self._boxes.setdefault(peer.agent_id, Mailbox())
        if box.empty() and not self._closed:
            await box.wait(min(max(wait, 0.0), MAX_WAIT_SECONDS))
        return box.take(self.version)

    def answer(self, peer: Peer, body: bytes) -> bool:
        """An on-demand outcome; False when nobody waits for it any more (late or unknown)."""
        request_id, outcome = parse_answer(loads(body))
        future = self._pending.get(request_id, {}).get(peer.agent_id)
        if future is None or future.done():
            return False
        future.set_result(outcome)
        return True

    # ---- what the core calls ------------------------------------------------------------------

    def request_recheck(self, task_ids: Iterable[str], regions: Iterable[str] | None = None) -> int:
        """Ask connected agents (in ``regions``, or all) to re-run these tasks now.

        Returns how many agents were asked. Unknown task ids are dropped: an agent could not
        run them anyway.
        """
        ids = [t for t in task_ids if t in self._tasks]
        if not ids:
            return 0
        peers = self._connected_peers(regions)
        for peer in peers:
            self._boxes.setdefault(peer.agent_id, Mailbox()).recheck(ids)
        return len(peers)

    async def request_probe(
        self,
        url: str,
        *,
        seconds: float = 10.0,
        regions: Iterable[str] | None = None,
        include_local: bool = True,
    ) -> list[AgentAnswer]:
        """Probe ``url`` from every connected agent; answers later than ``seconds`` are None.

        The URL is checked again on each agent by its own SSRF guard before any socket opens.
        """
        if not url.startswith(("http://", "https://")) or len(url) > _MAX_URL:
            raise ValueError("only http:// or https:// URLs up to 2048 characters can be probed")
        peers = [
            p
            for p in self._connected_peers(regions)
            if include_local or p.agent_id not in self._local
        ]
        if not peers:
            return []
        loop = asyncio.get_running_loop()
        request_id = new_id()
        futures = {p.agent_id: loop.create_future() for p in peers}
        self._pending[request_id] = futures
        try:
            for peer in peers:
                box = self._boxes.setdefault(peer.agent_id, Mailbox())
                box.probe(ProbeRequest(request_id, url))
            await asyncio.wait(futures.values(), timeout=seconds)
        finally:
            del self._pending[request_id]
            for peer in peers:
                self._boxes[peer.agent_id].forget(request_id)
                futures[peer.agent_id].cancel()  # no-op when it has a result
        return [AgentAnswer(p.agent_id, p.region, _result(futures[p.agent_id])) for p in peers]

    async def probe_by_region(self, url: str, seconds: float) -> dict[str, Outcome]:
        """``request_probe`` shaped for ``bot.probing.ondemand.OnDemand``'s ``remote``.

        Region -> outcome from the remote agents (the core probes its own region itself, so
        in-process agents are not asked). With several agents in a region, one that reached
        the URL wins: the region cannot be "down" while a vantage point in it gets through.
        """
        answers = await self.request_probe(url, seconds=seconds, include_local=False)
        by_region: dict[str, Outcome] = {}
        for answer in answers:
            if answer.outcome is None:
                continue
            known = by_region.get(answer.region)
            if known is None or (answer.outcome.ok and not known.ok):
                by_region[answer.region] = answer.outcome
        return by_region

    async def status(self) -> list[AgentStatus]:
        """Configured, local and previously seen agents, by region then id."""
        rows = {r.id: r for r in await self._store.agents()}
        now = self._clock()
        out = []
        for agent_id in sorted(set(self._peers) | set(rows)):
            row = rows.get(agent_id)
            peer = self._peers.get(agent_id)
            seen = [t for t in (self._contact.get(agent_id), row.last_seen if row else None) if t]
            last = max(seen) if seen else None
            out.append(
                AgentStatus(
                    id=agent_id,
                    region=peer.region if peer else row.region if row else "",
                    last_seen=last,
                    lag_ms=row.lag_ms if row else None,
                    results_per_second=self._rate(agent_id, now),
                    batches=row.batches if row else 0,
                    results=row.results if row else 0,
                    connected=last is not None and now - last <= self._connected,
                )
            )
        return sorted(out, key=lambda s: (s.region, s.id))

    # ---- helpers ------------------------------------------------------------------------------

    def _row(self, index: int, record: ProbeRecord) -> ProbeRow:
        service_id = self._store.service_id(record.service)
        if service_id is None or (record.service, record.target) not in self._known:
            raise BadInput(
                400,
                f"results[{index}]: unknown service/target {record.service[:64]!r}/"
                f"{record.target[:64]!r}; fetch the assignment again",
            )
        o = record.outcome
        return ProbeRow(
            service_id,
            record.target,
            record.region,
            record.at_ms,
            o.ok,
            o.status,
            o.latency_ms,
            None if o.error is None else o.error.value,
        )

    async def _seen(self, peer: Peer) -> None:
        now = self._clock()
        self._contact[peer.agent_id] = now
        # Long polls arrive every few seconds; the database needs only a coarse last_seen.
        if now - self._touched.get(peer.agent_id, 0.0) >= TOUCH_EVERY_SECONDS:
            self._touched[peer.agent_id] = now
            await self._store.touch_agent(peer.agent_id, peer.region, int(now))

    def _connected_peers(self, regions: Iterable[str] | None) -> list[Peer]:
        wanted = None if regions is None else set(regions)
        now = self._clock()
        return [
            p
            for p in self._peers.values()
            if (wanted is None or p.region in wanted)
            and now - self._contact.get(p.agent_id, float("-inf")) <= self._connected
        ]

    def _rate(self, agent_id: str, now: float) -> float:
        window = self._rates.get(agent_id)
        if not window:
            return 0.0
        while window and window[0][0] < now - RATE_WINDOW_SECONDS:
            window.popleft()
        return sum(n for _, n in window) / RATE_WINDOW_SECONDS

    async def _notify(self, records: Sequence[ProbeRecord]) -> None:
        if self._on_results is None:
            return
        try:
            await self._on_results(records)
        except Exception:
            # The batch is stored; a failing consumer must not make the agent resend it.
            log.exception("on_results failed records=%d", len(records))


def _result(future: asyncio.Future[Outcome]) -> Outcome | None:
    if future.cancelled() or not future.done():
        return None
    return future.result()

"""The probe agent: fetch the assignment, probe on schedule, spool and send batches, obey commands.

An ``Agent`` runs five cooperating loops over one ``CoreLink``:

- assignment: fetch the task list (retrying with backoff while the core is down), schedule it with
  ``ProbeSchedule``, fetch again every ``refresh_seconds`` or as soon as a command poll reports a
  new ``version``;
- probes: APScheduler runs each task; every result becomes a ``ProbeRecord``;
- batching: records are cut into batches every ``batch_seconds`` or at ``batch_max`` records and
  written to the spool *before* sending (write-ahead: a crash loses at most the open batch);
- sending: the oldest spooled batch is sent; 200 deletes it, ``CoreUnavailable`` keeps it and
  backs off, ``BatchRejected`` sets it aside;
- commands: a long poll for re-checks (run those tasks now) and on-demand URL checks.

``run_agent`` builds a remote agent from settings and runs it until ``stop`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.agents.link import BatchRejected, CoreLink, CoreUnavailable
from bot.agents.protocol import MAX_WAIT_SECONDS, new_id
from bot.agents.spool import Spool
from bot.agents.stats import AgentStats
from bot.agents.wire import Assignment, ProbeRequest, batch_body
from bot.config import ProbeSettings
from bot.model import Target
from bot.probes import make_context, run_probe
from bot.probes.base import Outcome, ProbeContext
from bot.probing.schedule import ProbeSchedule
from bot.probing.tasks import ProbeRecord, ProbeTask

log = logging.getLogger(__name__)

# Probes of one task in flight at once (one scheduled or re-check, plus re-checks of a burst).
MAX_INFLIGHT_PER_TASK = 3

ProbeRunner = Callable[[Target], Awaitable[Outcome]]

# Several on-demand checks at once are fine; dozens would starve the scheduled probes.
_ONDEMAND_CONCURRENCY: Final = 4


class AgentError(Exception):
    """The agent cannot work as configured (e.g. its region disagrees with the core's config)."""


class AgentCrashed(AgentError):
    """A bug (or the disk) stopped one of the agent's loops; the log has the traceback."""


class Agent:
    def __init__(
        self,
        *,
        link: CoreLink,
        spool: Spool,
        probe: ProbeRunner,
        region: str,
        ondemand_probe: ProbeRunner | None = None,
        public_probe: ProbeRunner | None = None,
        scheduler: AsyncIOScheduler | None = None,
        batch_seconds: float = 1.0,
        batch_max: int = 500,
        refresh_seconds: float = 300.0,
        poll_seconds: float = MAX_WAIT_SECONDS,
        retry_min: float = 0.5,
        retry_max: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.link = link
        self.spool = spool
        self.region = region
        self.stats = AgentStats()
        self.error: AgentError | None = None
        self.failed = asyncio.Event()
        self._probe = probe
        self._ondemand_probe = ondemand_probe or probe
        # For tasks whose URL a chat admin gave: the public policy, the scheduled timeout.
        self._public_probe = public_probe or self._ondemand_probe
        self._scheduler = scheduler
        self._own_scheduler = scheduler is None
        self._batch_seconds = batch_seconds
        self._batch_max = batch_max
        self._refresh_seconds = refresh_seconds
        self._poll_seconds = poll_seconds
        self._retry = (retry_min, retry_max)
        self._clock = clock
        self._rng = random.Random()  # backoff jitter, not security
        self._assignment: Assignment | None = None
        self._tasks: dict[str, ProbeTask] = {}
        self._schedule: ProbeSchedule | None = None
        self._pending: list[ProbeRecord] = []
        self._running: Counter[str] = Counter()  # task id -> probes in flight
        self._inflight: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._assigned = asyncio.Event()
        self._refresh = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._send_now = asyncio.Event()
        self._ondemand = asyncio.Semaphore(_ONDEMAND_CONCURRENCY)
        self._core_down = False

    # ---- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loops and return; the first assignment arrives in the background."""
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(timezone="UTC")
        if self._own_scheduler:
            self._scheduler.start()
        # Salted with the region: agents elsewhere probe a target at other moments of the
        # interval, so some region sees a new failure sooner than any single phase would.
        self._schedule = ProbeSchedule(self._scheduler, self._scheduled, salt=self.region)
        for loop in (self._assignment_loop, self._batch_loop, self._send_loop, self._command_loop):
            self._loops.append(asyncio.create_task(self._guard(loop()), name=loop.__name__))
        self._send_now.set()  # batches left from a previous run go first

    async def stop(self, *, drain_seconds: float = 5.0) -> None:
        """Stop probing, spool what is pending, and try for ``drain_seconds`` to send it all."""
        self._stopping.set()
        if self._schedule is not None:
            self._schedule.sync([])
        if self._own_scheduler and self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._inflight:
            # Probes have their own timeout; let them finish so their results are kept.
            await asyncio.wait(self._inflight, timeout=drain_seconds)
        await self._flush()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_seconds):
                await self._drain_once()
        if len(self.spool):
            log.info("stopping with batches still spooled count=%d", len(self.spool))
        await self.link.close()

    async def _guard(self, loop: Coroutine[Any, Any, None]) -> None:
        try:
            await loop
        except AgentError as exc:
            self.error = exc
            self.failed.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug in a loop must not leave a zombie agent that looks alive.
            log.exception("agent loop crashed")
            self.error = AgentCrashed(f"internal error: {exc}")
            self.failed.set()

    # ---- assignment ---------------------------------------------------------------------------

    async def _assignment_loop(self) -> None:
        while True:
            delay = self._retry[0]
            while True:
                try:
                    assignment = await self.link.assignment()
                    break
                except CoreUnavailable as exc:
                    log.warning("cannot fetch the assignment, retrying in %.1f s: %s", delay, exc)
                    await self._pause(delay)
                    delay = self._next_delay(delay)
            self._apply(assignment)
            self._refresh.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._refresh.wait(), self._refresh_seconds)

    def _apply(self, assignment: Assignment) -> None:
        if assignment.region != self.region:
            raise AgentError(
                f"the core lists agent {assignment.agent!r} in region {assignment.region}, "
                f"but this agent was started for {self.region}; fix --region or [[agents]] region"
            )
        changed = self._assignment is None or assignment.version != self._assignment.version
        self._assignment = assignment
        self._tasks = {t.id: t for t in assignment.tasks}
        if self._schedule is not None:
            self._schedule.sync(assignment.tasks)
        self._assigned.set()
        self.stats.bump("assignments")
        if changed:
            log.info(
                "assignment applied agent=%s tasks=%d version=%s",
                assignment.agent,
                len(assignment.tasks),
                assignment.version,
            )

    # ---- probing ------------------------------------------------------------------------------

    async def _scheduled(self, task: ProbeTask, scheduled: float) -> None:
        # A scheduled run never overlaps another probe of the same task (a slow target must
        # not pile up runs).
        if not self._running[task.id]:
            await self._run(task)

    def _recheck(self, task_id: str) -> None:
        task = self._tasks.get(task_id)
        # Re-checks may overlap a probe in flight: against a hanging target each probe takes
        # the whole timeout, and waiting for it made confirmation take intervals, not seconds.
        # At most MAX_INFLIGHT_PER_TASK, so a burst cannot pile up on a dead target.
        if task is None or self._running[task_id] >= MAX_INFLIGHT_PER_TASK:
            return
        if self._stopping.is_set():
            return
        self.stats.bump("rechecks")
        self._spawn(self._run(task))

    async def _run(self, task: ProbeTask) -> None:
        # A run that starts after stop() began would produce a record nobody flushes.
        if self._stopping.is_set():
            return
        self._running[task.id] += 1
        current = asyncio.current_task()
        if current is not None:
            self._inflight.add(current)
        try:
            at_ms = int(self._clock() * 1000)
            try:
                runner = self._public_probe if task.public_only else self._probe
                outcome = await runner(task.target)
            except Exception:
                # Probes return failures as Outcomes; an exception is our bug, and recording it
                # as a failed probe would report our bug as the service's outage.
                log.exception("probe crashed task=%s", task.id)
                return
            self._record(ProbeRecord(task.service, task.target.kind, self.region, at_ms, outcome))
        finally:
            self._running[task.id] -= 1
            if not self._running[task.id]:
                del self._running[task.id]
            if current is not None:
                self._inflight.discard(current)

    def _record(self, record: ProbeRecord) -> None:
        self._pending.append(record)
        self.stats.bump("produced")
        if len(self._pending) >= self._batch_max:
            self._flush_now.set()

    # ---- batching and sending -----------------------------------------------------------------

    async def _batch_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self._batch_seconds)
            self._flush_now.clear()
            # Shielded: records taken from the buffer must reach the spool even if stop()
            # cancels this loop mid-write; stop()'s own flush then waits for the lock.
            await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._flush_lock:
            while self._pending:
                records = self._pending[: self._batch_max]
                del self._pending[: len(records)]
                batch_id = new_id()
                await self.spool.put(batch_id, batch_body(batch_id, self.region, records))
                self.stats.bump("spooled")
                self._send_now.set()

    async def _send_loop(self) -> None:
        delay = self._retry[0]
        while True:
            self._send_now.clear()
            if await self._send_oldest():
                delay = self._retry[0]
                continue
            if self._core_down:
                await self._pause(delay)
                delay = self._next_delay(delay)
            else:
                await self._send_now.wait()

    async def _send_oldest(self) -> bool:
        """Send the oldest batch; True if the spool moved on (sent or set aside)."""
        item = await self.spool.oldest()
        if item is None:
            return False
        try:
            duplicate = await self.link.send(item.body)
        except CoreUnavailable as exc:
            self.stats.bump("send_failures")
            if not self._core_down:
                log.warning("core unavailable, spooling batches to retry later: %s", exc)
            self._core_down = True
            return False
        except BatchRejected as exc:
            await self.spool.reject(item, str(exc))
            self.stats.bump("rejected")
            return True
        if self._core_down:
            log.info("core reachable again, sending spooled batches count=%d", len(self.spool))
            self._core_down = False
        await self.spool.done(item)
        if duplicate:
            self.stats.bump("duplicates")
        self.stats.bump("sent")
        return True

    async def _drain_once(self) -> None:
        while len(self.spool) and await self._send_oldest():
            pass

    # ---- commands -----------------------------------------------------------------------------

    async def _command_loop(self) -> None:
        await self._assigned.wait()
        delay = self._retry[0]
        while True:
            try:
                commands = await self.link.commands(self._poll_seconds)
            except CoreUnavailable as exc:
                log.debug("command poll failed, retrying in %.1f s: %s", delay, exc)
                await self._pause(delay)
                delay = self._next_delay(delay)
                continue
            delay = self._retry[0]
            current = self._assignment
            if commands.version and current is not None and commands.version != current.version:
                self._refresh.set()
            for task_id in commands.recheck:
                self._recheck(task_id)
            for request in commands.probe:
                self._spawn(self._answer(request))

    async def _answer(self, request: ProbeRequest) -> None:
        async with self._ondemand:
            try:
                outcome = await self._ondemand_probe(Target(kind="ondemand", url=request.url))
            except Exception:
                log.exception("on-demand probe crashed request=%s", request.request)
                return
        try:
            await self.link.answer(request.request, outcome)
        except CoreUnavailable as exc:
            log.info("on-demand answer not delivered request=%s: %s", request.request, exc)
            return
        self.stats.bump("ondemand")

    # ---- helpers ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._inflight.add(task)  # a strong reference until it ends (asyncio keeps weak ones)
        task.add_done_callback(self._inflight.discard)

    def _next_delay(self, delay: float) -> float:
        return min(self._retry[1], delay * 2)

    async def _pause(self, seconds: float) -> None:
        # Full jitter, so agents that lost the core together do not return in lockstep.
        await asyncio.sleep(self._rng.uniform(seconds / 2, seconds))


def probe_contexts(
    settings: ProbeSettings,
) -> tuple[ProbeContext, ProbeContext, ProbeContext]:
    """Contexts for scheduled, on-demand and public scheduled probes; call inside the loop.

    On-demand URLs and the targets of services chat admins add come from chat users, so their
    contexts never get the operator's private ranges (RELIABILITY.md). The on-demand timeout
    leaves time to answer before the core, which waits ``on_demand_timeout_seconds`` for every
    region, gives up.
    """
    public = settings.model_copy(update={"allow_private": ()})
    return (
        make_context(settings),
        make_context(public, timeout=settings.on_demand_timeout_seconds * 0.8),
        make_context(public),
    )


async def run_agent(
    *,
    agent_id: str,
    region: str,
    core_url: str,
    key: bytes,
    probe_settings: ProbeSettings,
    spool_dir: str | Path,
    stop: asyncio.Event,
) -> AgentStats:
    """Run a remote agent until ``stop`` is set; raise AgentError if it cannot work as configured.

    ``probe_settings`` is the ``[probes]`` section (``bot.config.ProbeSettings``): its SSRF policy,
    and timeout apply to every probe this agent makes, on-demand ones included.
    """
    from bot.agents.http_link import HttpLink
    from bot.agents.spool import DiskSpool

    spool = await DiskSpool.open(spool_dir)
    ctx, quick, public = probe_contexts(probe_settings)
    agent = Agent(
        link=HttpLink(core_url=core_url, agent_id=agent_id, key=key),
        spool=spool,
        probe=lambda target: run_probe(target, ctx),
        ondemand_probe=lambda target: run_probe(target, quick),
        public_probe=lambda target: run_probe(target, public),
        region=region,
    )
    log.info(
        "agent starting agent=%s region=%s core=%s spool=%s", agent_id, region, core_url, spool_dir
    )
    try:
        await agent.start()
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(agent.failed.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        await agent.stop()
    finally:
        for context in (ctx, quick, public):
            await context.session.close()
        spool.close()
    if agent.error is not None:
        raise agent.error
    return agent.stats

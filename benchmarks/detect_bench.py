"""Time to detect: faults injected into loopback targets, seen through the core's verdict.

The set-up the issue asks for, all on loopback: a core ``App`` in this process (tmp database,
API on ``127.0.0.1:0``, ``[probes] interval_seconds = 10``, ``local_agent = false``) and three
real agent processes (``outagebot agent``, regions US, JP and GB) whose probes leave from
127.0.0.21, .22 and .23 (``[probes] source_address``), so the fault server tells the regions apart
by ``request.remote``. Every catalog service has its own aiohttp listener on 127.0.0.1 (port 0),
switched per trial to answer 503, refuse connections (its listening socket closed, then re-opened
on the same port), hang (never answer: the agents' probe timeout is 5 s), or answer 503 to one
region only. A "flaky" service fails one probe in ten per region for the whole run, and a
"control" service never fails (its probes show the plain schedule: no re-checks).

A trial injects a fault at T0 and polls ``VerdictService.verdict`` every 0.5 s until it says
``down`` (``regional`` naming only the faulty region for one-region faults); it also records when
the coordinator's ``Confirmer`` had the same regions open. Then the fault is removed and the trial
waits until the verdict and the Confirmer have recovered. A service's next trial starts after the
coordinator's re-check cooldown (60 s per task) has passed since its last burst, plus a random
0-10 s, so the phase of the probe schedule varies; trials run on several services at once. In
full mode a few extra 503 trials start *inside* that cooldown (informational: no burst then).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import enum
import logging
import os
import random
import secrets
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.app import App
from bot.config import parse_settings
from bot.model import Category, RegionState, Service
from bot.probes.base import Outcome
from bot.probing.confirm import Change, Confirmer
from bot.probing.coordinator import RecheckPolicy
from bot.probing.tasks import ProbeRecord

from .common import PROJECT_DIR, VENV_BIN, Section, Table, data_dir, median, progress

# (region, agent id, source address of its probes)
REGIONS: tuple[tuple[str, str, str], ...] = (
    ("US", "us-1", "127.0.0.21"),
    ("JP", "jp-1", "127.0.0.22"),
    ("GB", "gb-1", "127.0.0.23"),
)
INTERVAL = 10  # [probes] interval_seconds
PROBE_TIMEOUT = 5.0  # the agents' [probes] timeout_seconds: a hang fails after this
POLL = 0.5  # how often the benchmark asks for the verdict
DETECT_LIMIT = 120.0  # a trial not detected by then counts as missed
RECOVER_LIMIT = 120.0
HANG_LIMIT = 150.0  # a hanging request is answered after this at the latest
HARD_DOWN_P95 = 30.0  # the targets
REGIONAL_MAX = 45.0
FLAKY_EVERY = 10
KEY_PREFIX = "OUTAGEBOT_BENCH_KEY_"
FAILING_STATES = (RegionState.DOWN, RegionState.PARTIAL)


class Kind(enum.StrEnum):
    HTTP_503 = "HTTP 503, every region"
    REFUSED = "connection refused, every region"
    HANG = "hang (no answer; 5 s probe timeout)"
    REGIONAL = "HTTP 503 from one region only"
    COOLDOWN = "HTTP 503 inside the re-check cooldown"


HARD_DOWN = (Kind.HTTP_503, Kind.REFUSED, Kind.HANG)


@dataclass(frozen=True, slots=True)
class DetectScenario:
    services: int  # trial services; each runs its trials one after another
    trials_per_kind: int
    cooldown_trials: int  # extra informational 503 trials inside the re-check cooldown
    deadline_seconds: float  # no trial starts later than this after the first one
    jitter_seconds: float = 5.0  # the agents' [probes] jitter_seconds (the config default)
    seed: int = 20_251_124


QUICK = DetectScenario(services=4, trials_per_kind=1, cooldown_trials=0, deadline_seconds=150)
FULL = DetectScenario(services=8, trials_per_kind=15, cooldown_trials=5, deadline_seconds=780)


@dataclass(frozen=True, slots=True)
class Spec:
    kind: Kind
    region: str | None = None  # the failing region of a one-region fault


@dataclass(slots=True)
class Trial:
    spec: Spec
    service: str
    t0: float = 0.0  # monotonic, when the fault was on
    wall0: float = 0.0
    verdict_s: float | None = None  # first poll with the expected verdict
    label_s: float | None = None  # first poll with any outage label (down or regional)
    opened_s: float | None = None  # first poll with the Confirmer open in the same regions
    first_fail_s: float | None = None  # first failed probe started after T0 (from the store)
    recovered_s: float | None = None  # after the fault was removed
    seen_before: set[str] = field(default_factory=set)  # other outage labels seen on the way
    wrong: set[str] = field(default_factory=set)  # labels that contradict the fault
    bursts: int = 0  # re-check bursts for this task between T0 and detection
    burst_probes: list[int] = field(default_factory=list)  # probes started in a burst's window


# ---- the fault server ---------------------------------------------------------------------------


class Mode(enum.StrEnum):
    OK = "ok"
    FAIL = "503"
    REFUSED = "refused"
    HANG = "hang"
    REGIONAL = "regional"


class FaultTarget:
    """One service's web target: its own loopback listener, switched between faults per trial."""

    def __init__(self, key: str, *, flaky_every: int = 0, seed: int = 0) -> None:
        self.key = key
        self.mode = Mode.OK
        self.bad_source: str | None = None
        self.port = 0
        self.hits: Counter[str] = Counter()  # requests by source address
        self.failed: Counter[str] = Counter()
        self._flaky_every = flaky_every
        self._rng = random.Random(seed)
        self._flaky_seen: Counter[str] = Counter()
        self._flaky_at: dict[str, int] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
        await self._runner.setup()
        await self._listen()

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reset_counts(self) -> None:
        self.hits.clear()
        self.failed.clear()
        self._flaky_seen.clear()
        self._flaky_at.clear()

    async def inject(self, mode: Mode, bad_source: str | None = None) -> None:
        self.bad_source = bad_source
        if mode is Mode.HANG:
            self._release = asyncio.Event()
        if mode is Mode.REFUSED and self._site is not None:
            site, self._site = self._site, None
            await site.stop()  # closes the listening socket: connections are refused
        self.mode = mode

    async def restore(self) -> None:
        if self.mode is Mode.REFUSED:
            await self._listen()
        self.mode = Mode.OK
        self.bad_source = None
        self._release.set()

    async def _listen(self) -> None:
        assert self._runner is not None
        # The same port again (SO_REUSEADDR is on); another socket may hold it for a moment.
        for attempt in range(60):
            site = web.TCPSite(self._runner, "127.0.0.1", self.port)
            try:
                await site.start()
            except OSError as exc:
                await site.stop()
                if attempt == 59:
                    raise RuntimeError(f"{self.key}: cannot listen on {self.port}: {exc}") from exc
                await asyncio.sleep(0.5)
                continue
            self._site = site
            if not self.port:
                self.port = int(self._runner.addresses[0][1])
            return

    async def _handle(self, request: web.Request) -> web.Response:
        source = request.remote or "?"
        self.hits[source] += 1
        if self.mode is Mode.HANG:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), HANG_LIMIT)
            return web.Response(text="released")  # the fault is over; the probe gave up long ago
        if self.mode is Mode.FAIL or (self.mode is Mode.REGIONAL and source == self.bad_source):
            return self._fail(source)
        if self._flaky_every and self._flaky_fails(source):
            return self._fail(source)
        return web.Response(text="ok")

    def _fail(self, source: str) -> web.Response:
        self.failed[source] += 1
        return web.Response(status=503, text="injected fault")

    def _flaky_fails(self, source: str) -> bool:
        # Exactly one failure in every block of ten requests from a source, at a random place in
        # the block: one probe in ten, two in a row at most (end of a block, start of the next).
        n = self._flaky_seen[source]
        self._flaky_seen[source] += 1
        if n % self._flaky_every == 0:
            self._flaky_at[source] = self._rng.randrange(self._flaky_every)
        return n % self._flaky_every == self._flaky_at[source]


# ---- agent processes ----------------------------------------------------------------------------

# Run in the child: die with the benchmark (PR_SET_PDEATHSIG survives exec), then exec the CLI.
_WRAPPER = """
import ctypes, os, signal, sys
if sys.platform == "linux":
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    if os.getppid() != int(sys.argv[1]):
        sys.exit(3)
os.execv(sys.argv[2], sys.argv[2:])
"""


class AgentProcess:
    def __init__(self, region: str, agent_id: str, address: str, work: Path, logs: Path) -> None:
        self.region = region
        self.agent_id = agent_id
        self.address = address
        self.key_env = KEY_PREFIX + region
        self.config = work / f"agent-{agent_id}.toml"
        self.spool = work / f"spool-{agent_id}"
        self.log_path = logs / f"agent-{agent_id}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self._log: Any = None

    def command(self, core_url: str) -> list[str]:
        return [
            str(VENV_BIN / "outagebot"), "--config", str(self.config), "-v", "agent",
            "--region", self.region, "--core", core_url, "--key-env", self.key_env,
            "--id", self.agent_id, "--spool", str(self.spool),
        ]  # fmt: skip

    async def start(self, core_url: str, key: str, jitter: float) -> None:
        self.config.write_text(
            "[probes]\n"
            f"interval_seconds = {INTERVAL}\n"
            f"timeout_seconds = {PROBE_TIMEOUT}\n"
            f"jitter_seconds = {jitter}\n"
            'allow_private = ["127.0.0.0/8"]\n'
            f'source_address = "{self.address}"\n',
            encoding="utf-8",
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(KEY_PREFIX)}
        env[self.key_env] = key  # only its own key
        self._log = self.log_path.open("wb")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRAPPER, str(os.getpid()), *self.command(core_url),
            stdin=asyncio.subprocess.DEVNULL, stdout=self._log, stderr=asyncio.subprocess.STDOUT,
            env=env,
        )  # fmt: skip

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.returncode

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None


class AgentDied(RuntimeError):
    pass


# ---- what the core logs -------------------------------------------------------------------------


class CoreLog(logging.Handler):
    """Re-check bursts (the coordinator logs each one) and the bot's warnings and errors."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.bursts: list[tuple[float, str]] = []  # (monotonic time, task id)
        self.problems: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "bot.probing.coordinator" and str(record.msg).startswith(
            "re-check burst"
        ):
            args = record.args if isinstance(record.args, tuple) else ()
            self.bursts.append((time.monotonic(), str(args[0]) if args else "?"))
        elif record.levelno >= logging.WARNING:
            self.problems[f"{record.levelname} {record.name}: {record.getMessage()[:160]}"] += 1

    def last_burst(self, task_id: str) -> float | None:
        times = [t for t, task in self.bursts if task == task_id]
        return max(times) if times else None


def task_id(service: str) -> str:
    return f"probe:{service}:web"


# ---- the benchmark ------------------------------------------------------------------------------


class DetectBench:
    def __init__(self, scenario: DetectScenario) -> None:
        self.s = scenario
        self.rng = random.Random(scenario.seed)
        self.trial_targets = [
            FaultTarget(f"t{i:02d}", seed=scenario.seed + i) for i in range(scenario.services)
        ]
        self.flaky = FaultTarget("flaky", flaky_every=FLAKY_EVERY, seed=scenario.seed - 1)
        self.control = FaultTarget("control")
        self.targets = [*self.trial_targets, self.flaky, self.control]
        self.log = CoreLog()
        self.trials: list[Trial] = []
        self.skipped: Counter[Kind] = Counter()
        self.abandoned: list[str] = []
        self.flaky_opened_polled = 0
        self.flaky_verdicts: Counter[str] = Counter()
        self.control_verdicts: Counter[str] = Counter()
        self.wall_offset = time.time() - time.monotonic()
        self.started = 0.0
        self.deadline = 0.0
        self.ready_s = 0.0
        self.measured_s = 0.0
        self.passed = True
        self.policy = RecheckPolicy()  # replaced by the coordinator's own once the core runs
        self.load = (0.0, 0.0)
        self.csv: Path | None = None

    # -- plan -----------------------------------------------------------------------------------

    def plan(self) -> list[list[Spec]]:
        kinds = [k for _ in range(self.s.trials_per_kind) for k in (*HARD_DOWN, Kind.REGIONAL)]
        self.rng.shuffle(kinds)
        plans: list[list[Spec]] = [[] for _ in range(self.s.services)]
        regional = 0
        for i, kind in enumerate(kinds):
            region = None
            if kind is Kind.REGIONAL:
                region = REGIONS[regional % len(REGIONS)][0]
                regional += 1
            plans[i % self.s.services].append(Spec(kind, region))
        # An extra 503 right after a quick (503 or refused) trial, while its burst cooldown runs.
        extra = self.s.cooldown_trials
        for plan in plans:
            if not extra:
                break
            at = next(
                (i for i, spec in enumerate(plan) if spec.kind in (Kind.HTTP_503, Kind.REFUSED)),
                None,
            )
            if at is not None:
                plan.insert(at + 1, Spec(Kind.COOLDOWN))
                extra -= 1
        return plans

    # -- run ------------------------------------------------------------------------------------

    async def run(self) -> Section:
        logs = data_dir() / "detect"
        logs.mkdir(parents=True, exist_ok=True)
        coordinator_log = logging.getLogger("bot.probing.coordinator")
        old_level = coordinator_log.level
        coordinator_log.setLevel(logging.INFO)
        bot_log = logging.getLogger("bot")
        bot_log.addHandler(self.log)
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            # SIGTERM cancels the run, so the finally blocks below still stop every agent.
            loop.add_signal_handler(signal.SIGTERM, main.cancel if main else lambda: None)
        keys = {KEY_PREFIX + region: secrets.token_hex(24) for region, _, _ in REGIONS}
        try:
            with tempfile.TemporaryDirectory(prefix="outagebot-detect-") as tmp:
                work = Path(tmp)
                for target in self.targets:
                    await target.start()
                await self._preflight()
                os.environ.update(keys)
                agents = [AgentProcess(r, a, addr, work, logs) for r, a, addr in REGIONS]
                app = await App.create(self._settings(work / "core.db"), demo=False)
                try:
                    await app.start()
                    assert app.api is not None and app.probing is not None
                    # The policy the core really uses (Probing derives bursts from the config).
                    policy = getattr(app.probing.coordinator, "_policy", None)
                    if isinstance(policy, RecheckPolicy):
                        self.policy = policy
                    core_url = f"http://127.0.0.1:{app.api.port}"
                    try:
                        for agent in agents:
                            await agent.start(core_url, keys[agent.key_env], self.s.jitter_seconds)
                        progress(f"detect: core {core_url}, agents started; logs in {logs}")
                        await self._wait_ready(app, agents)
                        await self._measure(app, agents)
                    finally:
                        for agent in agents:
                            await agent.stop()
                finally:
                    await app.close()
                codes = {a.agent_id: a.exited() for a in agents}
                return self._report(work / "core.db", codes, agents[0].command(core_url))
        finally:
            for target in self.targets:
                await target.stop()
            for name in keys:
                os.environ.pop(name, None)
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
            bot_log.removeHandler(self.log)
            coordinator_log.setLevel(old_level)

    def _settings(self, database: Path) -> Any:
        return parse_settings(
            {
                "bot": {"database": str(database), "default_region": "US"},
                "api": {"listen": "127.0.0.1:0"},
                "probes": {
                    "interval_seconds": INTERVAL,
                    "timeout_seconds": PROBE_TIMEOUT,
                    "jitter_seconds": self.s.jitter_seconds,
                    "allow_private": ["127.0.0.0/8"],
                    "local_agent": False,
                },
                "verdict": {"confirm_failures": 3, "recover_successes": 2},
                "agents": [
                    {"id": agent_id, "region": region, "key_env": KEY_PREFIX + region}
                    for region, agent_id, _ in REGIONS
                ],
                "services": [
                    {"key": t.key, "name": t.key, "targets": {"web": t.url}} for t in self.targets
                ],
            },
            source="detect benchmark",
        )

    async def _preflight(self) -> None:
        """The fault server does what the trials need, from each region's source address."""
        target = self.trial_targets[0]
        (_, _, us), (_, _, jp) = REGIONS[0], REGIONS[1]

        async def get(source: str, seconds: float = 3.0) -> int | str:
            connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
            timeout = aiohttp.ClientTimeout(total=seconds)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                try:
                    async with session.get(target.url) as resp:
                        return resp.status
                except aiohttp.ClientConnectorError:
                    return "refused"
                except TimeoutError:
                    return "timeout"

        checks: list[tuple[str, int | str, int | str]] = [("ok", await get(us), 200)]
        await target.inject(Mode.REGIONAL, jp)
        checks += [("regional, JP", await get(jp), 503), ("regional, US", await get(us), 200)]
        await target.restore()
        await target.inject(Mode.REFUSED)
        checks.append(("refused", await get(us), "refused"))
        await target.restore()
        await target.inject(Mode.HANG)
        checks.append(("hang", await get(us, 0.5), "timeout"))
        await target.restore()
        checks.append(("re-opened", await get(jp), 200))
        seen = {source for t in self.targets for source in t.hits}
        for t in self.targets:
            t.reset_counts()
        if any(got != want for _, got, want in checks) or seen != {us, jp}:
            raise RuntimeError(f"fault server preflight failed: {checks} (sources seen {seen})")

    async def _wait_ready(self, app: App, agents: Sequence[AgentProcess]) -> None:
        """Until every service has probe results from all three regions and is up."""
        started = time.monotonic()
        services = app.catalog.services
        while True:
            self._check_agents(agents)
            ready = 0
            for service in services:
                v = await app.verdicts.verdict(service)
                regions = [r for r in v.regions if r.probe_ok + r.probe_failed]
                ready += len(regions) == len(REGIONS) and v.category is Category.UP
            if ready == len(services):
                break
            if time.monotonic() - started > 90:
                raise RuntimeError(
                    f"only {ready} of {len(services)} services have probe data from every "
                    "region after 90 s; agent logs:\n"
                    + "\n".join(f"--- {a.agent_id}\n{a.tail()}" for a in agents)
                )
            await asyncio.sleep(POLL)
        self.ready_s = time.monotonic() - started
        progress(f"detect: every region probing every service after {self.ready_s:.0f} s")

    def _check_agents(self, agents: Sequence[AgentProcess]) -> None:
        for agent in agents:
            code = agent.exited()
            if code is not None:
                raise AgentDied(f"agent {agent.agent_id} exited with {code}:\n{agent.tail()}")

    async def _measure(self, app: App, agents: Sequence[AgentProcess]) -> None:
        self.started = time.monotonic()
        self.load = (os.getloadavg()[0], 0.0)
        self.deadline = self.started + self.s.deadline_seconds
        services = {s.key: s for s in app.catalog.services}
        stop = asyncio.Event()
        monitor = asyncio.create_task(self._monitor(app, agents, services, stop))
        workers = asyncio.gather(
            *(
                self._worker(
                    app, target, services[target.key], plan, random.Random(self.s.seed + i)
                )
                for i, (target, plan) in enumerate(
                    zip(self.trial_targets, self.plan(), strict=True)
                )
            )
        )
        limit = self.s.deadline_seconds + DETECT_LIMIT + RECOVER_LIMIT + self.policy.cooldown + 60
        try:
            async with asyncio.timeout(limit):
                both: set[asyncio.Future[Any]] = {monitor, workers}
                done, _ = await asyncio.wait(both, return_when="FIRST_COMPLETED")
                if monitor in done:
                    monitor.result()  # an agent died: raise it
                await workers
        finally:
            stop.set()
            workers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await workers
            await asyncio.gather(monitor, return_exceptions=True)
            self.measured_s = time.monotonic() - self.started
            self.load = (self.load[0], os.getloadavg()[0])

    async def _monitor(
        self, app: App, agents: Sequence[AgentProcess], services: dict[str, Service], stop: Any
    ) -> None:
        """Agents alive; the flaky and control services never open or leave ``up``."""
        assert app.probing is not None
        confirmer = app.probing.coordinator.confirmer
        was_open: set[str] = set()
        while not stop.is_set():
            self._check_agents(agents)
            now_open = {region for svc, _, region in confirmer.failing() if svc == "flaky"}
            self.flaky_opened_polled += len(now_open - was_open)
            was_open = now_open
            flaky = await app.verdicts.verdict(services["flaky"])
            self.flaky_verdicts[flaky.category.value] += 1
            control = await app.verdicts.verdict(services["control"])
            self.control_verdicts[control.category.value] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL)

    async def _worker(
        self,
        app: App,
        target: FaultTarget,
        service: Service,
        plan: Sequence[Spec],
        rng: random.Random,
    ) -> None:
        await asyncio.sleep(rng.uniform(0, INTERVAL))
        cooldown = self.policy.cooldown
        cooldown_room = cooldown - INTERVAL - self.s.jitter_seconds - 1
        for i, spec in enumerate(plan):
            if time.monotonic() > self.deadline:
                self.skipped.update(s.kind for s in plan[i:])
                return
            last = self.log.last_burst(task_id(service.key))
            if spec.kind is Kind.COOLDOWN:
                # The first failure must come while the previous burst's cooldown still runs.
                if last is None or time.monotonic() > last + cooldown_room:
                    self.skipped[spec.kind] += 1
                    continue
            else:
                if last is not None:
                    await asyncio.sleep(max(0.0, last + cooldown + 1 - time.monotonic()))
                await asyncio.sleep(rng.uniform(0, INTERVAL))
            trial = await self._trial(app, target, service, spec)
            self.trials.append(trial)
            progress(
                f"detect: {service.key} {spec.kind.name.lower()}"
                f"{' ' + spec.region if spec.region else ''}: verdict {_s(trial.verdict_s)} s, "
                f"Confirmer {_s(trial.opened_s)} s, recovered {_s(trial.recovered_s)} s"
            )
            if trial.recovered_s is None:
                self.abandoned.append(service.key)
                self.skipped.update(s.kind for s in plan[i + 1 :])
                return

    async def _trial(self, app: App, target: FaultTarget, service: Service, spec: Spec) -> Trial:
        assert app.probing is not None
        confirmer = app.probing.coordinator.confirmer
        trial = Trial(spec, service.key)
        regional = spec.kind is Kind.REGIONAL
        bad = {spec.region} if spec.region else set()
        expected = Category.REGIONAL if regional else Category.DOWN
        source = next((addr for r, _, addr in REGIONS if r == spec.region), None)
        mode = {
            Kind.HTTP_503: Mode.FAIL,
            Kind.COOLDOWN: Mode.FAIL,
            Kind.REFUSED: Mode.REFUSED,
            Kind.HANG: Mode.HANG,
            Kind.REGIONAL: Mode.REGIONAL,
        }[spec.kind]
        await target.inject(mode, source)
        trial.t0, trial.wall0 = time.monotonic(), time.time()
        try:
            while time.monotonic() - trial.t0 < DETECT_LIMIT:
                v = await app.verdicts.verdict(service)
                now = time.monotonic()
                failing = {r.region for r in v.regions if r.state in FAILING_STATES}
                label = f"{v.category.value} ({','.join(sorted(failing))})"
                if v.category in (Category.DOWN, Category.REGIONAL):
                    if trial.label_s is None:
                        trial.label_s = now - trial.t0
                    if regional and (v.category is Category.DOWN or not failing <= bad):
                        trial.wrong.add(label)
                    elif trial.verdict_s is None:
                        if v.category is expected and (not regional or failing == bad):
                            trial.verdict_s = now - trial.t0
                        else:
                            trial.seen_before.add(label)
                opened = {region for svc, _, region in confirmer.failing() if svc == service.key}
                if regional and opened - bad:
                    trial.wrong.add(f"Confirmer open in {','.join(sorted(opened - bad))}")
                if trial.opened_s is None and (bad <= opened if regional else len(opened) >= 2):
                    trial.opened_s = now - trial.t0
                if trial.verdict_s is not None and trial.opened_s is not None:
                    break
                await asyncio.sleep(POLL)
        finally:
            await target.restore()
        ended = time.monotonic()
        trial.bursts = sum(
            1
            for t, task in self.log.bursts
            if task == task_id(service.key) and trial.t0 <= t <= ended
        )
        while time.monotonic() - ended < RECOVER_LIMIT:
            v = await app.verdicts.verdict(service)
            failing = {r.region for r in v.regions if r.state in FAILING_STATES}
            still_open = [key for key in confirmer.failing() if key[0] == service.key]
            if not failing and not still_open and v.category is Category.UP:
                trial.recovered_s = time.monotonic() - ended
                break
            await asyncio.sleep(POLL)
        return trial

    # -- analysis -------------------------------------------------------------------------------

    def _report(self, database: Path, codes: dict[str, int | None], command: list[str]) -> Section:
        rows, packed = _probe_rows(database)
        by_service: dict[str, list[tuple[str, int, bool]]] = {}
        for key, region, at_ms, ok in rows:
            by_service.setdefault(key, []).append((region, at_ms, ok))
        for trial in self.trials:
            self._attach_store_facts(trial, by_service.get(trial.service, []))
        self._write_csv()
        section = Section("detect", "Time to detect")
        section.facts += self._facts(codes, command, packed)
        section.tables.append(self._detect_table())
        section.tables.append(self._flaky_table(by_service.get("flaky", [])))
        section.tables.append(self._cost_table(by_service, rows))
        return section

    def _write_csv(self) -> None:
        self.csv = data_dir() / "detect" / "trials.csv"
        with self.csv.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(
                ["kind", "region", "service", "t0_epoch", "verdict_s", "any_label_s", "opened_s",
                 "first_failing_probe_s", "recovered_s", "bursts", "probes_after_burst",
                 "seen_before", "wrong"]
            )  # fmt: skip
            for t in self.trials:
                writer.writerow(
                    [t.spec.kind.name.lower(), t.spec.region or "", t.service, f"{t.wall0:.3f}",
                     _s(t.verdict_s), _s(t.label_s), _s(t.opened_s), _s(t.first_fail_s),
                     _s(t.recovered_s), t.bursts, " ".join(map(str, t.burst_probes)),
                     "; ".join(sorted(t.seen_before)), "; ".join(sorted(t.wrong))]
                )  # fmt: skip

    def _attach_store_facts(self, trial: Trial, probes: list[tuple[str, int, bool]]) -> None:
        start_ms = int(trial.wall0 * 1000) - 1000  # a probe in flight at T0 may see the fault
        end_ms = int((trial.wall0 + (trial.verdict_s or DETECT_LIMIT)) * 1000)
        for region, at_ms, ok in probes:
            if start_ms <= at_ms <= end_ms and not ok and (trial.spec.region in (None, region)):
                trial.first_fail_s = max(0.0, at_ms / 1000 - trial.wall0)
                break
        bursts = [
            t + self.wall_offset
            for t, task in self.log.bursts
            if task == task_id(trial.service) and trial.t0 <= t <= trial.t0 + DETECT_LIMIT
        ]
        for burst in bursts[: trial.bursts]:
            lo, hi = int(burst * 1000), int((burst + self._burst_window()) * 1000)
            trial.burst_probes.append(sum(1 for _, at_ms, _ in probes if lo <= at_ms <= hi))

    def _burst_window(self) -> float:
        """Seconds after a burst in which its re-checks start (the last one, plus slack)."""
        return self.policy.spacing * (self.policy.bursts - 1) + 1.5

    def _facts(self, codes: dict[str, int | None], command: list[str], packed: int) -> list[str]:
        s = self.s
        shown = " ".join(command).replace(str(VENV_BIN), ".venv/bin")
        shown = shown.replace(str(Path(command[2]).parent), "<tmp>")
        facts = [
            f"Core: App in the benchmark process, tmp database, API on 127.0.0.1:0; "
            f"[probes] interval_seconds = {INTERVAL}, timeout_seconds = {PROBE_TIMEOUT:g}, "
            "allow_private = 127.0.0.0/8, local_agent = false (three vantage points as in the "
            "issue; a fourth, in-process region would make `down` need 3 of 4); [verdict] "
            f"confirm_failures = 3, recover_successes = 2; re-checks on ({self.policy.bursts} "
            f"per region, {self.policy.spacing:g} s apart, {self.policy.cooldown:g} s cooldown "
            "per task)",
            f"Agents: three processes, `{shown}` (probes from 127.0.0.21) and the same for JP "
            f"(127.0.0.22) and GB (127.0.0.23); each config: [probes] source_address = its own "
            f"address, timeout_seconds = {PROBE_TIMEOUT:g}, jitter_seconds = "
            f"{s.jitter_seconds:g} (the config default), allow_private = 127.0.0.0/8",
            f"Targets: {s.services} trial services, 1 flaky (503 on one request in ten per "
            "source: one failure at a random place in each block of ten), 1 control (never "
            "fails); each service its own aiohttp listener on 127.0.0.1:0",
            "Time to detect: from the fault switched on to the first 0.5 s poll whose "
            "VerdictService.verdict says `down` (hard-down kinds) or `regional` failing in the "
            "faulty region only; Confirmer: first poll with >= 2 regions (or the faulty region) "
            "in coordinator.confirmer.failing(); first failing probe: when the first failed "
            "probe after T0 started (the wait for the schedule)",
            f"Run: {len(self.trials)} trials over {self.measured_s / 60:.1f} min (after "
            f"{self.ready_s:.0f} s for every region to report every service); next trial on a "
            f"service >= {self.policy.cooldown:g} s after its last re-check burst + random "
            f"0-{INTERVAL} s; "
            f"load average {self.load[0]:.1f} at the start, {self.load[1]:.1f} at the end "
            f"({os.cpu_count()} CPUs, shared with other work)",
        ]
        if self.skipped:
            facts.append(
                "Not run (deadline, service abandoned, or no cooldown left): "
                + ", ".join(f"{k.name.lower()} {n}" for k, n in sorted(self.skipped.items()))
            )
        if self.abandoned:
            facts.append(f"Services that did not recover (left out afterwards): {self.abandoned}")
        facts.append(
            "Agent exit codes after SIGTERM: "
            + ", ".join(f"{a} {c}" for a, c in codes.items())
            + ("" if all(c == 0 for c in codes.values()) else " (expected 0)")
        )
        where = self.csv.relative_to(PROJECT_DIR) if self.csv else "-"
        facts.append(f"Per-trial figures: {where} (agent logs beside it)")
        if packed:
            facts.append(f"WARNING: {packed} packed probe blocks: probe counts miss those rows")
        if self.log.problems:
            top = "; ".join(f"{m} (x{n})" for m, n in self.log.problems.most_common(3))
            facts.append(f"Core warnings/errors logged: {top}")
        sources = Counter[str]()
        for target in self.targets:
            sources.update(target.hits)
        facts.append(
            "Requests at the targets by source: "
            + ", ".join(f"{src} {n:,}" for src, n in sorted(sources.items()))
        )
        return facts

    def _detect_table(self) -> Table:
        table = Table(
            "Time to detect per fault kind (seconds from the fault)",
            [
                "fault",
                "trials",
                "missed",
                "verdict median",
                "p95",
                "max",
                "any outage label (median)",
                "Confirmer median",
                "Confirmer p95",
                "first failing probe (median)",
                "bursts / trial",
                f"probes 0-{self._burst_window():g} s after a burst",
                "target",
                "result",
            ],
        )
        for kind in Kind:
            trials = [t for t in self.trials if t.spec.kind is kind]
            if not trials and kind is Kind.COOLDOWN and not self.s.cooldown_trials:
                continue
            times = [t.verdict_s for t in trials if t.verdict_s is not None]
            opened = [t.opened_s for t in trials if t.opened_s is not None]
            first = [t.first_fail_s for t in trials if t.first_fail_s is not None]
            label = [t.label_s for t in trials if t.label_s is not None]
            missed = len(trials) - len(times)
            wrong = sum(1 for t in trials if t.wrong)
            burst_probes = [n for t in trials for n in t.burst_probes]
            if kind in HARD_DOWN:
                target = f"p95 <= {HARD_DOWN_P95:g}"
                ok = bool(trials) and not missed and _p95(times) <= HARD_DOWN_P95
            elif kind is Kind.REGIONAL:
                target = f"max <= {REGIONAL_MAX:g}, never `down`"
                ok = bool(trials) and not missed and not wrong and max(times) <= REGIONAL_MAX
            else:
                target = "(informational)"
                ok = None
            if ok is not None:
                self.passed &= ok
            result = "n/a" if ok is None else "PASS" if ok else "FAIL"
            if wrong:
                result += f" ({wrong} mislabelled)"
            table.add(
                kind.value,
                len(trials),
                missed,
                _s(median(times) if times else None),
                _s(_p95(times) if times else None),
                _s(max(times) if times else None),
                _s(median(label) if label else None),
                _s(median(opened) if opened else None),
                _s(_p95(opened) if opened else None),
                _s(median(first) if first else None),
                f"{statistics.fmean(t.bursts for t in trials):.1f}" if trials else "–",
                f"{statistics.fmean(burst_probes):.1f}" if burst_probes else "–",
                target,
                result,
            )
        before = Counter(label for t in self.trials for label in t.seen_before)
        p, window = self.policy, self._burst_window()
        table.notes += [
            "p95: linear interpolation between trials; with few trials it approaches the max. "
            "missed: not detected within 120 s (they fail the target).",
            f"probes 0-{window:g} s after a burst: results of that service, all regions, started "
            f"in the {window:g} s after the coordinator logged a burst ({p.bursts} re-checks x "
            f"{len(REGIONS)} regions = {p.bursts * len(REGIONS)}, plus "
            f"~{len(REGIONS) * window / (INTERVAL + self.s.jitter_seconds / 2):.1f} scheduled "
            "ones by chance).",
            "Labels seen before the expected one (hard-down: one region confirmed first): "
            + (", ".join(f"{k} x{n}" for k, n in before.most_common(6)) or "none"),
        ]
        windows = []
        for kind in (*HARD_DOWN, Kind.COOLDOWN):
            gaps = [
                t.verdict_s - t.label_s
                for t in self.trials
                if t.spec.kind is kind and t.verdict_s is not None and t.label_s is not None
            ]
            if gaps:
                windows.append(
                    f"{kind.name.lower()} median {median(gaps):.1f} s, max {max(gaps):.1f} s"
                )
        if windows:
            table.notes.append(
                "How long a whole-outage fault was labelled `regional` before `down`: "
                + "; ".join(windows)
            )
        hang = [n for t in self.trials if t.spec.kind is Kind.HANG for n in t.burst_probes]
        if hang and statistics.fmean(hang) < 0.75 * p.bursts * len(REGIONS):
            table.notes.append(
                f"hang: a burst yields far fewer than {p.bursts * len(REGIONS)} probes: an agent "
                "drops a re-check of a task whose probe is still in flight (Agent._recheck), "
                f"and a hanging probe lasts {PROBE_TIMEOUT:g} s, longer than the "
                f"{p.spacing:g} s re-check spacing; confirmation then waits for scheduled probes."
            )
        mislabelled = [f"{t.service}: {sorted(t.wrong)}" for t in self.trials if t.wrong]
        if mislabelled:
            table.notes.append("Mislabelled one-region faults: " + "; ".join(mislabelled[:5]))
        return table

    def _flaky_table(self, probes: list[tuple[str, int, bool]]) -> Table:
        confirmer = Confirmer(failures=3, successes=2)
        openings = 0
        streak: Counter[str] = Counter()
        longest: Counter[str] = Counter()
        for region, at_ms, ok in probes:
            record = ProbeRecord("flaky", "web", region, at_ms, Outcome(ok))
            change = confirmer.observe(record)
            openings += change is not None and change.change is Change.OPENED
            streak[region] = 0 if ok else streak[region] + 1
            longest[region] = max(longest[region], streak[region])
        failed = sum(1 for _, _, ok in probes if not ok)
        bursts = sum(1 for _, task in self.log.bursts if task == task_id("flaky"))
        not_up = sum(n for c, n in self.flaky_verdicts.items() if c != Category.UP.value)
        ok = openings == 0 and self.flaky_opened_polled == 0 and not_up == 0
        self.passed &= ok
        table = Table(
            "Flaky target (HTTP 503 on one probe in ten, per region)",
            [
                "probes",
                "failed",
                "longest failing streak",
                "re-check bursts",
                "openings (Confirmer, polled)",
                "openings (store replayed through Confirmer)",
                "verdict polls not `up`",
                "target",
                "result",
            ],
        )
        table.add(
            f"{len(probes):,}",
            f"{failed:,} ({failed / len(probes):.1%})" if probes else "0",
            max(longest.values(), default=0),
            bursts,
            self.flaky_opened_polled,
            openings,
            f"{not_up} of {sum(self.flaky_verdicts.values()):,}",
            "0 openings",
            "PASS" if ok else "FAIL",
        )
        control_bad = sum(n for c, n in self.control_verdicts.items() if c != Category.UP.value)
        table.notes.append(
            f"Control service (never fails): {control_bad} of "
            f"{sum(self.control_verdicts.values()):,} verdict polls not `up`."
        )
        return table

    def _cost_table(
        self, by_service: dict[str, list[tuple[str, int, bool]]], rows: Sequence[Any]
    ) -> Table:
        if not rows:
            return Table("Probes made", ["services", "probes"])
        first_ms, last_ms = rows[0][2], rows[-1][2]
        minutes = max((last_ms - first_ms) / 60_000, 1e-9)
        control = by_service.get("control", [])
        baseline = len(control)  # a service that never fails: the schedule alone
        groups = [
            ("control (never fails)", ["control"]),
            ("flaky (1 in 10)", ["flaky"]),
            ("trial services", [t.key for t in self.trial_targets]),
        ]
        table = Table(
            f"Probes made (store, {minutes:.1f} min, {len(REGIONS)} regions)",
            ["services", "count", "probes", "per service-minute", "vs control", "extra probes"],
        )
        total = 0
        for name, keys in groups:
            n = sum(len(by_service.get(k, [])) for k in keys)
            total += n
            extra = n - baseline * len(keys)
            table.add(
                name,
                len(keys),
                f"{n:,}",
                f"{n / len(keys) / minutes:.1f}",
                f"{n / len(keys) / baseline:.2f}×" if baseline else "n/a",
                f"{extra:+,}",
            )
        extra = total - baseline * len(self.targets)
        table.add(
            "all",
            len(self.targets),
            f"{total:,}",
            f"{total / len(self.targets) / minutes:.1f}",
            f"{total / len(self.targets) / baseline:.2f}×" if baseline else "n/a",
            f"{extra:+,} ({extra / total:.0%} of all probes)" if total else "0",
        )
        gaps = _gaps(control)
        bursts = len(self.log.bursts)
        table.notes += [
            "extra probes: probes beyond the control service's count for the same number of "
            "services (same schedule, never a burst): the price of the re-check bursts. "
            f"Re-check bursts logged by the core: {bursts:,} "
            f"({bursts and extra / bursts:.1f} extra probes per burst).",
            "Scheduled probe spacing on the control service, per region: "
            + (
                f"mean {statistics.fmean(gaps):.2f} s, median {median(gaps):.2f} s, "
                f"min {min(gaps):.2f} s, max {max(gaps):.2f} s "
                f"(configured interval {INTERVAL} s, jitter up to {self.s.jitter_seconds:g} s)"
                if gaps
                else "n/a"
            ),
        ]
        if gaps and statistics.fmean(gaps) > INTERVAL + self.s.jitter_seconds / 4:
            table.notes.append(
                "The mean spacing is the interval plus half the jitter: APScheduler's interval "
                "trigger adds each run's jitter to the previous, already jittered run time, so "
                "jitter accumulates (bot/probing/schedule.py passes jitter_seconds to it)."
            )
        return table


# ---- helpers ------------------------------------------------------------------------------------


def _probe_rows(database: Path) -> tuple[list[tuple[str, str, int, bool]], int]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = [
            (str(key), str(region), int(at_ms), bool(ok))
            for key, region, at_ms, ok in conn.execute(
                "SELECT s.key, p.region, p.at_ms, p.ok FROM probe_results AS p "
                "JOIN services AS s ON s.id = p.service_id ORDER BY p.at_ms, p.id"
            )
        ]
        packed = int(conn.execute("SELECT count(*) FROM probe_raw").fetchone()[0])
    finally:
        conn.close()
    return rows, packed


def _gaps(probes: Iterable[tuple[str, int, bool]]) -> list[float]:
    last: dict[str, int] = {}
    gaps = []
    for region, at_ms, _ in probes:
        if region in last:
            gaps.append((at_ms - last[region]) / 1000)
        last[region] = at_ms
    return gaps


def _p95(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


async def run(scenario: DetectScenario) -> Section:
    bench = DetectBench(scenario)
    section = await bench.run()
    section.facts.append(f"Targets met: {'PASS' if bench.passed else 'FAIL'}")
    return section


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.detect_bench [--quick]``: this benchmark alone, stdout only."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detect_bench")
    parser.add_argument("--quick", action="store_true", help="one trial per fault kind")
    args = parser.parse_args(argv)
    section = asyncio.run(run(QUICK if args.quick else FULL))
    print(section.text(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The composition root: builds the store, verdicts, router, scheduler and adapters; runs them.

The only place that knows every piece; everything else receives its collaborators explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.adapters.base import Adapter, Sender
from bot.adapters.console import ConsoleAdapter
from bot.adapters.registry import AdapterDeps, build_adapters
from bot.agents import MissingKey
from bot.api import ApiServer
from bot.complete import Completer
from bot.config import Settings
from bot.context import CommandContext
from bot.demo import Demo, demo_database, reset_database
from bot.digests import DigestScheduler
from bot.errors import PlatformUnavailable, StartupError
from bot.incidents import IncidentPolicy, IncidentTracker
from bot.jobs import RunningJobs
from bot.model import Catalog
from bot.ops import OpsNotifier, parse_ops_channel
from bot.outbox import AlertDispatcher
from bot.probing.service import Probing
from bot.resolve import Resolver
from bot.router import Router
from bot.ssrf import Policy
from bot.store import Store
from bot.store.retention import INTERVAL_SECONDS as RETENTION_INTERVAL_SECONDS
from bot.store.retention import retention_job
from bot.tenants import TenantCatalogs
from bot.verdicts import VerdictService
from commands import COMMANDS

log = logging.getLogger(__name__)

JOB_GRACE_SECONDS = 10.0  # how long a stop waits for scheduled jobs under way to finish

__all__ = ["App", "StartupError", "chat_adapters_enabled"]


@dataclass
class App:
    settings: Settings
    catalog: Catalog
    store: Store
    router: Router
    verdicts: VerdictService
    scheduler: AsyncIOScheduler
    demo: Demo | None = None
    api: ApiServer | None = None
    probing: Probing | None = None
    adapters: list[Adapter] = field(default_factory=list)
    incidents: IncidentTracker | None = None
    dispatcher: AlertDispatcher | None = None
    digests: DigestScheduler | None = None
    ops: OpsNotifier | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _retries: list[asyncio.Task[None]] = field(default_factory=list)
    jobs: RunningJobs = field(default_factory=RunningJobs)  # our scheduled jobs running now

    @classmethod
    async def create(cls, settings: Settings, *, demo: bool) -> App:
        catalog = settings.catalog()
        database = settings.bot.database
        demo_mode = None
        if demo:
            demo_mode = Demo()
            catalog = Catalog(catalog.services + await demo_mode.start_targets())
            path = demo_database(database)
            reset_database(path)
            database = str(path)
        store = await Store.open(database, catalog)
        verdicts = VerdictService(store, settings)
        tenants = TenantCatalogs(
            catalog,
            store,
            # Chat admins' URLs: the port allow-list, never the operator's private ranges.
            policy=Policy.from_config(ports=settings.probes.ports),
            limit=settings.bot.services_per_tenant,
        )
        await tenants.load()
        probing = None
        # The demo probes only its own loopback services; a real deployment probes the catalog.
        if settings.probes.enabled and not demo:
            try:
                probing = Probing(settings, catalog, store, os.environ, tenants.all_services())
            except MissingKey as exc:
                await store.close()
                raise StartupError(str(exc)) from None
            tenants.on_change = lambda: probing.set_tenant_services(tenants.all_services())
        scheduler = AsyncIOScheduler(timezone=settings.bot.timezone)
        jobs = RunningJobs()
        digests = DigestScheduler(
            store,
            scheduler,
            lambda platform, tenant: (*catalog.services, *tenants.services(platform, tenant)),
            defaults=settings.digest,
            timezone=settings.bot.timezone,
            jobs=jobs,
        )
        ctx = CommandContext(
            settings=settings,
            catalog=catalog,
            store=store,
            resolver=Resolver(catalog),
            verdicts=verdicts,
            ondemand=probing.ondemand if probing else None,
            agents=probing.hub if probing else None,
            tenants=tenants,
            digests=digests,
        )
        app = cls(
            settings=settings,
            catalog=catalog,
            store=store,
            router=Router(ctx, COMMANDS),
            verdicts=verdicts,
            scheduler=scheduler,
            jobs=jobs,
            digests=digests,
            demo=demo_mode,
            probing=probing,
        )
        if settings.api.enabled:
            host, _, port = settings.api.listen.rpartition(":")
            app.api = ApiServer(
                catalog=catalog,
                resolver=ctx.resolver,
                store=store,
                verdicts=verdicts,
                host=host.strip("[]"),
                port=int(port),
            )
            if probing is not None:
                probing.mount(app.api.app)
        if settings.incidents.enabled:
            i = settings.incidents
            app.incidents = IncidentTracker(
                store,
                verdicts,
                lambda: (*catalog.services, *tenants.all_services()),
                policy=IncidentPolicy(
                    open_after=i.open_after_passes,
                    resolve_after=timedelta(minutes=i.resolve_after_minutes),
                ),
                clock=ctx.clock,
            )
        specs = {name: m.SPEC for name, m in COMMANDS.items()}
        completer = Completer(ctx.resolver, specs, resolver_for=tenants.resolver)
        try:
            app.adapters = build_adapters(
                AdapterDeps(
                    settings=settings,
                    dispatch=app.router.dispatch,
                    complete=completer.complete,
                    specs=specs,
                    environ=os.environ,
                    web_app=app.api.app if app.api is not None else None,
                )
            )
        except StartupError:
            await store.close()
            raise
        # Every chat adapter that can post proactively gets the outbox's alerts; the console
        # joins in run() when it is built.
        app.dispatcher = AlertDispatcher(
            store, {a.name: a for a in app.adapters if isinstance(a, Sender)}
        )
        if app.incidents is not None:
            app.incidents.on_change = app.dispatcher.wake
        digests.on_queued = app.dispatcher.wake
        app.ops = OpsNotifier(
            app.dispatcher.senders, parse_ops_channel(settings.incidents.ops_channel)
        )
        app.dispatcher.ops = app.ops
        return app

    async def start(self) -> None:
        # Retention moves probe results between storage tiers in short transactions on the
        # store's thread; derived from config at start like every job (RELIABILITY: scheduler).
        self.scheduler.add_job(
            self._retention_job,
            "interval",
            seconds=RETENTION_INTERVAL_SECONDS,
            id="retention",
            replace_existing=True,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=RETENTION_INTERVAL_SECONDS,
        )
        if self.incidents is not None:
            interval = self.settings.incidents.interval_seconds
            self.scheduler.add_job(
                self._incidents_job,
                "interval",
                seconds=interval,
                id="incidents",
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=interval,
            )
        self.scheduler.start()
        if self.digests is not None:
            # Jobs from the store; then the digests missed while the bot was down (GRACE).
            await self.digests.sync()
            caught_up = await self.digests.catch_up()
            if caught_up:
                log.info("digests caught up count=%d", caught_up)
        if self.api is not None:
            try:
                await self.api.start()
            except OSError as exc:
                raise StartupError(
                    f"cannot listen on {self.settings.api.listen} ({exc.strerror}); "
                    "change [api] listen or set [api] enabled = false"
                ) from None
        if self.probing is not None:
            await self.probing.start()
        # Together, so one slow platform does not hold up another; one that cannot be reached
        # now is retried in the background while the rest serve (a bad token still stops us).
        results = await asyncio.gather(*(a.start() for a in self.adapters), return_exceptions=True)
        for adapter, result in zip(self.adapters, results, strict=True):
            if isinstance(result, PlatformUnavailable):
                log.warning("adapter %s unavailable, retrying: %s", adapter.name, result)
                self._retries.append(asyncio.create_task(self._keep_trying(adapter)))
            elif isinstance(result, BaseException):
                raise result
            else:
                log.info("adapter started name=%s", adapter.name)
        if self.dispatcher is not None:
            await self.dispatcher.start()
        if self.demo is not None:
            ctx = self.router.ctx
            counts = await self.demo.start(
                store=self.store,
                catalog=self.catalog,
                scheduler=self.scheduler,
                clock=ctx.clock,
                dedupe_seconds=self.settings.reports.dedupe_minutes * 60,
            )
            log.info("demo seeded reports=%d probes=%d", counts.reports, counts.probes)

    async def run(self, *, console: bool) -> None:
        """Start everything, serve until the console closes or a signal arrives, then stop."""
        await self.start()
        try:
            if console:
                adapter = ConsoleAdapter(
                    self.router.dispatch,
                    {name: m.SPEC for name, m in COMMANDS.items()},
                    lang=self.settings.bot.language,
                    # A private folder per run: a shared, guessable /tmp path invites clobbering.
                    chart_dir=Path(tempfile.mkdtemp(prefix="outagebot-charts-")),
                )
                if self.dispatcher is not None:
                    self.dispatcher.add_sender(adapter.name, adapter)
                await adapter.start()
            else:
                self._install_signal_handlers()
                await self._stopping.wait()
        finally:
            await self.close()

    async def _keep_trying(self, adapter: Adapter) -> None:
        delay = 5.0
        while True:
            await asyncio.sleep(delay)  # backoff between attempts to reach the platform
            try:
                await adapter.start()
            except PlatformUnavailable as exc:
                delay = min(300.0, delay * 2)
                log.warning("adapter %s still unavailable: %s", adapter.name, exc)
                continue
            except StartupError:
                log.exception("adapter %s cannot start", adapter.name)
                return
            log.info("adapter started name=%s (after retrying)", adapter.name)
            return

    async def _retention_job(self) -> None:
        with self.jobs.track():
            await retention_job(self.store, self.settings, stop=lambda: self.jobs.stopping)

    async def _incidents_job(self) -> None:
        assert self.incidents is not None
        with self.jobs.track():
            try:
                await self.incidents.run_pass()
            except sqlite3.Error as exc:
                # Our storage failing is never a service outage: one notice to the operator.
                if self.ops is not None:
                    await self.ops.failed("incident tracking", exc)
                return
            if self.ops is not None:
                await self.ops.ok("incident tracking")

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._stopping.set)

    async def close(self) -> None:
        if self.scheduler.running:
            # No new runs; a pass already under way finishes (briefly) instead of being
            # cancelled by the shutdown mid-write, which also logged a CancelledError traceback.
            self.scheduler.pause()
            if not await self.jobs.wait(JOB_GRACE_SECONDS):
                log.warning(
                    "stopping with a scheduled job still running after %.0f s", JOB_GRACE_SECONDS
                )
        for task in self._retries:
            task.cancel()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        for adapter in reversed(self.adapters):
            await adapter.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.probing is not None:
            await self.probing.close()
        if self.api is not None:
            await self.api.stop()
        if self.demo is not None:
            await self.demo.stop()
        await self.store.close()


def chat_adapters_enabled(settings: Settings) -> bool:
    return settings.discord.enabled or settings.slack.enabled

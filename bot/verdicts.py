"""The verdict service: gathers evidence from the store, decides, and builds the chart data.

The one place that turns settings into thresholds and windows, so /isitdown, the API, the CLI and
(later) alerts and digests ask the same question the same way.

During an outage hundreds of people ask about the same service within a second, and the store
has one thread: identical questions asked while the answer is being worked out share that one
computation ("single flight") instead of queueing 200 copies of it behind each other. Identical
means the same service and the same second (the store counts in whole seconds) for a verdict, the
same service and 15-minute bucket for a chart. Nothing is kept once the computation is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bot.charts import ChartData
from bot.config import Settings
from bot.detector import Detector, ThresholdDetector
from bot.i18n import text
from bot.model import Service, to_epoch, utcnow
from bot.store import EvidenceWindows, Store
from bot.verdict import Thresholds, Verdict, decide

CHART_SPAN = timedelta(hours=24)
CHART_STEP = timedelta(minutes=15)

T = TypeVar("T")


class VerdictService:
    def __init__(self, store: Store, settings: Settings, detector: Detector | None = None) -> None:
        self._store = store
        r, v = settings.reports, settings.verdict
        self.detector: Detector = detector or ThresholdDetector(
            min_reports=r.min_reports,
            problem_factor=r.problem_factor,
            possible_factor=r.possible_factor,
        )
        self.thresholds = Thresholds(
            report_window_seconds=r.window_minutes * 60,
            confirm_failures=v.confirm_failures,
            recover_successes=v.recover_successes,
            down_share=v.down_share,
            slow_ms=v.slow_ms,
        )
        self.windows = EvidenceWindows(
            probe_seconds=v.probe_window_minutes * 60,
            report_seconds=r.window_minutes * 60,
            baseline_days=r.baseline_days,
            status_max_age_seconds=v.status_max_age_minutes * 60,
        )
        self._timezone = settings.bot.timezone
        self._language = settings.bot.language
        self._running: dict[Hashable, asyncio.Future[Any]] = {}

    async def verdict(self, service: Service, at: datetime | None = None) -> Verdict:
        at = at or utcnow()
        key = ("verdict", service, to_epoch(at))
        return await self._once(key, lambda: self._verdict(service, at))

    async def chart(self, service: Service, at: datetime | None = None) -> ChartData:
        """Reports per 15 minutes over the last 24 h against the usual level for each hour."""
        end = _floor(at or utcnow(), CHART_STEP) + CHART_STEP
        return await self._once(("chart", service, end), lambda: self._chart(service, end))

    async def _once(self, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
        """``compute()``, or the result of the identical computation already under way."""
        running: asyncio.Future[T] | None = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(compute())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        # Shielded: one asker giving up (its interaction cancelled) must not cancel the
        # computation the others wait for.
        return await asyncio.shield(running)

    def _finished(self, key: Hashable, done: asyncio.Future[Any]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            # Marks a failure retrieved: the askers get it raised; if every one of them gave up,
            # asyncio would otherwise log it as never retrieved.
            done.exception()

    async def _verdict(self, service: Service, at: datetime) -> Verdict:
        evidence = await self._store.evidence(service, at, self.windows)
        return decide(evidence, self.thresholds, self.detector)

    async def _chart(self, service: Service, end: datetime) -> ChartData:
        start = end - CHART_SPAN
        step = int(CHART_STEP.total_seconds())
        series = await self._store.report_series(service.key, start, end, CHART_STEP)
        days = self.windows.baseline_days
        hourly = await self._store.hourly_totals(service.key, start - timedelta(days=days), end)
        minutes = await self._store.probe_minutes(service.key, start, end)
        buckets, reports, usual, failing = [], [], [], []
        for b in range(to_epoch(start), to_epoch(end), step):
            hour = b // 3600 * 3600
            history = [hourly.get(hour - d * 86_400, 0) for d in range(1, days + 1)]
            buckets.append(datetime.fromtimestamp(b, start.tzinfo))
            reports.append(series.get(b, 0))
            usual.append(sum(history) / days * step / 3600)
            ok = failed = 0
            for m in range(b, b + step, 60):
                o, f = minutes.get(m, (0, 0))
                ok, failed = ok + o, failed + f
            failing.append(failed > ok)
        return ChartData(
            title=text("chart.title", self._language, name=service.name),
            buckets=tuple(buckets),
            reports=tuple(reports),
            usual=tuple(usual),
            failing=tuple(failing),
            timezone=self._timezone,
        )


def _floor(at: datetime, step: timedelta) -> datetime:
    seconds = int(step.total_seconds())
    return datetime.fromtimestamp(to_epoch(at) // seconds * seconds, at.tzinfo)

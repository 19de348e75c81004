"""The verdict service: gathers evidence from the store, decides, and builds the chart data.

The one place that turns settings into thresholds and windows, so /isitdown, the API, the CLI and
(later) alerts and digests ask the same question the same way.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.charts import ChartData
from bot.config import Settings
from bot.detector import Detector, ThresholdDetector
from bot.i18n import text
from bot.model import Service, to_epoch, utcnow
from bot.store import EvidenceWindows, Store
from bot.verdict import Thresholds, Verdict, decide

CHART_SPAN = timedelta(hours=24)
CHART_STEP = timedelta(minutes=15)


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

    async def verdict(self, service: Service, at: datetime | None = None) -> Verdict:
        evidence = await self._store.evidence(service, at or utcnow(), self.windows)
        return decide(evidence, self.thresholds, self.detector)

    async def chart(self, service: Service, at: datetime | None = None) -> ChartData:
        """Reports per 15 minutes over the last 24 h against the usual level for each hour."""
        end = _floor(at or utcnow(), CHART_STEP) + CHART_STEP
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

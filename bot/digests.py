"""Scheduled digests: per channel, daily or weekly, once per period, caught up after downtime.

Each subscribed channel gets an APScheduler cron job (memory job store, explicit id
``digest:<platform>:<tenant>:<channel>``, ``coalesce``, ``max_instances=1``), derived from the
store at start and again whenever subscriptions or schedules change. The truth is in the
database, not the scheduler (RELIABILITY.md): a ``digest_runs`` row per channel and period makes a
digest happen once across crashes, two schedulers and restarts, and on start each channel's most
recent due digest is caught up when it is younger than ``GRACE``.

A digest covers what the channel follows (its subscriptions' services, tags or all) over the
period before its time: incidents with their durations and regions, availability per service and
region from the probe rollups, the most-reported services, incidents the official status page did
not admit, alerts that could not be delivered, and a chart of reports per hour with the incidents
shaded. A quiet period gets an "all clear", which also shows the bot is alive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.alerts import duration_text
from bot.charts import ChartData, chart_to_json
from bot.config import DigestSettings
from bot.i18n import CATALOGS, text
from bot.jobs import RunningJobs
from bot.model import Category, Service, to_epoch, utcnow
from bot.regions import region_name
from bot.store import DigestChannel, IncidentRow, Store

__all__ = ["GRACE", "DigestScheduler", "Schedule", "schedule_of"]

log = logging.getLogger(__name__)

GRACE = timedelta(hours=6)  # a digest missed while the bot was down is still sent this late
JOB_PREFIX = "digest:"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Schedule:
    at: time
    timezone: str
    day: str | None  # None: daily; else the weekday of a weekly digest

    def last_due(self, now: datetime) -> datetime:
        """The most recent scheduled moment at or before ``now``."""
        local = now.astimezone(ZoneInfo(self.timezone))
        due = datetime.combine(local.date(), self.at, tzinfo=local.tzinfo)
        step = timedelta(days=1)
        while due > local or (self.day is not None and DAYS[due.weekday()] != self.day):
            due -= step
        return due

    def period(self, due: datetime) -> str:
        """The label that makes a digest unique: the local date, or the ISO week for weekly."""
        local = due.astimezone(ZoneInfo(self.timezone))
        if self.day is None:
            return local.date().isoformat()
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def span(self) -> timedelta:
        return timedelta(days=1 if self.day is None else 7)


def schedule_of(channel: DigestChannel, defaults: DigestSettings, bot_tz: str) -> Schedule | None:
    """A channel's schedule (its own settings over the [digest] defaults); None when off."""
    if not defaults.enabled and channel.time is None:
        return None
    hhmm = channel.time or defaults.time
    if hhmm == "off":
        return None
    hour, minute = (int(x) for x in hhmm.split(":"))
    day: str | None = defaults.weekly_day
    if channel.day is not None:
        day = None if channel.day == "daily" else channel.day
    return Schedule(time(hour, minute), channel.timezone or bot_tz, day)


class DigestScheduler:
    def __init__(
        self,
        store: Store,
        scheduler: AsyncIOScheduler,
        services: Callable[[str, str], Sequence[Service]],
        *,
        defaults: DigestSettings,
        timezone: str,
        on_queued: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        jobs: RunningJobs | None = None,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._services = services  # (platform, tenant) -> the services that tenant can see
        self._defaults = defaults
        self._timezone = timezone
        self.on_queued = on_queued  # e.g. wake the outbox dispatcher
        self._clock = clock
        self._running = RunningJobs() if jobs is None else jobs  # a stop lets a run finish
        self._jobs: dict[str, Schedule] = {}

    async def sync(self) -> None:
        """Make the cron jobs match the channels in the store."""
        wanted: dict[str, tuple[DigestChannel, Schedule]] = {}
        for channel in await self._store.digest_channels():
            schedule = schedule_of(channel, self._defaults, self._timezone)
            if schedule is not None:
                wanted[_job_id(channel)] = (channel, schedule)
        for job_id in list(self._jobs):
            if job_id not in wanted:
                self._scheduler.remove_job(job_id)
                del self._jobs[job_id]
        for job_id, (channel, schedule) in wanted.items():
            if self._jobs.get(job_id) == schedule:
                continue
            trigger = CronTrigger(
                hour=schedule.at.hour,
                minute=schedule.at.minute,
                day_of_week=schedule.day or "*",
                timezone=schedule.timezone,
            )
            self._scheduler.add_job(
                self.run,
                trigger,
                args=[channel.platform, channel.tenant, channel.channel],
                id=job_id,
                name=job_id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=int(GRACE.total_seconds()),
            )
            self._jobs[job_id] = schedule

    async def catch_up(self) -> int:
        """Queue every channel's most recent due digest that was missed; how many were queued."""
        queued = 0
        now = self._clock()
        for channel in await self._store.digest_channels():
            schedule = schedule_of(channel, self._defaults, self._timezone)
            if schedule is None:
                continue
            due = schedule.last_due(now)
            if now - due <= GRACE and await self._run(channel, schedule, due):
                queued += 1
        return queued

    async def run(self, platform: str, tenant: str, channel_id: str) -> bool:
        """The cron job: build and queue this channel's digest for the period just ended."""
        with self._running.track():
            for channel in await self._store.digest_channels():
                where = (channel.platform, channel.tenant, channel.channel)
                if where == (platform, tenant, channel_id):
                    schedule = schedule_of(channel, self._defaults, self._timezone)
                    if schedule is not None:
                        due = schedule.last_due(self._clock())
                        return await self._run(channel, schedule, due)
            return False

    async def _run(self, channel: DigestChannel, schedule: Schedule, due: datetime) -> bool:
        period = schedule.period(due)
        now = to_epoch(self._clock())
        c = channel
        if not await self._store.claim_digest(c.platform, c.tenant, c.channel, period, now):
            return False  # already sent (or being sent) for this period
        payload = await self.build(channel, due - schedule.span, due, period)
        await self._store.finish_digest(c.platform, c.tenant, c.channel, period, payload, now)
        log.info("digest queued platform=%s channel=%s period=%s", c.platform, c.channel, period)
        if self.on_queued is not None:
            self.on_queued()
        return True

    async def build(
        self, channel: DigestChannel, start: datetime, end: datetime, period: str
    ) -> dict[str, Any]:
        """The digest's payload (title, lines, chart), in the channel's language."""
        lang = channel.lang if channel.lang in CATALOGS else "en"
        services = await self._followed(channel)
        keys = {s.key for s in services}
        names = {s.key: s.name for s in services}
        incidents = [
            i for i in await self._store.incidents_between(start, end) if i.service in keys
        ]
        lines: list[str] = []
        if incidents:
            lines.append(text("digest.incidents", lang, count=len(incidents)))
            lines += [_incident_line(i, names, end, lang) for i in incidents]
        else:
            lines.append(text("digest.all_clear", lang, count=len(services)))
        lines += await self._availability(services, start, end, lang)
        top = await self._store.top_reported(sorted(keys), start, end)
        if top:
            items = " · ".join(f"{names[k]} {n:,}" for k, n in top)
            lines.append(text("digest.top", lang, items=items))
        unadmitted = sorted(
            {
                names[i.service]
                for i in incidents
                if i.category in (Category.DOWN.value, Category.REGIONAL.value)
                and i.detail.get("status") in (None, "none")
            }
        )
        if unadmitted:
            lines.append(text("digest.status_disagreed", lang, names=", ".join(unadmitted)))
        dead = await self._store.dead_letters(channel.platform, channel.tenant, to_epoch(start))
        if dead:
            lines.append(text("digest.dead", lang, count=len(dead)))
        kind = "digest.title_weekly" if "W" in period else "digest.title_daily"
        chart = await self._chart(sorted(keys), incidents, start, end, lang, channel)
        return {
            "kind": "digest",
            "title": text(kind, lang, period=period),
            "lines": lines,
            "chart": chart_to_json(chart),
        }

    async def _followed(self, channel: DigestChannel) -> list[Service]:
        visible = self._services(channel.platform, channel.tenant)
        subs = await self._store.subscriptions(channel.platform, channel.tenant, channel.channel)
        if any(s.scope == "all" for s in subs):
            return list(visible)
        wanted_keys = {s.target for s in subs if s.scope == "service"}
        wanted_tags = {s.target for s in subs if s.scope == "tag"}
        return [s for s in visible if s.key in wanted_keys or wanted_tags & set(s.tags)]

    async def _availability(
        self, services: Sequence[Service], start: datetime, end: datetime, lang: str
    ) -> list[str]:
        rows: list[tuple[float, str]] = []
        for service in services:
            by_region = await self._store.availability(service.key, start, end)
            ok = sum(o for o, _ in by_region.values())
            total = ok + sum(f for _, f in by_region.values())
            if not total:
                continue
            worst = sorted(by_region.items(), key=lambda kv: kv[1][0] / max(1, sum(kv[1])))[:3]
            regions = ", ".join(
                f"{region_name(r, lang).removeprefix('the ')} {_pct(o, o + f)}"
                for r, (o, f) in worst
            )
            line = text(
                "digest.availability_line",
                lang,
                name=service.name,
                share=_pct(ok, total),
                regions=regions,
            )
            rows.append((ok / total, line))
        if not rows:
            return []
        rows.sort()
        return [text("digest.availability", lang), *(line for _, line in rows[:5])]

    async def _chart(
        self,
        keys: Sequence[str],
        incidents: Sequence[IncidentRow],
        start: datetime,
        end: datetime,
        lang: str,
        channel: DigestChannel,
    ) -> ChartData:
        hour = 3600
        first = to_epoch(start) // hour * hour
        last = -(-to_epoch(end) // hour) * hour
        totals: dict[int, int] = {}
        for key in keys:
            for h, n in (await self._store.hourly_totals(key, start, end)).items():
                totals[h] = totals.get(h, 0) + n
        buckets = list(range(first, last, hour))
        reports = [totals.get(b, 0) for b in buckets]
        mean = sum(reports) / len(reports) if reports else 0.0
        failing = [
            any(
                i.opened_at < b + hour and (i.resolved_at is None or i.resolved_at > b)
                for i in incidents
            )
            for b in buckets
        ]
        tz = start.tzinfo
        return ChartData(
            title=text("digest.chart", lang),
            buckets=tuple(datetime.fromtimestamp(b, tz) for b in buckets),
            reports=tuple(reports),
            usual=tuple(mean for _ in buckets),
            failing=tuple(failing),
            timezone=self._channel_tz(channel),
        )

    def _channel_tz(self, channel: DigestChannel) -> str:
        return channel.timezone or self._timezone


def _incident_line(i: IncidentRow, names: dict[str, str], end: datetime, lang: str) -> str:
    closed = i.resolved_at is not None and i.resolved_at <= to_epoch(end)
    lasted = (i.resolved_at if closed and i.resolved_at else to_epoch(end)) - i.opened_at
    regions = ", ".join(
        region_name(r, lang).removeprefix("the ") for r in i.detail.get("regions", [])
    )
    key = "digest.incident" if closed else "digest.incident_open"
    return text(
        key,
        lang,
        name=names.get(i.service, i.service),
        category=text(f"category.{i.category}", lang),
        duration=duration_text(timedelta(seconds=lasted), lang),
        regions=regions or "–",
    )


def _pct(ok: int, total: int) -> str:
    share = 100 * ok / total if total else 0.0
    return f"{share:.1f}%" if share < 99.95 else "100%"


def _job_id(channel: DigestChannel) -> str:
    return f"{JOB_PREFIX}{channel.platform}:{channel.tenant}:{channel.channel}"

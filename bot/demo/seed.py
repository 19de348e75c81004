"""The demo's history: three weeks of reports with a daily rhythm, and each service's current story.

Deterministic (a fixed random seed) so two demo runs look alike. Written through the same import
path as ``outagebot import``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from bot.model import Catalog, to_epoch
from bot.store import ImportBatch, ImportCounts, ReportRow, StatusRow, Store, WorksForMeRow

DAYS = 21
REGIONS = ("US", "JP", "GB", "FR")
# Region -> UTC offset in hours, so each region's evening peak lands at its own evening.
_OFFSETS = {"US": -5, "JP": 9, "GB": 0, "FR": 1}
_PROBLEMS = ("website", "website", "app", "app", "login", "other")
# Extra catalog services given a quiet history, so they answer "no unusual reports".
_QUIET_CATALOG = ("twitter", "discord", "github", "slack")


@dataclass(frozen=True, slots=True)
class Story:
    """Reports about one service, region and problem: ``count`` over the last STORY_MINUTES."""

    key: str
    region: str
    problem: str
    count: int

    def report(self, service_id: int, at: int, user: str) -> ReportRow:
        return ReportRow(service_id, at, self.region, self.problem, "import", "", user)


STORY_MINUTES = 25  # the seed spreads each story's reports over these last minutes
WINDOW_SECONDS = 1800  # the verdict's report window (config.example.toml [reports] window)
STORIES = (
    Story("initech", "US", "website", 70),  # probes pass, users report website problems
    Story("initech", "US", "app", 8),
    Story("initech", "GB", "website", 28),
    Story("initech", "JP", "website", 22),
    Story("globex", "JP", "app", 18),  # down in Japan and the UK
    Story("globex", "GB", "website", 12),
    *(Story("umbrella", region, "login", 15) for region in REGIONS),  # down for everyone
)
# Official status lines: service -> (indicator, description, age in seconds at the start).
STATUS_LINES = {
    "initech": ("none", "All Systems Operational", 900),
    "globex": ("minor", "Investigating elevated error rates in Asia-Pacific and Europe", 1200),
    "umbrella": ("major", "Email delivery outage", 1500),
    "acme": ("none", "All Systems Operational", 3600),
    "hooli": ("none", "All Systems Operational", 3600),
}


def live_batch(
    ids: dict[str, int], since: int, until: int, rng: random.Random, *, told: int
) -> ImportBatch:
    """What the stories add over (since, until]; ``told`` is where the last batch ended.

    Each story's reports arrive at the rate that keeps its 30-minute window where the seed put it
    (Poisson); every ten minutes Initech gets a works-for-me, and every hour the official status
    lines are read again (a reading older than six hours is ignored by the verdict).
    """
    batch = ImportBatch()
    seconds = until - since
    if seconds <= 0:
        return batch
    for story in STORIES:
        sid = ids.get(story.key)
        if sid is None:
            continue
        for _ in range(_poisson(rng, story.count * seconds / WINDOW_SECONDS)):
            at = until - rng.randrange(seconds)
            batch.reports.append(story.report(sid, at, f"demo-live-{rng.getrandbits(48):x}"))
    if "initech" in ids and until // 600 != told // 600:
        user = f"demo-live-wfm-{until}"
        batch.works_for_me.append(WorksForMeRow(ids["initech"], until, "US", "import", "", user))
    if until // 3600 != told // 3600:
        for key, (indicator, description, _) in STATUS_LINES.items():
            if key in ids:
                batch.status.append(StatusRow(ids[key], until, indicator, description))
    return batch


def _rate(region: str, hour_utc: int, base: float) -> float:
    local = (hour_utc + _OFFSETS[region]) % 24
    # Low at 04:00 local, high at 20:00 local.
    return base * (1.0 + 0.8 * math.sin((local - 14) / 24 * 2 * math.pi))


def build(catalog: Catalog, ids: dict[str, int], now: datetime) -> ImportBatch:
    rng = random.Random(42)
    batch = ImportBatch()
    end = to_epoch(now)
    start = end - DAYS * 86_400
    keys = [
        k for k in ("acme", "globex", "initech", "umbrella", "hooli", *_QUIET_CATALOG) if k in ids
    ]
    user = 0
    for key in keys:
        base = rng.uniform(0.4, 1.5)
        for hour in range(start // 3600, end // 3600 - 1):
            for region in REGIONS:
                n = _poisson(rng, _rate(region, hour % 24, base))
                for _ in range(n):
                    user += 1
                    batch.reports.append(
                        ReportRow(
                            ids[key],
                            hour * 3600 + rng.randrange(3600),
                            region,
                            rng.choice(_PROBLEMS),
                            "import",
                            "",
                            f"demo-{user}",
                        )
                    )

    # The current stories. Every burst report falls inside the verdict's 30-minute report window,
    # so each story reads the same whenever the demo starts (with 40 minutes, the share inside
    # the window depended on the clock, and Globex's two regions sometimes tied).
    for story in STORIES:
        if story.key not in ids:
            continue
        for _ in range(story.count):
            user += 1
            at = end - rng.randrange(STORY_MINUTES * 60)
            batch.reports.append(story.report(ids[story.key], at, f"demo-{user}"))

    if "initech" in ids:
        for i in range(3):
            batch.works_for_me.append(
                WorksForMeRow(
                    ids["initech"], end - 300 * (i + 1), "US", "import", "", f"demo-wfm-{i}"
                )
            )
    for key, (indicator, description, age) in STATUS_LINES.items():
        if key in ids:
            batch.status.append(StatusRow(ids[key], end - age, indicator, description))
    return batch


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: fine for the small rates used here.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


async def seed(store: Store, catalog: Catalog, now: datetime, dedupe_seconds: int) -> ImportCounts:
    batch = build(catalog, store.service_ids(), now)
    return await store.import_batch(batch, dedupe_seconds)


__all__ = ["DAYS", "STORIES", "WINDOW_SECONDS", "build", "live_batch", "seed"]

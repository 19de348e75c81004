"""The demo's history: three weeks of reports with a daily rhythm, and each service's current story.

Deterministic (a fixed random seed) so two demo runs look alike. Written through the same import
path as ``outagebot import``.
"""

from __future__ import annotations

import math
import random
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
    def burst(key: str, region: str, problem: str, count: int, minutes: int = 25) -> None:
        nonlocal user
        for _ in range(count):
            user += 1
            batch.reports.append(
                ReportRow(
                    ids[key],
                    end - rng.randrange(minutes * 60),
                    region,
                    problem,
                    "import",
                    "",
                    f"demo-{user}",
                )
            )

    if "initech" in ids:
        burst("initech", "US", "website", 70)
        burst("initech", "US", "app", 8)
        burst("initech", "GB", "website", 28)
        burst("initech", "JP", "website", 22)
        for i in range(3):
            batch.works_for_me.append(
                WorksForMeRow(
                    ids["initech"], end - 300 * (i + 1), "US", "import", "", f"demo-wfm-{i}"
                )
            )
        batch.status.append(StatusRow(ids["initech"], end - 900, "none", "All Systems Operational"))
    if "globex" in ids:
        burst("globex", "JP", "app", 18)
        burst("globex", "GB", "website", 12)
        batch.status.append(
            StatusRow(
                ids["globex"],
                end - 1200,
                "minor",
                "Investigating elevated error rates in Asia-Pacific and Europe",
            )
        )
    if "umbrella" in ids:
        for region in REGIONS:
            burst("umbrella", region, "login", 15)
        batch.status.append(
            StatusRow(ids["umbrella"], end - 1500, "major", "Email delivery outage")
        )
    for key in ("acme", "hooli"):
        if key in ids:
            batch.status.append(StatusRow(ids[key], end - 3600, "none", "All Systems Operational"))
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


__all__ = ["DAYS", "build", "seed"]

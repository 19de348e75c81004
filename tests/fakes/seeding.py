"""The founding example in small: the catalog, clock and stored evidence every adapter test uses.

Probes pass in four regions while hundreds of users report the website (and a few the app) from
the US, Japan and the UK, three people say it works, and the official status page says all is
well: Twitter on 2022-12-28. One copy, shared by the console, Discord and Slack tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.model import Catalog, Service, Target, to_epoch
from bot.store import ImportBatch, ProbeRow, ReportRow, StatusRow, Store, WorksForMeRow
from commands import COMMANDS

NOW = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
CATALOG = Catalog(
    (
        Service(
            "twitter",
            "Twitter / X",
            ("x",),
            (Target("web", "https://x.invalid/"), Target("api", "https://api.x.invalid/")),
        ),
        Service("github", "GitHub", ("gh",), (Target("web", "https://gh.invalid/"),)),
        Service("steam", "Steam", (), (Target("web", "https://steam.invalid/"),)),
    )
)
SPECS = {name: module.SPEC for name, module in COMMANDS.items()}


class Clock:
    """Starts at NOW and moves one second per reading, as real time would between commands."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def seed_user_reports(store: Store) -> None:
    """Probes pass everywhere, while hundreds of users report the website (and a few the app)."""
    sid = store.service_id("twitter")
    assert sid is not None
    t0 = to_epoch(NOW)
    batch = ImportBatch()
    for region, website, app in (("US", 200, 15), ("JP", 50, 5), ("GB", 30, 0)):
        batch.reports += [
            ReportRow(sid, t0 - 60 - i, region, "website", "import", "", f"{region}w{i}")
            for i in range(website)
        ]
        batch.reports += [
            ReportRow(sid, t0 - 60 - i, region, "app", "import", "", f"{region}a{i}")
            for i in range(app)
        ]
    batch.works_for_me += [
        WorksForMeRow(sid, t0 - 120 - i, "FR", "import", "", f"fr{i}") for i in range(3)
    ]
    batch.probes += [
        ProbeRow(sid, target, region, (t0 - 30 - k * 30) * 1000, True, 200, 80.0 + k, None)
        for region in ("US", "JP", "GB", "FR")
        for target in ("web", "api")
        for k in range(5)
    ]
    batch.status.append(StatusRow(sid, t0 - 600, "none", "All Systems Operational"))
    await store.import_batch(batch, 3600)

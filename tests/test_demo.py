"""The offline demo: the real `outagebot run` process answering typed commands; its stories."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.demo.scenario import demo_services
from bot.demo.seed import STORIES, STORY_MINUTES, live_reports, seed
from bot.model import Catalog, from_epoch, to_epoch
from bot.store import EvidenceWindows, Store

COMMANDS = (
    "\n".join(
        [
            "/isitdown acme",
            "/isitdown globex",
            "/isitdown initech",
            "/isitdown umbrella",
            "/isitdown hooli",
            "/isitdown twitter",
            '/report initech website GB "blank page on desktop"',
            "/worksforme acme",
            "/services",
            "/help",
            "/quit",
        ]
    )
    + "\n"
)


def test_demo_answers_all_commands_with_varied_verdicts(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    example = (Path(__file__).resolve().parent.parent / "config.example.toml").read_text()
    # The shipped example with its catalog, but a private database and a free port.
    config.write_text(
        example.replace('database = "outagebot.db"', f'database = "{tmp_path / "bot.db"}"').replace(
            'listen = "127.0.0.1:8080"', 'listen = "127.0.0.1:0"'
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "OUTAGEBOT_CONFIG"}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "run"],
        input=COMMANDS,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Up: Acme Cloud is up everywhere we check" in out
    assert (
        "Regional outage: Globex Chat is down in Japan and the UK; it works in France and the US"
        in out
    )
    assert (
        "User reports: Probes pass, but users report problems with Initech Social, mostly website"
        in out
    )
    assert "Down: Umbrella Mail is down for everyone" in out
    assert "Degraded: Hooli Search is up but slow" in out
    assert "No unusual reports about X (Twitter)" in out
    assert "counts toward the verdict" in out
    assert "works for you" in out
    assert "Services I know (30)" in out  # 25 in the catalog + 5 demo services
    assert "/report <service> [problem] [region] [note]" in out
    # The demo used its own database beside the configured one, never the configured file.
    assert (tmp_path / "bot.demo.db").exists() and not (tmp_path / "bot.db").exists()
    # Charts were written as PNG files.
    charts = [
        line.split("Chart saved to ", 1)[1].strip()
        for line in out.splitlines()
        if "Chart saved to " in line
    ]
    assert len(charts) == 6
    assert all(Path(c).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for c in charts)


async def test_a_running_demo_keeps_telling_its_stories(tmp_path: Path) -> None:
    # Seeded once, the stories' reports left the 30-minute window within half an hour; the demo
    # now adds each story's share of every minute. Forty minutes on, the window must look like
    # the first minute: each story's reports at about their seeded rate, Initech's confirmations.
    services = demo_services("http://127.0.0.1:9/")
    store = await Store.open(tmp_path / "demo.db", Catalog(services))
    try:
        start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
        await seed(store, Catalog(services), start, 3600)
        ids, rng = store.service_ids(), random.Random(7)
        told = to_epoch(start)
        for minute in range(1, 41):
            now = to_epoch(start) + 60 * minute
            await store.import_batch(live_reports(ids, told, now, rng), 3600)
            told = now
        windows = EvidenceWindows(
            probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=21600
        )
        at = from_epoch(told)
        by_service = {s.key: await store.evidence(s, at, windows) for s in services}
        for story in STORIES:
            seen = by_service[story.key].reports.get((story.region, story.problem), 0)
            expected = story.count * 30 / STORY_MINUTES  # the window is 30 minutes
            assert 0.5 * expected <= seen <= 1.6 * expected, (story, seen)
        assert sum(by_service["initech"].works_for_me.values()) >= 2
    finally:
        await store.close()

"""The offline demo: the real `outagebot run` process answering typed commands; its stories."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.demo.scenario import demo_services
from bot.demo.seed import STATUS_LINES, STORIES, seed
from bot.demo.stories import StoryTeller
from bot.model import Catalog
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
    # Seeded once, the stories' reports left the 30-minute window within half an hour. The demo's
    # minute job (StoryTeller.tell) keeps them at their seeded level: forty minutes on, and after
    # a seven-hour pause, each story's window holds about what it held at the start, with
    # Initech's confirmations and every official status line still current.
    services = demo_services("http://127.0.0.1:9/")
    store = await Store.open(tmp_path / "demo.db", Catalog(services))
    start = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)
    now = [start]
    teller = StoryTeller(store, lambda: now[0], 3600, start)
    windows = EvidenceWindows(
        probe_seconds=600, report_seconds=1800, baseline_days=14, status_max_age_seconds=21600
    )
    try:
        await seed(store, Catalog(services), start, 3600)
        for minutes in [1] * 40 + [7 * 60]:
            now[0] += timedelta(minutes=minutes)
            await teller.tell()
            evidence = {s.key: await store.evidence(s, now[0], windows) for s in services}
            if minutes == 1 and now[0] - start < timedelta(minutes=35):
                continue  # the seeded reports are still in the window
            seen = {s: evidence[s.key].reports.get((s.region, s.problem), 0) for s in STORIES}
            for story, n in seen.items():
                # Poisson around the seeded count: three standard deviations either way.
                assert abs(n - story.count) <= 3 * math.sqrt(story.count) + 1, (story, n)
            total = sum(s.count for s in STORIES)
            assert abs(sum(seen.values()) - total) <= 2 * math.sqrt(total)
            # One every ten minutes (after the pause, the one just added).
            assert sum(evidence["initech"].works_for_me.values()) >= (2 if minutes == 1 else 1)
            for key, (_, description, _) in STATUS_LINES.items():
                line = evidence[key].status
                assert line is not None and line.description == description, key
        # Nothing new without time passing, or with the clock stepping back.
        assert await teller.tell() == 0
        now[0] -= timedelta(minutes=5)
        assert await teller.tell() == 0
    finally:
        await store.close()

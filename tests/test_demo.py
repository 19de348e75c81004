"""The offline demo end to end: the real ``outagebot run`` process answering typed commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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

"""The command line, run as a real subprocess (``python -m bot``) against a tmp config and database.

Exit codes: 0 success, 1 the command ran but failed, 2 the configuration or command line is wrong.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import EXAMPLE_CONFIG, load_settings

AT = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)

CONFIG = """
[bot]
database = {database}

[probes]
enabled = false

[api]
enabled = false

[reports]
min_reports = 5

[[services]]
key = "twitter"
name = "X (Twitter)"
aliases = ["x", "twitter.com"]
targets = {{ web = "https://x.com/", api = "https://api.x.com/2/openapi.json" }}

[[services]]
key = "github"
name = "GitHub"
targets = {{ web = "https://github.com/" }}
"""


def run(
    cwd: Path, *args: str | Path, entry: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OUTAGEBOT_CONFIG"}
    return subprocess.run(
        [*(entry or [sys.executable, "-m", "bot"]), *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "outagebot.toml"
    path.write_text(CONFIG.format(database=json.dumps(str(tmp_path / "bot.db"))), encoding="utf-8")
    return path


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def founding_example(path: Path) -> Path:
    """Twitter 2022-12-28, scaled down: 300 reports (200 US, 50 JP, 50 GB, mostly the website),
    probes passing in four regions, the status page "All Systems Operational", one works-for-me."""
    events: list[dict[str, object]] = [
        {
            "type": "status_page",
            "at": iso(AT - timedelta(minutes=10)),
            "service": "twitter",
            "indicator": "none",
            "description": "All Systems Operational",
        },
        {
            "type": "works_for_me",
            "at": iso(AT - timedelta(minutes=5)),
            "service": "x",
            "region": "US",
            "user": "owner",
        },
    ]
    for region in ("US", "JP", "GB", "FR"):
        for target in ("web", "api"):
            for k in range(5):
                events.append(
                    {
                        "type": "probe",
                        "at": iso(AT - timedelta(seconds=30 * k)),
                        "service": "twitter",
                        "target": target,
                        "region": region,
                        "ok": True,
                        "status": 200,
                        "latency_ms": 140.0,
                    }
                )
    for region, problem, n in [
        ("US", "website", 170),
        ("US", "app", 30),
        ("JP", "website", 50),
        ("GB", "website", 45),
        ("UK", "login", 5),
    ]:
        for i in range(n):
            events.append(
                {
                    "type": "report",
                    "at": iso(AT - timedelta(minutes=1 + i % 29)),
                    "service": "twitter",
                    "region": region,
                    "problem": problem,
                    "user": f"{region}-{problem}-{i}",
                }
            )
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return path


# ---- check-config ---------------------------------------------------------------------------


def test_check_config_accepts_the_example(tmp_path: Path) -> None:
    result = run(tmp_path, "check-config", "--config", EXAMPLE_CONFIG)
    assert result.returncode == 0, result.stderr
    services = len(load_settings(EXAMPLE_CONFIG).services)
    assert result.stdout.strip() == f"{EXAMPLE_CONFIG}: OK ({services} services)"


def test_check_config_names_the_broken_key(tmp_path: Path, config: Path) -> None:
    config.write_text(config.read_text() + '\n[verdict]\ndown_share = "half"\n')
    result = run(tmp_path, "check-config", "--config", config)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{config}: verdict.down_share: " in result.stderr
    assert "nothing was started" in result.stderr
    assert "Traceback" not in result.stderr


# ---- import ---------------------------------------------------------------------------------


def test_import_of_a_good_file_prints_counts(tmp_path: Path, config: Path) -> None:
    data = founding_example(tmp_path / "founding.jsonl")
    result = run(tmp_path, "import", data, "--config", config)
    assert result.returncode == 0, result.stderr
    assert f"Imported from {data}: 300 reports (300 counted), 1 works-for-me, " in result.stdout
    assert "40 probe results, 1 status snapshots" in result.stdout


def test_import_of_a_bad_file_imports_nothing(tmp_path: Path, config: Path) -> None:
    data = founding_example(tmp_path / "founding.jsonl")
    lines = data.read_text().splitlines()
    lines.insert(2, '{"type": "report", "at": "2022-12-28T21:20:00", "service": "twitter"}')
    lines.insert(
        5,
        '{"type": "report", "at": "2022-12-28T21:20:00Z", "service": "myspace",'
        ' "region": "US", "user": "u"}',
    )
    data.write_text("\n".join(lines) + "\n")
    result = run(tmp_path, "import", data, "--config", config)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "line 3: report is missing region, user" in result.stderr
    assert "line 6: unknown service 'myspace'" in result.stderr
    assert "Nothing was imported" in result.stderr
    with sqlite3.connect(tmp_path / "bot.db") as db:
        assert db.execute("SELECT count(*) FROM reports").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM probe_results").fetchone()[0] == 0


# ---- status ---------------------------------------------------------------------------------


def test_status_json_after_importing_the_founding_example(tmp_path: Path, config: Path) -> None:
    data = founding_example(tmp_path / "founding.jsonl")
    assert run(tmp_path, "import", data, "--config", config).returncode == 0
    result = run(
        tmp_path, "status", "twitter", "--at", "2022-12-28T21:30:00Z", "--json", "--config", config
    )
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["service"] == "twitter"
    assert verdict["verdict"] == "user_reports"
    assert [(r["region"], r["reports"]) for r in verdict["regions"]] == [
        ("US", 200),
        ("GB", 50),
        ("JP", 50),
        ("FR", 0),
    ]
    assert verdict["problems"][0]["kind"] == "website"
    assert verdict["status_page"]["indicator"] == "none"
    assert verdict["works_for_me"] == 1


def test_status_of_an_unknown_service_fails(tmp_path: Path, config: Path) -> None:
    result = run(tmp_path, "status", "nosuch", "--json", "--config", config)
    assert result.returncode == 1
    assert "unknown service 'nosuch'" in result.stderr
    assert "Traceback" not in result.stderr


def test_status_with_a_bad_time_is_a_usage_error(tmp_path: Path, config: Path) -> None:
    result = run(tmp_path, "status", "twitter", "--at", "yesterday", "--json", "--config", config)
    assert result.returncode == 2
    assert "--at 'yesterday' is not an ISO 8601 time" in result.stderr
    assert result.stdout == ""


# Regression: status imported bot.textrender before looking at --json.
def test_status_json_does_not_need_the_text_renderer(tmp_path: Path, config: Path) -> None:
    # sys.modules[name] = None makes `import name` raise ImportError in that process.
    entry = [
        sys.executable,
        "-c",
        "import sys; sys.modules['bot.textrender'] = None; from bot.cli import main; "
        "sys.exit(main(sys.argv[1:]))",
    ]
    result = run(
        tmp_path,
        "status",
        "twitter",
        "--at",
        "2022-12-28T21:30:00Z",
        "--json",
        "--config",
        config,
        entry=entry,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["service"] == "twitter"


def test_a_database_from_a_newer_outagebot_is_refused_clearly(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "newer.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    config = tmp_path / "c.toml"
    config.write_text(f'[bot]\ndatabase = "{db}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "import", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "newer than this outagebot" in done.stderr and "Traceback" not in done.stderr

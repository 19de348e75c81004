"""A real agent process: ``bot.agents.cli.run`` in ``python -c`` against a core in this test.

It probes a loopback target allowed by ``[probes] allow_private``; results land, SIGTERM stops it
cleanly, and its key never appears in its output. Also the CLI's refusals (exit 2, a message).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from agent_harness import Core, start_target

from bot.agents import load_credentials
from bot.agents.cli import run
from bot.config import Settings, load_settings

KEY_VAR = "OUTAGEBOT_TEST_AGENT_KEY"
KEY = "process-test-key-7f3a9c2e51d04b86"

AGENT_MAIN = """
import logging, sys
from pathlib import Path
from bot.agents.cli import run
from bot.config import load_settings
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
sys.exit(run(load_settings(Path(sys.argv[1])), region="jp", core_url=sys.argv[2],
             key_env="OUTAGEBOT_TEST_AGENT_KEY", agent_id=None, spool_dir=sys.argv[3]))
"""


def write_config(path: Path, target: str) -> Path:
    path.write_text(
        f"""
[probes]
interval_seconds = 1
timeout_seconds = 2
allow_private = ["127.0.0.0/8"]

[[services]]
key = "acme"
name = "Acme"
targets = {{ web = "{target}" }}

[[agents]]
id = "jp-1"
region = "JP"
key_env = "{KEY_VAR}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def target() -> AsyncIterator[str]:
    runner, url = await start_target()
    yield url
    await runner.cleanup()


async def test_agent_process_delivers_results(tmp_path: Path, target: str) -> None:
    settings = load_settings(write_config(tmp_path / "config.toml", target))
    core = Core(
        tmp_path / "core.db",
        settings.catalog(),
        credentials=tuple(load_credentials(settings.agents, {KEY_VAR: KEY})),
        interval=1,
    )
    await core.start()
    env = {**os.environ, KEY_VAR: KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", AGENT_MAIN, str(tmp_path / "config.toml"), core.url,
        str(tmp_path / "spool"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        await core.received.until(2, seconds=30)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            output, _ = await proc.communicate()
        await core.stop()
    text = output.decode()
    assert proc.returncode == 0, text
    assert {(r.service, r.target, r.region) for r in core.received.records} == {
        ("acme", "web", "JP")
    }
    assert all(r.outcome.ok for r in core.received.records), text
    assert KEY not in text
    assert "Traceback" not in text and "Unclosed" not in text, text
    assert "assignment applied agent=jp-1" in text


def _settings() -> Settings:
    return Settings.model_validate({"agents": [{"id": "jp-1", "region": "JP", "key_env": KEY_VAR}]})


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"region": "XX"}, "--region 'XX' is not an ISO 3166"),
        ({"core_url": "core:8080"}, "--core 'core:8080' is not a URL"),
        ({"key_env": "OTHER_VAR"}, "--id is required"),
        ({"region": "US"}, "'jp-1' is in region JP, not US"),
        ({"agent_id": "Bad Id"}, "--id 'Bad Id'"),
    ],
    ids=["region", "core url", "no id", "region vs config", "bad id"],
)
def test_cli_refuses_bad_arguments(
    kwargs: dict[str, str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {
        "region": "JP",
        "core_url": "http://127.0.0.1:9",
        "key_env": KEY_VAR,
        "agent_id": None,
        "spool_dir": None,
        **kwargs,
    }
    assert run(_settings(), **args) == 2  # type: ignore[arg-type]
    assert fragment in capsys.readouterr().err


def test_cli_refuses_missing_or_short_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(KEY_VAR, raising=False)
    args = {"region": "JP", "core_url": "http://127.0.0.1:9", "key_env": KEY_VAR}
    assert run(_settings(), agent_id=None, spool_dir=None, **args) == 2
    assert f"the environment variable {KEY_VAR} is not set" in capsys.readouterr().err
    monkeypatch.setenv(KEY_VAR, "short")
    assert run(_settings(), agent_id=None, spool_dir=None, **args) == 2
    err = capsys.readouterr().err
    assert "at least 16" in err and "short" not in err.replace("shortest", "")

"""A chat platform that cannot be reached at start does not stop the bot: it is retried."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from bot.app import App
from bot.config import parse_settings


def _closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_discord_down_at_start_is_retried_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = _closed_port()
    monkeypatch.setenv("OUTAGEBOT_TEST_TOKEN", "token-that-is-never-logged")
    settings = parse_settings(
        {
            "bot": {"database": str(tmp_path / "down.db")},
            "probes": {"enabled": False},
            "api": {"enabled": False},
            "discord": {
                "enabled": True,
                "token_env": "OUTAGEBOT_TEST_TOKEN",
                "api_base": f"http://127.0.0.1:{port}",
                "gateway_url": f"ws://127.0.0.1:{port}/",
            },
        }
    )
    app = await App.create(settings, demo=False)
    caplog.set_level(logging.INFO)
    try:
        await app.start()  # does not raise: the rest of the bot serves
        assert app.scheduler.running
        assert len(app._retries) == 1 and not app._retries[0].done()
        assert "adapter discord unavailable, retrying" in caplog.text
        assert "token-that-is-never-logged" not in caplog.text
    finally:
        await app.close()
    assert app._retries[0].cancelled() or app._retries[0].done()

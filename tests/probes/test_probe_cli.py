"""``outagebot probe URL [--json]`` (``bot.probe_cli``), in process.

The subcommand is not wired into ``bot/cli.py`` yet, so these call ``probe_command`` and ``run``
directly instead of running ``python -m bot ... probe``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from probe_targets import Canary, Site, accepted_before_now, listening_socket

from bot.config import ProbeSettings, Settings
from bot.probe_cli import probe_command, render_summary, run

KEYS = {"url", "ok", "status", "latency_ms", "error", "detail"}
OPERATOR = Settings(probes=ProbeSettings(allow_private=("127.0.0.0/8",)))


async def test_ok(site: Site) -> None:
    url = f"{site.base}/ok"
    code, result = await probe_command(OPERATOR, url)
    assert code == 0 and set(result) == KEYS
    assert result["url"] == url and result["ok"] is True and result["status"] == 200
    assert result["error"] is None and result["detail"] is None
    assert isinstance(result["latency_ms"], float)
    assert site.methods == ["GET"]


async def test_failure_has_reason_and_detail(site: Site) -> None:
    url = f"{site.base}/status/500"
    code, result = await probe_command(OPERATOR, url)
    assert code == 1
    assert (result["ok"], result["status"], result["error"]) == (False, 500, "status")
    assert result["detail"] == f"HTTP 500 from {url} (expected 2xx or 3xx)"
    json.dumps(result)  # serialisable as is


async def test_blocked_without_allow_private_opens_no_socket(
    canary: Callable[..., Awaitable[Canary]],
) -> None:
    listener = await canary()
    code, result = await probe_command(Settings(), f"http://127.0.0.1:{listener.port}/")
    assert code == 1 and result["error"] == "blocked" and result["status"] is None
    assert (
        result["detail"] == "127.0.0.1 is a loopback address (127.0.0.0/8); probes may not reach it"
    )
    assert await listener.accepted_before_now() == 0


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "tcp://127.0.0.1:22", "127.0.0.1/"])
async def test_unsupported_scheme(url: str) -> None:
    code, result = await probe_command(OPERATOR, url)
    assert code == 1 and result["error"] == "unsupported_scheme"
    assert (
        isinstance(result["detail"], str) and "probes support http/https only" in result["detail"]
    )


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = listening_socket()
    yield sock
    sock.close()


def test_run_prints_one_json_object(
    listener: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before any socket (loopback is not allowed by default), so no server answers;
    # only loopback addresses are ever used to show that something is blocked.
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    assert run(Settings(), url, as_json=True) == 1
    printed = capsys.readouterr().out
    result = json.loads(printed)
    assert set(result) == KEYS and result["error"] == "blocked" and result["url"] == url
    assert printed.count("\n") == 1
    assert accepted_before_now(listener) == 0


def test_run_prints_one_line(listener: socket.socket, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    assert run(Settings(), url, as_json=False) == 1
    assert capsys.readouterr().out == (
        f"FAILED (blocked)  {url}  "
        "127.0.0.1 is a loopback address (127.0.0.0/8); probes may not reach it\n"
    )
    assert accepted_before_now(listener) == 0


def test_summary_of_a_pass() -> None:
    base = {"url": "https://x.test/", "ok": True, "status": 200, "latency_ms": 123.4}
    plain = render_summary({**base, "error": None, "detail": None})
    assert plain == "OK  https://x.test/  HTTP 200 in 123 ms"
    warned = render_summary({**base, "error": None, "detail": "the TLS certificate expires soon"})
    assert warned.endswith("(warning: the TLS certificate expires soon)")


async def test_probe_subcommand_as_a_real_process(tmp_path: Path) -> None:
    """`outagebot probe URL --json`: one JSON object, exit 0 on pass and 1 on failure."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    allowed = tmp_path / "allowed.toml"
    allowed.write_text('[probes]\nallow_private = ["127.0.0.0/8"]\n')
    closed = tmp_path / "closed.toml"
    closed.write_text("[probes]\n")
    env = {k: v for k, v in os.environ.items() if k != "OUTAGEBOT_CONFIG"}

    async def probe(config: Path) -> tuple[int, dict[str, object]]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "--config",
            str(config),
            "probe",
            url,
            "--json",
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, json.loads(out)

    try:
        code, result = await probe(allowed)
        assert code == 0 and result["ok"] is True and result["status"] == 200
        code, result = await probe(closed)  # loopback not listed: refused, never dialled
        assert code == 1 and result["error"] == "blocked" and "loopback" in str(result["detail"])
    finally:
        await runner.cleanup()

"""The Slack adapter's pure parts: text parsing, Block Kit rendering (golden), limits, manifest,
replay memory, the per-channel limiter and timezone regions.

Golden files ``tests/golden/slack_*.json`` pin the Block Kit output. After an intended change,
regenerate them with::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/adapters/test_slack_units.py

and review the diff before committing.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fakes.seeding import seed_user_reports
from fakes.slack_harness import open_router

from bot.adapters.base import DeliveryError
from bot.adapters.slack.home import render_home
from bot.adapters.slack.http import signature_headers_ok
from bot.adapters.slack.manifest import BOT_SCOPES, build_manifest
from bot.adapters.slack.parse import (
    decode_value,
    encode_value,
    group_specs,
    parse_command,
    slack_unescape,
)
from bot.adapters.slack.render import render_reply
from bot.adapters.slack.replay import ReplayGuard
from bot.adapters.slack.sender import ChannelLimiter
from bot.adapters.slack.users import SlackUser, invocation_locale, region_from_tz
from bot.i18n import Message
from bot.invocation import Invocation
from bot.regions import region_from_locale
from bot.reply import Button, Reply, ReplyKind
from bot.router import Router
from bot.spec import CommandSpec, Param, ParamKind
from commands import COMMANDS

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SPECS = {name: m.SPEC for name, m in COMMANDS.items()}


def check_golden(name: str, actual: object) -> None:
    text = json.dumps(actual, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
async def router(tmp_path: Path) -> AsyncIterator[Router]:
    r = await open_router(tmp_path)
    yield r
    await r.ctx.store.close()


# ---- golden Block Kit --------------------------------------------------------------------------


async def test_golden_verdict_blocks(router: Router) -> None:
    await seed_user_reports(router.ctx.store)
    reply = await router.dispatch(Invocation("isitdown", {"service": "twitter"}))
    message = render_reply(reply, "en", chart_file_id="F000001")
    check_golden("slack_verdict_user_reports.json", message.payload())


async def test_golden_verdict_blocks_without_an_uploaded_chart_in_french(router: Router) -> None:
    await seed_user_reports(router.ctx.store)
    reply = await router.dispatch(Invocation("isitdown", {"service": "twitter"}))
    message = render_reply(reply, "fr")
    assert not any(b["type"] == "image" for b in message.blocks)  # the sparkline instead
    check_golden("slack_verdict_user_reports_fr.json", message.payload())


async def test_golden_info_and_error_blocks(router: Router) -> None:
    services = await router.dispatch(Invocation("services"))
    missing = await router.dispatch(Invocation("isitdown"))
    home = render_home([services], "en")
    check_golden(
        "slack_info_error_home.json",
        {
            "services": render_reply(services).payload(),
            "error": render_reply(missing).payload(),
            "home": home,
        },
    )
    assert render_reply(missing).ephemeral


# ---- limits and escaping -----------------------------------------------------------------------


def test_user_text_never_becomes_markup_and_limits_hold() -> None:
    lines = tuple(
        Message("help.line", usage=f"<!channel> {i}", description="x" * 200) for i in range(1000)
    )
    reply = Reply(
        ReplyKind.INFO,
        title=Message("help.line", usage="T" * 300, description="long"),
        lines=lines,
        buttons=tuple(Button("isitdown", f"svc{i}", Message("button.recheck")) for i in range(30)),
    )
    message = render_reply(reply)
    blocks = message.blocks
    assert len(blocks) <= 50 and blocks[-1]["type"] == "actions"
    assert len(blocks[-1]["elements"]) == 25
    assert blocks[-2]["elements"][0]["text"].startswith("+")  # "+N more" instead of the tail
    assert len(blocks[0]["text"]["text"]) == 150
    dumped = json.dumps(message.payload())
    assert "<!channel>" not in dumped and "&lt;!channel&gt;" in dumped
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert len(message.text) <= 3000


def test_an_oversized_button_value_is_left_out() -> None:
    reply = Reply(
        ReplyKind.INFO, buttons=(Button("isitdown", "u" * 2100, Message("button.recheck")),)
    )
    assert all(b["type"] != "actions" for b in render_reply(reply).blocks)


# ---- parsing -------------------------------------------------------------------------------


def test_slack_escapes_links_and_smart_quotes_are_undone() -> None:
    assert slack_unescape("&lt;b&gt; &amp; <https://x.com/a|x.com/a>") == "<b> & https://x.com/a"
    assert slack_unescape("“Microsoft 365” ‘x’") == "\"Microsoft 365\" 'x'"


def test_subcommands_share_one_slash_command() -> None:
    svc = Param("service", ParamKind.TEXT, "param.service", required=True)
    specs = {
        "service add": CommandSpec("service add", "cmd.help", (svc,), admin=True),
        "service remove": CommandSpec("service remove", "cmd.help", (svc,), admin=True),
        "isitdown": SPECS["isitdown"],
    }
    groups = group_specs(specs)
    assert set(groups) == {"service", "isitdown"}
    parsed = parse_command(groups["service"], 'ADD "Acme Mail"')
    assert (parsed.command, dict(parsed.args), parsed.error_key) == (
        "service add",
        {"service": "Acme Mail"},
        None,
    )
    alone = parse_command(groups["service"], "")
    assert alone.error_key == "slack.error.subcommand"
    assert alone.usage == "/service add <service> | /service remove <service>"
    manifest = build_manifest(specs, mode="http", request_url="https://bot.example/slack/events")
    service = next(c for c in manifest["features"]["slash_commands"] if c["command"] == "/service")
    assert service["usage_hint"] == "add <service> | remove <service>"
    assert service["url"] == "https://bot.example/slack/events"


def test_button_values_round_trip_and_garbage_is_refused() -> None:
    value = decode_value(encode_value("report", "twitter", {"problem": "app", "evil": "x"}))
    assert value is not None
    assert value.args(SPECS["report"]) == {"service": "twitter", "problem": "app"}
    for raw in ("", "null", "[1]", '{"c": 1}', '{"c":"x","v":"y","a":{"k":2}}'):
        assert decode_value(raw) is None, raw


# ---- manifest ------------------------------------------------------------------------------


def test_manifest_per_mode() -> None:
    socket = build_manifest(SPECS, mode="socket")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["interactivity"]
    assert socket["features"]["app_home"]["home_tab_enabled"] is True
    assert socket["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert socket["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    commands = {c["command"]: c for c in socket["features"]["slash_commands"]}
    assert set(commands) == {f"/{name.partition(' ')[0]}" for name in SPECS}
    assert commands["/report"]["usage_hint"] == "<service> [problem] [region] [note]"
    assert all(len(c["description"]) <= 100 for c in commands.values())
    http = build_manifest(SPECS, mode="http", request_url="https://bot.example/slack/events")
    assert http["settings"]["socket_mode_enabled"] is False
    assert http["settings"]["interactivity"]["request_url"] == "https://bot.example/slack/events"
    with pytest.raises(ValueError, match="public URL"):
        build_manifest(SPECS, mode="http")


# ---- signature headers, replays, limiter, regions ------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "signature", "ok"),
    [
        ("1700000000", "v0=ab", True),
        ("17e8", "v0=ab", False),
        ("-1", "v0=ab", False),
        ("²", "v0=ab", False),
        ("1" * 13, "v0=ab", False),
        (None, "v0=ab", False),
        ("1700000000", None, False),
        ("1700000000", "v1=ab", False),
    ],
)
def test_signature_header_shapes(timestamp: str | None, signature: str | None, ok: bool) -> None:
    assert signature_headers_ok(timestamp, signature) is ok


def test_replay_guard_remembers_for_its_window_and_stays_bounded() -> None:
    now = [0.0]
    guard = ReplayGuard(ttl=600, max_entries=3, clock=lambda: now[0])
    assert guard.first_time("a") and not guard.first_time("a")
    now[0] = 599.0
    assert not guard.first_time("a")
    now[0] = 601.0
    assert guard.first_time("a")  # expired: Slack would refuse its stale timestamp anyway
    for key in "bcde":
        guard.first_time(key)
    assert len(guard) == 3


async def test_channel_limiter_allows_a_burst_then_one_per_second() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = ChannelLimiter(rate=1.0, burst=3, max_wait=5.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        await limiter.acquire("C1")
    await limiter.acquire("C2")  # another channel is not held back
    assert waits == [1.0, 1.0]
    # Time stands still (a flood queued at once): each send waits one second more, until the
    # wait passes max_wait and the send is refused with the wait as retry_after.
    frozen = ChannelLimiter(rate=1.0, burst=1, max_wait=5.0, clock=lambda: 0.0, sleep=sleep)
    waits.clear()
    with pytest.raises(DeliveryError) as caught:
        for _ in range(10):
            await frozen.acquire("C4")
    assert waits == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert caught.value.retry_after == 6.0


@pytest.mark.parametrize(
    ("tz", "locale", "expected"),
    [
        ("Asia/Tokyo", "en-US", "en-JP"),
        ("Europe/London", "fr-FR", "fr-GB"),
        ("America/Chicago", "en-US", "en-US"),
        ("America/Toronto", "en-US", "en-CA"),
        ("Australia/Sydney", None, "und-AU"),
        ("Antarctica/Troll", "en-US", "en-x-notz"),  # unplaceable: the workspace default
        (None, "fr-FR", "fr-x-notz"),  # French, but not necessarily in France
        (None, None, None),
    ],
)
def test_region_from_timezone(tz: str | None, locale: str | None, expected: str | None) -> None:
    got = invocation_locale(SlackUser("U1", locale=locale, tz=tz))
    assert got == expected
    if expected is not None and expected.endswith("-x-notz"):
        # No country from a language setting: the command uses the workspace's default region.
        assert region_from_locale(got) is None
        assert Invocation("report", locale=got).lang == expected[:2]


def test_tz_table() -> None:
    assert region_from_tz("Asia/Tokyo") == "JP"
    assert region_from_tz("Europe/London") == "GB"
    assert region_from_tz("America/New_York") == "US"
    assert region_from_tz("Etc/UTC") is None


def test_cli_prints_the_manifest(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from bot.config import EXAMPLE_CONFIG

    assert main(["--config", str(EXAMPLE_CONFIG), "slack-manifest"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert {c["command"] for c in manifest["features"]["slash_commands"]} >= {"/isitdown"}
    url = "https://bot.example/slack/events"
    args = ["--config", str(EXAMPLE_CONFIG), "slack-manifest", "--mode", "http"]
    assert main([*args, "--request-url", url]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["interactivity"]["request_url"] == url
    assert main(args) == 2
    assert "--request-url" in capsys.readouterr().err


async def test_a_chart_is_uploaded_once_and_reused_for_a_minute() -> None:
    from datetime import UTC, datetime, timedelta
    from typing import Any

    from bot.adapters.slack.uploads import ChartUploader
    from bot.charts import ChartData

    class Client:
        def __init__(self) -> None:
            self.uploads = 0

        async def files_upload_v2(self, **kwargs: Any) -> dict[str, Any]:
            self.uploads += 1
            return {"file": {"id": f"F{self.uploads}"}}

    class Uploader(ChartUploader):
        async def _draw(self, chart: ChartData) -> bytes:  # no drawing process in a unit test
            return b"\x89PNG"

    def chart(start: datetime, reports: int) -> ChartData:
        buckets = (start, start + timedelta(minutes=15))
        return ChartData("X: user reports", buckets, (reports, 0), (1.0, 1.0))

    now = [0.0]
    client = Client()
    uploader = Uploader(client, clock=lambda: now[0])  # type: ignore[arg-type]
    t0 = datetime(2022, 12, 28, 21, 0, tzinfo=UTC)
    assert await uploader.file_id(chart(t0, 5)) == "F1"
    assert await uploader.file_id(chart(t0, 5)) == "F1"
    now[0] = 59.0
    assert await uploader.file_id(chart(t0, 9)) == "F1"  # new reports, same picture for now
    now[0] = 61.0
    assert await uploader.file_id(chart(t0, 9)) == "F2"  # a minute on: redrawn
    assert await uploader.file_id(chart(t0 + timedelta(minutes=15), 9)) == "F3"  # new window
    assert client.uploads == 3


async def test_a_dead_drawing_process_costs_one_picture_then_restarts() -> None:
    from datetime import UTC, datetime, timedelta
    from typing import Any

    from bot.adapters.slack.uploads import ChartUploader
    from bot.charts import ChartData

    class Client:
        async def files_upload_v2(self, **kwargs: Any) -> dict[str, Any]:
            assert kwargs["file"].startswith(b"\x89PNG")
            return {"file": {"id": "F1"}}

    t0 = datetime(2022, 12, 28, 21, 0, tzinfo=UTC)

    def chart(n: int) -> ChartData:
        return ChartData(f"S{n}", (t0, t0 + timedelta(minutes=15)), (n, 0), (1.0, 1.0))

    uploader = ChartUploader(Client())  # type: ignore[arg-type]
    try:
        assert await uploader.file_id(chart(1)) == "F1"  # drawn in the helper process
        pool = uploader._process._pool  # the helper process behind it
        assert pool is not None
        for process in list(pool._processes.values()):  # type: ignore[attr-defined]
            process.kill()
            process.join()
        assert await uploader.file_id(chart(2)) is None  # that one is lost (sparkline instead)
        assert await uploader.file_id(chart(3)) == "F1"  # a new process draws the next
    finally:
        await uploader.close()

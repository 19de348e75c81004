"""The Slack adapter end to end: real slack-bolt and slack-sdk against a local Slack.

Each test starts the fake Slack (tests/fakes/slack.py) and the real adapter on loopback ports
chosen by the OS, sends what Slack would send (signed slash commands, clicks, events, Socket Mode
envelopes) and asserts on what the bot answered. No sleeps: tests wait on the fake's record of
requests or on ``adapter.drain()``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fakes.seeding import seed_user_reports
from fakes.slack import FakeSlack, Scripted
from fakes.slack_harness import (
    SECRET,
    SPECS,
    SlackBot,
    environ,
    open_router,
    slack_settings,
    start_bot,
)
from fakes.slack_requests import (
    action_body,
    action_payload,
    event_body,
    sign,
    signed_headers,
    slash_body,
)

from bot.adapters.base import Adapter, DeliveryError, Sender, Sent
from bot.adapters.registry import AdapterDeps
from bot.adapters.slack.adapter import build
from bot.adapters.slack.manifest import build_manifest
from bot.adapters.slack.parse import group_specs
from bot.app import App
from bot.config import parse_settings
from bot.errors import PlatformUnavailable, StartupError
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Reply, ReplyKind


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    slack.add_user("U0001")  # a member in New York
    slack.add_user("UADMIN", is_admin=True)
    slack.add_user("UGUEST", is_admin=True, is_restricted=True)  # a guest, whatever it claims
    slack.add_user("UTOKYO", tz="Asia/Tokyo", locale="fr-FR")
    yield slack
    await slack.close()


@pytest.fixture
async def bot(tmp_path: Path, fake: FakeSlack) -> AsyncIterator[SlackBot]:
    running = await start_bot(tmp_path, fake)
    yield running
    await running.close()


async def command(bot: SlackBot, name: str, text: str, **kwargs: Any) -> dict[str, Any]:
    """Type ``/name text``; return the one message the bot answered on the response_url."""
    url = bot.fake.response_url()
    status, _ = await bot.post(slash_body(f"/{name}", text, response_url=url, **kwargs))
    assert status == 200
    await bot.adapter.drain()
    messages = bot.fake.used(url)
    assert len(messages) == 1, messages
    return messages[0]


def blocks_text(message: dict[str, Any]) -> str:
    return json.dumps(message["blocks"], ensure_ascii=False)


# ---- contract and start-up -----------------------------------------------------------------


async def test_adapter_follows_the_adapter_and_sender_contracts(bot: SlackBot) -> None:
    assert isinstance(bot.adapter, Adapter) and isinstance(bot.adapter, Sender)
    assert bot.adapter.name == "slack"
    assert bot.fake.calls_to("auth.test"), "start() checks the bot token"


@pytest.mark.parametrize(
    ("mode", "missing"),
    [("http", "SLACK_BOT_TOKEN"), ("http", "SLACK_SIGNING_SECRET"), ("socket", "SLACK_APP_TOKEN")],
)
async def test_a_missing_secret_stops_start_up_naming_the_variable(
    tmp_path: Path, fake: FakeSlack, mode: str, missing: str
) -> None:
    env = environ(fake)
    del env[missing]
    with pytest.raises(StartupError, match=missing) as caught:
        build(
            AdapterDeps(
                settings=slack_settings(fake, mode),
                dispatch=None,  # type: ignore[arg-type]  # never reached
                complete=lambda *_: [],
                specs=SPECS,
                environ=env,
                web_app=None,
            )
        )
    assert fake.bot_token not in str(caught.value)


async def test_a_refused_bot_token_is_a_startup_error(tmp_path: Path, fake: FakeSlack) -> None:
    fake.script("auth.test", Scripted.error("invalid_auth"))
    with pytest.raises(StartupError, match="SLACK_BOT_TOKEN"):
        await start_bot(tmp_path, fake)


async def test_a_refused_app_token_stops_socket_mode_start_up(
    tmp_path: Path, fake: FakeSlack
) -> None:
    fake.script("apps.connections.open", Scripted.error("invalid_auth"))
    with pytest.raises(StartupError, match="SLACK_APP_TOKEN"):
        await start_bot(tmp_path, fake, mode="socket")


async def test_without_users_info_nobody_is_admin(bot: SlackBot) -> None:
    bot.fake.script("users.info", Scripted.error("missing_scope"))
    message = await command(bot, "agents", "", user="UADMIN")
    assert "Only server admins can use /agents." in message["text"]
    again = await command(bot, "agents", "", user="UADMIN")  # not cached: asked again
    assert "Probing is off" in again["text"]


async def test_slack_failing_at_start_is_unavailable_and_a_later_start_serves(
    tmp_path: Path, fake: FakeSlack
) -> None:
    router = await open_router(tmp_path)
    adapter = build(
        AdapterDeps(
            settings=slack_settings(fake, "socket"),
            dispatch=router.dispatch,
            complete=lambda *_: [],
            specs=SPECS,
            environ=environ(fake),
            web_app=None,
        )
    )
    try:
        fake.script("auth.test", Scripted(503, {"ok": False, "error": "service_unavailable"}))
        with pytest.raises(PlatformUnavailable, match="503"):
            await adapter.start()  # the app keeps the other platforms serving and retries
        await adapter.start()  # Slack is back
        assert fake.socket_connections == 1
        assert len(fake.calls_to("auth.test")) == 2
    finally:
        await adapter.stop()
        await router.ctx.store.close()


# ---- slash commands ------------------------------------------------------------------------


async def test_signed_isitdown_is_acknowledged_then_answered_with_blocks_and_chart(
    bot: SlackBot,
) -> None:
    await seed_user_reports(bot.router.ctx.store)
    url = bot.fake.response_url()
    started = time.monotonic()
    status, body = await bot.post(slash_body("/isitdown", "twitter", response_url=url))
    assert status == 200 and body == ""
    assert time.monotonic() - started < 3.0  # Slack's deadline for the acknowledgement
    await bot.adapter.drain()
    [message] = bot.fake.used(url)
    assert message["response_type"] == "in_channel"
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds[0] == "header" and kinds[-1] == "actions" and "image" in kinds
    assert message["blocks"][0]["text"]["text"] == "Twitter / X: User reports"
    assert "mostly website (93%)" in blocks_text(message)
    assert "```" in blocks_text(message) and "JP Japan" in blocks_text(message)
    assert "User reports: Probes pass" in message["text"]  # the plain-text fallback
    # The chart went up through files_upload_v2 and the image block shows that very file.
    [image] = [b for b in message["blocks"] if b["type"] == "image"]
    file_id = image["slack_file"]["id"]
    assert bot.fake.uploads[file_id].startswith(b"\x89PNG")
    [done] = bot.fake.calls_to("files.completeUploadExternal")
    assert json.loads(done.args["files"])[0]["id"] == file_id
    # A second ask for the same chart reuses the uploaded file.
    await command(bot, "isitdown", "x")
    assert len(bot.fake.uploads) == 1


async def test_the_acknowledgement_does_not_wait_for_the_command(
    tmp_path: Path, fake: FakeSlack
) -> None:
    release = asyncio.Event()
    seen: list[Invocation] = []

    async def slow(invocation: Invocation) -> Reply:
        seen.append(invocation)
        await release.wait()  # a command that takes longer than Slack's 3 s
        return Reply(ReplyKind.INFO, text=Message("help.intro"))

    bot = await start_bot(tmp_path, fake, dispatch=slow)
    try:
        url = fake.response_url()
        body = slash_body("/isitdown", "twitter", response_url=url, team="T0042", channel="C7")
        assert await bot.post(body) == (200, "")
        assert fake.used(url) == []  # acknowledged while the command still runs
        release.set()
        await bot.adapter.drain()
        assert "I combine probes" in fake.used(url)[0]["text"]
        [invocation] = seen
        assert (invocation.platform, invocation.tenant, invocation.channel) == (
            "slack",
            "T0042",
            "C7",
        )
        assert (invocation.user, invocation.locale, invocation.is_admin) == (
            "U0001",
            "en-US",
            False,
        )
        assert dict(invocation.args) == {"service": "twitter"}
    finally:
        await bot.close()


async def test_arguments_are_parsed_from_text_with_quotes_and_names(bot: SlackBot) -> None:
    message = await command(
        bot, "report", '“twitter” problem=app note="&lt;3 it broke"', user="U0001"
    )
    assert "Thanks: your app report about Twitter / X from the US" in message["text"]
    assert message["response_type"] == "ephemeral"


async def test_bad_arguments_get_usage_only_for_the_user(bot: SlackBot) -> None:
    message = await command(bot, "report", '"twitter')
    assert message["response_type"] == "ephemeral"
    # Escaped as Slack wants: "&lt;" shows as "<" and can never open a link or a mention.
    usage = "/report &lt;service&gt; [problem] [region] [note]"
    assert f"A quote is not closed. Usage: {usage}" in message["text"]
    message = await command(bot, "isitdown", "")
    assert "Missing service. Usage: /isitdown &lt;service&gt;" in message["text"]


async def test_region_comes_from_the_timezone_and_language_from_the_locale(
    bot: SlackBot,
) -> None:
    message = await command(bot, "report", "twitter website", user="UTOKYO")
    assert "Japon" in message["text"]  # Tokyo's timezone, French locale
    await command(bot, "worksforme", "github", user="UTOKYO")
    [info] = [c for c in bot.fake.calls_to("users.info") if c.args["user"] == "UTOKYO"]
    assert info.args["include_locale"] in ("1", "true")  # asked once, then cached
    default = await command(bot, "report", "github website", user="U0001")
    assert "from the US" in default["text"]


async def test_admin_commands_need_a_workspace_admin_and_refuse_guests(
    tmp_path: Path, fake: FakeSlack
) -> None:
    fake.add_user("ULISTED")
    bot = await start_bot(tmp_path, fake, admins=["ULISTED"])
    try:
        member = await command(bot, "agents", "", user="U0001")
        assert "Only server admins can use /agents." in member["text"]
        guest = await command(bot, "agents", "", user="UGUEST")
        assert "Guests cannot use /agents" in guest["text"]
        for user in ("UADMIN", "ULISTED"):
            admin = await command(bot, "agents", "", user=user)
            assert "Probing is off" in admin["text"], user  # it ran: no probes in this test
    finally:
        await bot.close()


async def test_every_registered_command_is_handled(bot: SlackBot) -> None:
    """Parity: each COMMANDS spec is a slash command the running app answers (not bolt's 404)."""
    specs = SPECS
    manifest = build_manifest(specs, mode="socket")
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}
    groups = group_specs(specs)
    assert declared == {f"/{name}" for name in groups}
    for spec in specs.values():
        head, _, sub = spec.name.partition(" ")
        assert f"/{head}" in declared
        message = await command(bot, head, sub, user="UADMIN")
        assert "I don't know /" not in message["text"], spec.name


async def test_a_command_this_build_lacks_gets_a_kind_answer(bot: SlackBot) -> None:
    message = await command(bot, "frobnicate", "twitter")
    assert "I don't know /frobnicate. Try /help." in message["text"]
    assert message["response_type"] == "ephemeral"


async def test_the_events_url_answers_slacks_url_verification(bot: SlackBot) -> None:
    body = json.dumps({"token": "t", "challenge": "c-123", "type": "url_verification"})
    status, text = await bot.post(body, json_body=True)
    assert status == 200 and "c-123" in text


# ---- signatures and replays ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Slack-Signature": "v0=" + "0" * 64}, id="bad signature"),
        pytest.param({"X-Slack-Request-Timestamp": str(int(time.time()) - 600)}, id="stale"),
        pytest.param({"X-Slack-Request-Timestamp": "soon"}, id="non-numeric timestamp"),
        pytest.param({"X-Slack-Request-Timestamp": "١٢٣٤٥"}, id="arabic-indic digits"),
        pytest.param({"X-Slack-Request-Timestamp": ""}, id="empty timestamp"),
        pytest.param({"X-Slack-Signature": "sha256=abc"}, id="wrong scheme"),
        pytest.param({"X-Slack-Signature": None}, id="no signature"),
    ],
)
async def test_bad_stale_and_malformed_signatures_get_401_and_run_nothing(
    bot: SlackBot, headers: dict[str, str | None]
) -> None:
    url = bot.fake.response_url()
    body = slash_body("/isitdown", "twitter", response_url=url)
    sent = signed_headers(SECRET, body)
    stamp = headers.get("X-Slack-Request-Timestamp")
    if stamp is not None and stamp.isascii() and stamp.isdigit():
        sent["X-Slack-Signature"] = sign(SECRET, stamp, body)  # right signature, stale time
    for key, value in headers.items():
        if value is None:
            del sent[key]
        else:
            sent[key] = value
    status, _ = await bot.post(body, headers=sent)
    assert status == 401
    await bot.adapter.drain()
    assert bot.fake.used(url) == []
    assert not bot.fake.calls_to("users.info")


@pytest.mark.parametrize(
    ("body", "json_body"),
    [("[1]", True), ("payload=%7Bnot", False), ("%%%", False), ("{}", True)],
)
async def test_signed_nonsense_is_a_client_error_never_500(
    bot: SlackBot, body: str, json_body: bool
) -> None:
    status, _ = await bot.post(body, json_body=json_body)
    assert 400 <= status < 500


async def test_a_replayed_request_runs_once(bot: SlackBot) -> None:
    url = bot.fake.response_url()
    body = slash_body("/report", "twitter", response_url=url)
    headers = signed_headers(SECRET, body)
    assert (await bot.post(body, headers=headers))[0] == 200
    assert (await bot.post(body, headers=headers))[0] == 200  # a replay: acknowledged...
    await bot.adapter.drain()
    assert len(bot.fake.used(url)) == 1  # ...but run once
    # A new signature over the same trigger_id is still the same request.
    assert (await bot.post(body))[0] == 200
    await bot.adapter.drain()
    assert len(bot.fake.used(url)) == 1


# ---- delivery ------------------------------------------------------------------------------


async def test_an_exhausted_response_url_falls_back_to_the_web_api(bot: SlackBot) -> None:
    url = bot.fake.response_url()
    bot.fake.exhaust(url)
    await bot.post(slash_body("/services", "", response_url=url, channel="C0042"))
    await bot.adapter.drain()
    assert bot.fake.response_statuses == [404]
    [ephemeral] = bot.fake.calls_to("chat.postEphemeral")  # /services answers only the user
    assert ephemeral.args["channel"] == "C0042" and ephemeral.args["user"] == "U0001"
    assert "Services I know (3)" in json.dumps(ephemeral.args["blocks"])

    await seed_user_reports(bot.router.ctx.store)
    url = bot.fake.response_url()
    bot.fake.exhaust(url)
    await bot.post(slash_body("/isitdown", "twitter", response_url=url, channel="C0042"))
    await bot.adapter.drain()
    [posted] = bot.fake.calls_to("chat.postMessage")  # a verdict is for the channel
    assert posted.args["channel"] == "C0042"
    assert posted.args["text"].startswith("User reports:")


# ---- buttons -------------------------------------------------------------------------------


async def test_buttons_dispatch_the_command_they_name(bot: SlackBot) -> None:
    await seed_user_reports(bot.router.ctx.store)
    verdict = await command(bot, "isitdown", "twitter")
    [actions] = [b for b in verdict["blocks"] if b["type"] == "actions"]
    by_action = {e["action_id"].rsplit(".", 1)[1]: e for e in actions["elements"]}
    assert {"report", "worksforme", "isitdown"} <= set(by_action) <= set(SPECS)

    url = bot.fake.response_url()
    works = by_action["worksforme"]
    click = {"action_id": works["action_id"], "type": "button", "value": works["value"]}
    status, _ = await bot.post(action_body(click, response_url=url, user="U0001"))
    assert status == 200
    await bot.adapter.drain()
    [answer] = bot.fake.used(url)
    assert "noted that Twitter / X works for you in the US" in answer["text"]
    assert answer["replace_original"] is False

    # "I have a problem" is a menu of problem types; picking one files that report.
    select = by_action["report"]
    assert select["type"] == "static_select"
    [website] = [o for o in select["options"] if o["text"]["text"] == "website"]
    url = bot.fake.response_url()
    pick = {"action_id": select["action_id"], "type": "static_select", "selected_option": website}
    await bot.post(action_body(pick, response_url=url, user="U0001"))
    await bot.adapter.drain()
    assert "your website report about Twitter / X" in bot.fake.used(url)[0]["text"]


async def test_a_button_value_we_did_not_write_is_refused_kindly(bot: SlackBot) -> None:
    url = bot.fake.response_url()
    click = {"action_id": "outagebot.0.report", "type": "button", "value": "{not json"}
    await bot.post(action_body(click, response_url=url))
    await bot.adapter.drain()
    assert "I can't read this button" in bot.fake.used(url)[0]["text"]


# ---- proactive sends ---------------------------------------------------------------------------


def alert() -> Reply:
    return Reply(ReplyKind.INFO, text=Message("help.intro"))


async def test_send_posts_into_a_thread_and_edit_updates_the_message(bot: SlackBot) -> None:
    first = await bot.adapter.send("C0001", alert(), key="incident-1:opened")
    assert isinstance(first, Sent) and first.channel == "C0001"
    reply = await bot.adapter.send(
        "C0001", alert(), key="incident-1:update", thread_of=first.message_id
    )
    await bot.adapter.edit(first, alert())
    posts = bot.fake.calls_to("chat.postMessage")
    assert posts[1].args["thread_ts"] == first.message_id
    assert posts[0].args["metadata"]["event_payload"] == {"key": "incident-1:opened"}
    [update] = bot.fake.calls_to("chat.update")
    assert update.args["ts"] == first.message_id and update.args["channel"] == "C0001"
    assert reply.message_id != first.message_id


async def test_a_short_429_storm_is_retried_after_retry_after(bot: SlackBot) -> None:
    bot.fake.script("chat.postMessage", Scripted.rate_limited(1))
    sent = await bot.adapter.send("C0007", alert(), key="k1")
    first, second = bot.fake.calls_to("chat.postMessage")
    assert second.at - first.at >= 1.0  # Retry-After: 1 honoured
    assert sent.message_id


async def test_a_long_retry_after_becomes_a_delivery_error_for_the_outbox(bot: SlackBot) -> None:
    bot.fake.script("chat.postMessage", Scripted.rate_limited(30))
    with pytest.raises(DeliveryError) as caught:
        await bot.adapter.send("C0008", alert(), key="k2")
    assert caught.value.retry_after == 30.0 and not caught.value.permanent
    assert len(bot.fake.calls_to("chat.postMessage")) == 1  # no 30 s wait inside the request

    bot.fake.script("chat.postMessage", Scripted.error("channel_not_found"))
    with pytest.raises(DeliveryError) as gone:
        await bot.adapter.send("C0009", alert(), key="k3")
    assert gone.value.permanent


# ---- App Home ------------------------------------------------------------------------------


async def test_app_home_shows_this_workspace_through_neutral_commands(bot: SlackBot) -> None:
    event = {"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"}
    status, _ = await bot.post(event_body(event), json_body=True)
    assert status == 200
    await bot.adapter.drain()
    [publish] = bot.fake.calls_to("views.publish")
    assert publish.args["user_id"] == "U0001"
    view = publish.args["view"]
    assert view["type"] == "home"
    text = json.dumps(view, ensure_ascii=False)
    assert "Services I know (3)" in text and "Twitter / X" in text


# ---- Socket Mode ---------------------------------------------------------------------------


async def test_socket_mode_acknowledges_the_envelope_then_answers(
    tmp_path: Path, fake: FakeSlack
) -> None:
    bot = await start_bot(tmp_path, fake, mode="socket")
    try:
        [opened] = fake.calls_to("apps.connections.open")
        assert opened.token == fake.app_token
        url = fake.response_url()
        payload = dict(parse_qsl(slash_body("/services", "", response_url=url)))
        envelope = await fake.send_envelope("slash_commands", payload)
        await fake.wait_for(lambda: envelope in fake.acks)
        assert fake.acks[envelope]["envelope_id"] == envelope
        await fake.wait_for(lambda: bool(fake.used(url)))
        assert "Services I know (3)" in blocks_text(fake.used(url)[0])

        click_url = fake.response_url()
        button = {"action_id": "outagebot.2.isitdown", "type": "button"}
        button["value"] = '{"c":"isitdown","v":"steam"}'
        clicked = await fake.send_envelope(
            "interactive", action_payload(button, response_url=click_url)
        )
        await fake.wait_for(lambda: clicked in fake.acks and bool(fake.used(click_url)))
        assert fake.used(click_url)[0]["blocks"][0]["text"]["text"].startswith("Steam")

        # Slack asks for a reconnection now and then: the client opens a new socket and goes on.
        await fake.refresh_socket()
        await fake.wait_for(lambda: fake.socket_connections == 2)
        assert len(fake.calls_to("apps.connections.open")) == 2
        later = fake.response_url()
        payload = dict(parse_qsl(slash_body("/help", "", response_url=later)))
        envelope = await fake.send_envelope("slash_commands", payload)
        await fake.wait_for(lambda: envelope in fake.acks and bool(fake.used(later)))
    finally:
        await bot.close()


# ---- the composition root ----------------------------------------------------------------------


async def test_app_with_slack_enabled_in_http_mode_serves_slack_events_on_the_api_listener(
    tmp_path: Path, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import aiohttp

    for name, value in environ(fake).items():
        monkeypatch.setenv(name, value)
    settings = parse_settings(
        {
            "bot": {"database": str(tmp_path / "app.db")},
            "api": {"listen": "127.0.0.1:0"},
            "probes": {"enabled": False},
            "slack": {"enabled": True, "mode": "http", "api_base": fake.api_base},
            "services": [
                {"key": "acme", "name": "Acme", "targets": {"web": "https://acme.invalid/"}}
            ],
        }
    )
    app = await App.create(settings, demo=False)
    try:
        await app.start()
        assert app.api is not None and app.api.port
        assert len(app.adapters) == 1
        url = fake.response_url()
        body = slash_body("/services", "", response_url=url)
        events = f"http://127.0.0.1:{app.api.port}/slack/events"
        async with aiohttp.ClientSession() as session:
            async with session.post(events, data=body, headers=signed_headers(SECRET, body)) as r:
                assert r.status == 200
            async with session.post(
                events, data=body, headers={"X-Slack-Request-Timestamp": "x"}
            ) as r:
                assert r.status == 401
        await fake.wait_for(lambda: bool(fake.used(url)))
        assert "Acme" in blocks_text(fake.used(url)[0])
    finally:
        await app.close()

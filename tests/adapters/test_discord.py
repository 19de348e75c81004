"""The Discord adapter end to end: the real discord.py client against a local fake Discord.

Each test starts the fake (REST and gateway on 127.0.0.1, port 0), a SQLite store in tmp_path,
the real router with every registered command, and the adapter; then plays what a user does
(types a command, clicks a button) as INTERACTION_CREATE events and asserts on what Discord
received. Waiting is on the fake's state (``fake.wait_for``), never on sleeps.

Golden files: ``tests/golden/discord_verdict_user_reports.json`` pins the embed of an /isitdown
verdict built from fixed evidence at a fixed time, ``discord_verdict_buttons.json`` the buttons
under a verdict (English and French). After an intended change to
the rendering, regenerate it with::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/adapters/test_discord.py

and review the diff of the golden file before committing it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import discord
import pytest
from fakes import discord_payloads as p
from fakes.discord_fake import FakeDiscord
from fakes.discord_harness import (
    SPECS,
    Harness,
    options_of,
    restore_discord_urls,
    running,
)
from fakes.seeding import seed_user_reports

from bot.adapters.base import Adapter, DeliveryError, Sender, Sent
from bot.adapters.discord.adapter import DiscordAdapter
from bot.adapters.discord.delivery import nonce
from bot.adapters.discord.render import components_json, render_reply
from bot.i18n import Message
from bot.invocation import Invocation
from bot.reply import Button, Reply, ReplyKind, info
from bot.spec import ParamKind
from commands._common import verdict_buttons

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
ROOT = Path(__file__).resolve().parents[2]
OPTION_STRING = 3


ALL_BUTTONS = (
    Button("report", "twitter", Message("button.report")),
    Button("worksforme", "twitter", Message("button.works")),
    Button("isitdown", "twitter", Message("button.recheck")),
    Button("subscribe", "twitter", Message("button.subscribe")),
)


def check_golden(name: str, actual: Any) -> None:
    path = GOLDEN / name
    text = json.dumps(actual, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def wire_embed(message: dict[str, Any]) -> dict[str, Any]:
    """The embed as sent, without the defaults discord.py adds to every embed."""
    (embed,) = message["embeds"]
    return {k: v for k, v in embed.items() if k not in ("flags", "type")}


def permissions_of(command: dict[str, Any]) -> int | None:
    """default_member_permissions (Discord takes the bit set as a string or a number)."""
    value = command.get("default_member_permissions")
    return None if value is None else int(value)


def custom_ids(message: dict[str, Any]) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


# ---- connecting --------------------------------------------------------------------------------


async def test_login_ready_and_the_adapter_contracts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every log line of ours and discord.py's
    async with running(tmp_path) as h:
        assert isinstance(h.adapter, Adapter) and isinstance(h.adapter, Sender)
        assert h.adapter.name == "discord"
        client = h.adapter.client
        assert client is not None and client.is_ready()
        assert client.user is not None and str(client.user.id) == h.fake.bot["id"]
        paths = [r.path for r in h.fake.requests]
        assert paths[:2] == ["/api/v10/users/@me", "/api/v10/oauth2/applications/@me"]
        (identify,) = h.fake.identifies
        assert identify["token"] == h.fake.token
        assert identify["intents"] == 1  # GUILDS only: no privileged intents
        assert [g.id for g in client.guilds] == [int(h.fake.guild_id)]
    assert "discord connected" in caplog.text
    assert h.fake.token not in caplog.text  # never logged, even at DEBUG


async def test_sync_registers_every_spec_with_the_same_parameters(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        synced = {c["name"]: c for c in h.fake.commands["global"]}
    top_level = {name for name in SPECS if " " not in name}
    groups = {name.split(" ")[0] for name in SPECS if " " in name}
    assert set(synced) == top_level | groups
    for name, spec in SPECS.items():
        group, _, sub = name.partition(" ")
        command = synced[group]
        if sub:
            command = options_of(command)[sub]
            assert command["type"] == 1  # a subcommand
        options = command.get("options", [])
        assert [o["name"] for o in options] == [p.name for p in spec.params], name
        for param, option in zip(spec.params, options, strict=True):
            assert option["type"] == OPTION_STRING
            assert option["required"] is param.required, (name, param.name)
            assert len(option["description"]) <= 100
            if param.kind is ParamKind.PROBLEM:
                assert [c["value"] for c in option["choices"]] == [
                    "website",
                    "app",
                    "login",
                    "notifications",
                    "api",
                    "other",
                ]
            else:
                assert option["max_length"] == param.max_length
            completes = param.kind in (
                ParamKind.SERVICE,
                ParamKind.SERVICE_OR_URL,
                ParamKind.REGION,
            )
            assert option.get("autocomplete", False) is completes, (name, param.name)
        if not sub:
            assert permissions_of(command) == (p.MANAGE_GUILD if spec.admin else None), name
    for group in groups:  # Discord reads the hint on the group only, so it carries it
        members = [s for n, s in SPECS.items() if n.partition(" ")[0] == group and " " in n]
        admin_only = all(s.admin for s in members)
        assert permissions_of(synced[group]) == (p.MANAGE_GUILD if admin_only else None), group


async def test_configured_guilds_get_the_commands_and_use_them(tmp_path: Path) -> None:
    fake = FakeDiscord()
    async with running(tmp_path, fake=fake, guild_ids=[fake.guild_id]) as h:
        assert set(h.fake.commands) == {fake.guild_id}  # no global copy to show twice
        interaction = await h.fake.slash("services")  # routed by the guild's command id
        await h.fake.wait_for(lambda: interaction.callbacks)
        assert interaction.payload["data"]["guild_id"] == fake.guild_id
        assert interaction.callbacks[0]["data"]["embeds"][0]["title"] == "Services I know (3)"


async def test_descriptions_are_localized_in_french(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        synced = {c["name"]: c for c in h.fake.commands["global"]}
    isitdown = synced["isitdown"]
    assert isitdown["description"] == "Is a service down, or is it just you?"
    assert isitdown["description_localizations"] == {
        "fr": "Un service est-il en panne, ou est-ce juste chez vous ?"
    }
    problem = options_of(synced["report"])["problem"]
    assert problem["description_localizations"]["fr"].startswith("Ce qui ne marche pas")
    website = next(c for c in problem["choices"] if c["value"] == "website")
    assert website["name_localizations"] == {"fr": "site web"}


async def test_subcommand_specs_become_groups() -> None:
    """Specs named "service add" etc. become subcommands of one group, admin hint on the group."""
    from discord import app_commands

    from bot.adapters.discord.commands import add_commands
    from bot.spec import CommandSpec, Param

    # Synthetic specs, so this test does not change as commands are added to COMMANDS.
    specs = {
        "help": SPECS["help"],
        "service add": CommandSpec(
            "service add",
            "cmd.services",
            (Param("service", ParamKind.TEXT, "param.service", required=True),),
            admin=True,
        ),
        "service remove": CommandSpec(
            "service remove",
            "cmd.services",
            (Param("service", ParamKind.SERVICE, "param.service", required=True),),
            admin=True,
        ),
        "region default": CommandSpec(
            "region default",
            "cmd.services",
            (Param("region", ParamKind.REGION, "param.region", required=True),),
            admin=True,
        ),
    }

    async def never(*args: Any) -> Any:
        raise AssertionError("not called")

    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(
        discord.Client(intents=discord.Intents.none())
    )
    add_commands(tree, specs, on_command=never, on_autocomplete=never)
    payload = {c.name: c.to_dict(tree) for c in tree.get_commands()}
    assert set(payload) == {"help", "service", "region"}
    service = payload["service"]
    assert [o["name"] for o in service["options"]] == ["add", "remove"]
    assert all(o["type"] == 1 for o in service["options"])
    assert permissions_of(service) == p.MANAGE_GUILD
    remove = options_of(service)["remove"]
    assert options_of(remove)["service"]["autocomplete"] is True


# ---- slash commands ----------------------------------------------------------------------------


async def test_isitdown_defers_then_follows_up_with_embed_chart_and_buttons(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        await seed_user_reports(h.store)
        interaction = await h.fake.slash("isitdown", {"service": "twitter"})
        await h.fake.wait_for(lambda: interaction.followups)
        assert interaction.callback_types == [5]  # deferred: "outagebot is thinking..."
        (message,) = interaction.followups
        assert message["id"] == interaction.original["id"]  # it replaced the placeholder
        # The verdict first, without its picture; the chart is attached by an edit after.
        assert "image" not in wire_embed(message) and not message["attachments"]
        stored = await h.fake.wait_for(
            lambda: (
                h.fake.messages[message["id"]] if h.fake.messages[message["id"]]["files"] else None
            )
        )
        (chart,) = stored["files"]
        assert chart[0] == "chart.png" and chart[1].startswith(b"\x89PNG")
        assert stored["allowed_mentions"] == {"parse": []}
        assert not stored["flags"] & p.EPHEMERAL
        embed = wire_embed(stored)
        assert embed["image"] == {"url": "attachment://chart.png"}
        assert embed["color"] == 0xF59F00  # user reports: amber
        assert embed["title"].startswith("User reports: Probes pass, but users report problems")
        assert "```\nRegion" in embed["description"]
        assert "Problems reported: website 93% · app 7%" in embed["description"]
        assert "Official status: All Systems Operational" in embed["description"]
        assert embed["footer"]["text"].startswith("Probes 31s ago")
        # One button per registered command the verdict offers (/subscribe when it exists).
        offered = verdict_buttons("twitter")
        assert custom_ids(message) == [f"ob:{b.action}:twitter" for b in offered]
        assert custom_ids(message)[:3] == [
            "ob:report:twitter",
            "ob:worksforme:twitter",
            "ob:isitdown:twitter",
        ]
        reply = Reply(ReplyKind.VERDICT, buttons=offered)
        assert message["components"] == components_json(render_reply(reply))
        check_golden("discord_verdict_user_reports.json", {"embed": embed})


async def test_golden_matches_the_pure_renderer(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await seed_user_reports(h.store)
        reply = await h.router.dispatch(Invocation("isitdown", {"service": "twitter"}))
    # Every verdict button, whichever commands are registered today, so the golden file
    # pins the layout rather than the command list.
    payload = render_reply(dataclasses.replace(reply, buttons=ALL_BUTTONS))
    golden = json.loads((GOLDEN / "discord_verdict_user_reports.json").read_text("utf-8"))
    assert payload.embed == golden["embed"]
    check_golden(
        "discord_verdict_buttons.json",
        {
            "components": components_json(payload),
            "french": components_json(
                render_reply(dataclasses.replace(reply, buttons=ALL_BUTTONS), "fr")
            ),
        },
    )
    assert payload.chart is not None and not payload.ephemeral


async def test_french_locale_gets_french_buttons_and_headline(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await seed_user_reports(h.store)
        interaction = await h.fake.slash("isitdown", {"service": "x"}, locale="fr")
        await h.fake.wait_for(lambda: interaction.followups)
    (message,) = interaction.followups
    # Headline and problem names in French (category labels are not translated yet).
    assert wire_embed(message)["title"].endswith(
        "Les sondes passent, mais des utilisateurs signalent des problèmes avec Twitter / X, "
        "surtout site web (93 %)."
    )
    labels = [c["label"] for row in message["components"] for c in row["components"]]
    assert labels[:3] == ["J'ai un problème", "Ça marche chez moi", "Revérifier"]


async def test_other_commands_answer_at_once_and_privately(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        interaction = await h.fake.slash("services")
        await h.fake.wait_for(lambda: interaction.callbacks)
    (callback,) = interaction.callbacks
    assert callback["type"] == 4  # a message right away, no deferral
    data = callback["data"]
    assert data["flags"] & p.EPHEMERAL
    assert data["allowed_mentions"] == {"parse": []}
    (embed,) = data["embeds"]
    assert embed["title"] == "Services I know (3)"
    assert "Steam (`steam`)" in embed["description"]


async def test_a_slow_command_is_deferred_privately_before_the_deadline(tmp_path: Path) -> None:
    hold = asyncio.Event()
    async with running(tmp_path, hold=hold, ack_budget=0.05) as h:
        interaction = await h.fake.slash("services")
        await h.fake.wait_for(lambda: interaction.callbacks)
        (deferral,) = interaction.callbacks
        assert deferral["type"] == 5 and deferral["data"]["flags"] & p.EPHEMERAL
        hold.set()
        await h.fake.wait_for(lambda: interaction.followups)
    (answer,) = interaction.followups
    assert answer["embeds"][0]["title"] == "Services I know (3)"
    assert answer["flags"] & p.EPHEMERAL


async def test_an_error_after_deferring_is_shown_only_to_the_user(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        interaction = await h.fake.slash("isitdown", {"service": "nosuch"})
        await h.fake.wait_for(lambda: interaction.followups)
    assert interaction.callback_types == [5]
    assert interaction.original_deleted  # the public "thinking..." placeholder is gone
    (message,) = interaction.followups
    assert message["flags"] & p.EPHEMERAL
    assert "I don't know a service called “nosuch”" in message["content"]
    assert message["embeds"] == [] and message["components"] == []


async def test_user_text_never_pings(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        interaction = await h.fake.slash("isitdown", {"service": "@everyone"})
        await h.fake.wait_for(lambda: interaction.followups)
        stored = h.fake.messages[interaction.followups[0]["id"]]
    assert "@everyone" in stored["content"]
    assert stored["allowed_mentions"] == {"parse": []}


async def test_autocomplete_offers_services_and_regions(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        services = await h.fake.autocomplete("isitdown", "service", "twi")
        regions = await h.fake.autocomplete("report", "region", "", locale="fr")
        american = await h.fake.autocomplete("worksforme", "region", "", locale="en-US")
        await h.fake.wait_for(
            lambda: services.callbacks and regions.callbacks and american.callbacks
        )
    (answer,) = services.callbacks
    assert answer["type"] == 8
    assert answer["data"]["choices"] == [{"name": "Twitter / X", "value": "twitter"}]
    choices = regions.callbacks[0]["data"]["choices"]
    assert len(choices) == 25  # Discord's ceiling
    assert choices[0] == {"name": "France (FR)", "value": "FR"}  # the user's locale first
    assert american.callbacks[0]["data"]["choices"][0]["value"] == "US"
    assert any(c["name"] == "Japon (JP)" for c in choices)  # French names


# ---- buttons -----------------------------------------------------------------------------------


async def _verdict_message(h: Harness) -> dict[str, Any]:
    await seed_user_reports(h.store)
    interaction = await h.fake.slash("isitdown", {"service": "twitter"})
    await h.fake.wait_for(lambda: interaction.followups)
    return interaction.followups[0]


async def test_buttons_still_work_after_a_restart(tmp_path: Path) -> None:
    """Their command is in their custom_id: a new process answers clicks on old messages."""
    fake = await FakeDiscord().start()
    try:
        async with running(tmp_path, fake=fake) as h:
            verdict = await _verdict_message(h)
        async with running(tmp_path, fake=fake) as again:  # a new client, as after a restart
            works = await again.fake.click(verdict, "ob:worksforme:twitter")
            await again.fake.wait_for(lambda: works.callbacks)
            assert works.callbacks[0]["data"]["content"].startswith("Thanks: noted")
            assert (await again.store.table_counts())["works_for_me"] == 4
    finally:
        await fake.close()


async def test_forged_buttons_do_no_more_than_typing(tmp_path: Path) -> None:
    """A custom_id is user-controlled: a forged one reaches only what typing could."""
    async with running(tmp_path) as h:
        verdict = await _verdict_message(h)
        ids = ("ob:service add:evil", "ob:nosuch:x", "ob:agents:x")
        forged = dict(verdict)
        forged["components"] = [
            {
                "type": 1,
                "components": [
                    {"type": 2, "style": 2, "label": "x", "custom_id": cid} for cid in ids
                ],
            }
        ]
        before = await h.store.table_counts()
        # An admin subcommand cannot be named by a button (actions have no spaces): ignored.
        await h.fake.click(forged, ids[0], permissions=p.MEMBER)
        unknown = await h.fake.click(forged, ids[1], permissions=p.MEMBER)
        admin = await h.fake.click(forged, ids[2], permissions=p.MEMBER)
        await h.fake.wait_for(lambda: unknown.callbacks and admin.callbacks)
        assert "don't know /nosuch" in unknown.callbacks[0]["data"]["content"]
        assert admin.callbacks[0]["data"]["content"] == "Only server admins can use /agents."
        assert await h.store.table_counts() == before


async def test_report_button_asks_the_problem_then_stores_the_report(tmp_path: Path) -> None:
    seen: list[Invocation] = []
    async with running(tmp_path, seen=seen) as h:
        verdict = await _verdict_message(h)
        before = (await h.store.table_counts())["reports"]
        click = await h.fake.click(verdict, "ob:report:twitter", locale="en-GB")
        await h.fake.wait_for(lambda: click.callbacks)
        (ask,) = click.callbacks
        assert ask["type"] == 4 and ask["data"]["flags"] & p.EPHEMERAL
        picker = click.original
        assert picker is not None
        (select,) = [c for row in picker["components"] for c in row["components"]]
        assert select["type"] == 3 and select["custom_id"] == "obs:report:twitter"
        assert [o["value"] for o in select["options"]][:2] == ["website", "app"]

        pick = await h.fake.click(picker, "obs:report:twitter", values=["app"], locale="en-GB")
        await h.fake.wait_for(lambda: pick.callbacks)
        answer = pick.callbacks[0]["data"]
        assert answer["flags"] & p.EPHEMERAL
        assert answer["content"] == (
            "Thanks: your app report about Twitter / X from the UK counts toward the verdict."
        )
        assert (await h.store.table_counts())["reports"] == before + 1
    assert seen[-1] == Invocation(
        "report",
        {"service": "twitter", "problem": "app"},
        platform="discord",
        tenant=h.fake.guild_id,
        channel=h.fake.channel_id,
        user=h.fake.person["id"],
        locale="en-GB",
        is_admin=False,
    )


async def test_each_button_dispatches_the_typed_invocation(tmp_path: Path) -> None:
    seen: list[Invocation] = []
    async with running(tmp_path, seen=seen) as h:
        verdict = await _verdict_message(h)
        typed = seen[-1]
        works = await h.fake.click(verdict, "ob:worksforme:twitter")
        await h.fake.wait_for(lambda: works.callbacks)
        assert works.callbacks[0]["data"]["content"].startswith("Thanks: noted that Twitter / X")
        assert (await h.store.table_counts())["works_for_me"] == 4  # 3 seeded + this one
        recheck = await h.fake.click(verdict, "ob:isitdown:twitter")
        await h.fake.wait_for(lambda: recheck.followups)
        assert recheck.callback_types == [5]
        assert custom_ids(recheck.followups[0])[0] == "ob:report:twitter"
    assert seen[-1] == typed  # the re-check is exactly /isitdown twitter
    assert seen[-2] == Invocation(
        "worksforme",
        {"service": "twitter"},
        platform="discord",
        tenant=typed.tenant,
        channel=typed.channel,
        user=typed.user,
        locale="en-US",
    )


# ---- who and where -----------------------------------------------------------------------------


async def test_admin_command_needs_manage_server_at_run_time(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        member = await h.fake.slash("agents", permissions=p.MEMBER)
        manager = await h.fake.slash("agents", permissions=p.MEMBER | p.MANAGE_GUILD)
        owner = await h.fake.slash("agents", permissions=p.ADMINISTRATOR)
        await h.fake.wait_for(lambda: member.callbacks and manager.callbacks and owner.callbacks)
    refused = member.callbacks[0]["data"]
    assert refused["flags"] & p.EPHEMERAL
    assert refused["content"] == "Only server admins can use /agents."
    for allowed in (manager, owner):
        # Past the admin check: this bot runs without probes, which the command says.
        assert allowed.callbacks[0]["data"]["content"].startswith("Probing is off on this bot")


async def test_admin_subcommands_are_checked_and_scoped_to_the_guild(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        member = await h.fake.slash(
            "service", {"key": "intranet", "url": "https://intranet.invalid/"}, subcommand="add"
        )
        manager = await h.fake.slash(
            "region", {"region": "JP"}, subcommand="default", permissions=p.MANAGE_GUILD
        )
        await h.fake.wait_for(lambda: member.callbacks and manager.callbacks)
        assert member.callbacks[0]["data"]["content"] == "Only server admins can use /service add."
        assert "Japan (JP)" in manager.callbacks[0]["data"]["content"]
        # Latin-American Spanish names no country: the report counts for the server's default.
        report = await h.fake.slash("report", {"service": "steam"}, locale="es-419")
        await h.fake.wait_for(lambda: report.callbacks)
        assert "about Steam from Japan counts" in report.callbacks[0]["data"]["content"]
        assert await h.store.tenant_setting("discord", h.fake.guild_id, "default_region") == "JP"


async def test_direct_messages_have_no_tenant_and_no_admin(tmp_path: Path) -> None:
    seen: list[Invocation] = []
    async with running(tmp_path, seen=seen) as h:
        report = await h.fake.slash("report", {"service": "steam"}, dm=True, locale="ja")
        agents = await h.fake.slash("agents", dm=True)
        await h.fake.wait_for(lambda: report.callbacks and agents.callbacks)
    assert report.callbacks[0]["data"]["content"] == (
        "Thanks: your other report about Steam from Japan counts toward the verdict."
    )
    assert agents.callbacks[0]["data"]["content"] == "Only server admins can use /agents."
    assert seen[0].tenant == "" and seen[0].channel == h.fake.dm_channel_id
    assert seen[0].user == h.fake.person["id"] and not seen[0].is_admin


# ---- deadlines ---------------------------------------------------------------------------------


async def test_an_expired_interaction_is_logged_and_the_bot_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.adapters.discord")
    async with running(tmp_path) as h:
        late = await h.fake.slash("services", age=3.5)  # arrived after Discord's 3 s
        await h.fake.wait_for(lambda: late.refusals)
        assert late.refusals == [10062] and late.callbacks == []
        fresh = await h.fake.slash("help")
        await h.fake.wait_for(lambda: fresh.callbacks)
        assert fresh.callbacks[0]["data"]["embeds"][0]["title"].startswith("outagebot")
    assert "interaction expired before the first response" in caplog.text
    assert h.fake.token not in caplog.text


async def test_an_expired_token_stops_the_followup_cleanly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.adapters.discord")
    async with running(tmp_path) as h:
        interaction = await h.fake.slash("isitdown", {"service": "twitter"}, followup_ttl=0.0)
        await h.fake.wait_for(lambda: interaction.refusals)
        assert interaction.callback_types == [5]
        assert interaction.refusals == [50027] and interaction.followups == []
    assert "interaction token expired" in caplog.text


# ---- proactive sends -----------------------------------------------------------------------


def alert(n: int = 0) -> Reply:
    return info("services.title", count=n)


async def test_send_posts_once_per_key_and_edit_replaces(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        first = await h.adapter.send(channel, alert(1), key="incident-7:opened")
        again = await h.adapter.send(channel, alert(1), key="incident-7:opened")
        assert again == first  # the nonce made the resend the same message
        assert h.fake.channel_messages[channel] == [first.message_id]
        posted = [r for r in h.fake.requests if r.path.endswith(f"/channels/{channel}/messages")]
        assert posted[0].body["nonce"] == nonce("incident-7:opened")
        assert posted[0].body["enforce_nonce"] is True
        assert posted[0].body["allowed_mentions"] == {"parse": []}

        reply = await h.adapter.send(
            channel, alert(2), key="incident-7:update", thread_of=first.message_id
        )
        # The update went into a thread under the first message (tests/adapters/
        # test_discord_threads.py covers where threads cannot be had).
        assert h.fake.channel_messages[first.message_id] == [reply.message_id]
        assert h.fake.channel_messages[channel] == [first.message_id]

        await seed_user_reports(h.store)
        verdict = await h.router.dispatch(Invocation("isitdown", {"service": "twitter"}))
        await h.adapter.edit(first, verdict)
        edited = h.fake.messages[first.message_id]
        assert edited["embeds"][0]["title"].startswith("User reports")
        assert edited["files"][0][0] == "chart.png"
        assert custom_ids(edited)[0] == "ob:report:twitter"
        assert reply.message_id != first.message_id

        # A verdict sent to a channel carries its chart too (a multipart upload).
        other = await h.adapter.send(p.snowflake(), verdict, key="verdict", lang="fr")
        posted_verdict = h.fake.messages[other.message_id]
        assert posted_verdict["files"][0][0] == "chart.png"
        assert posted_verdict["embeds"][0]["image"]["url"] == "attachment://chart.png"
        assert custom_ids(posted_verdict)[1] == "ob:worksforme:twitter"
        labels = [c["label"] for row in posted_verdict["components"] for c in row["components"]]
        assert labels[0] == "J'ai un problème"


async def test_a_reply_too_big_for_one_message_is_cut_not_refused(tmp_path: Path) -> None:
    lines = tuple(Message("help.line", usage=f"/c{i}", description="d" * 90) for i in range(400))
    huge = Reply(
        ReplyKind.INFO, title=Message("help.title"), text=Message("help.intro"), lines=lines
    )
    async with running(tmp_path) as h:
        sent = await h.adapter.send(p.snowflake(), huge, key="huge")
        (embed,) = h.fake.messages[sent.message_id]["embeds"]
        assert embed["description"].endswith("more")
        # The fake refuses what Discord refuses, so the cut above is what kept this message.
        client = h.adapter.client
        assert client is not None
        with pytest.raises(discord.HTTPException) as refused:
            await client.get_partial_messageable(int(p.snowflake())).send("x" * 2001)
        assert refused.value.code == 50035
        h.fake.invalid.clear()


async def test_a_429_is_retried_after_retry_after(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channel = p.snowflake()
        h.fake.fail_next("POST", f"/channels/{channel}/messages", retry_after=0.25)
        sent = await h.adapter.send(channel, alert(), key="k1")
        tries = [r for r in h.fake.requests if r.path.endswith(f"/channels/{channel}/messages")]
        assert [r.status for r in tries] == [429, 200]
        assert tries[1].at - tries[0].at >= 0.25
        assert h.fake.channel_messages[channel] == [sent.message_id]

        # A wait longer than the adapter holds a worker for: the outbox gets it to retry later.
        h.fake.fail_next("POST", f"/channels/{channel}/messages", retry_after=120.0)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as raised:
            await h.adapter.send(channel, alert(), key="k2")
        assert raised.value.retry_after == 120.0 and not raised.value.permanent
        assert time.monotonic() - started < 5


async def test_missing_access_and_unknown_channel_are_permanent(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.fake.forbidden_channels.add("111")
        h.fake.unknown_channels.add("222")
        for channel in ("111", "222", "not-a-number"):
            with pytest.raises(DeliveryError) as raised:
                await h.adapter.send(channel, alert(), key=f"k-{channel}")
            assert raised.value.permanent, channel
        with pytest.raises(DeliveryError):
            await h.adapter.edit(Sent("333", "444"), alert())  # an unknown message


async def test_route_buckets_from_headers_are_kept(tmp_path: Path) -> None:
    fake = FakeDiscord(channel_limit=2, channel_window=0.3)
    async with running(tmp_path, fake=fake) as h:
        channel = p.snowflake()
        for n in range(5):
            await h.adapter.send(channel, alert(n), key=f"bucket-{n}")
        assert len(h.fake.channel_messages[channel]) == 5
        assert h.fake.route_429s == 0  # discord.py waited on X-RateLimit-Remaining: 0


async def test_the_global_limit_holds_while_sending_to_500_channels(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        channels = [p.snowflake() for _ in range(500)]
        started = time.monotonic()
        sent = await asyncio.gather(
            *(h.adapter.send(c, alert(), key=f"fanout-{c}") for c in channels)
        )
        took = time.monotonic() - started
        assert {s.channel for s in sent} == set(channels)
        assert h.fake.global_429s == 0
        assert h.fake.max_requests_in_window() <= 50
    assert took >= 9.0  # 500 requests at no more than 50 per second


# ---- the gateway -------------------------------------------------------------------------------


async def test_a_dropped_gateway_resumes_and_replays_missed_events(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (session,) = h.fake.sessions.values()
        await h.fake.drop_gateway()
        # Typed while the bot is disconnected: Discord keeps it and replays it on RESUME.
        missed = await h.fake.slash("help")
        await h.fake.wait_for(lambda: h.fake.resumes)
        await h.fake.wait_for(lambda: missed.callbacks)
        (resume,) = h.fake.resumes
        assert resume["session_id"] == session.id
        assert resume["seq"] == 2  # READY and GUILD_CREATE were seen before the drop
        assert len(h.fake.identifies) == 1  # resumed, not a new session
        assert missed.callbacks[0]["data"]["embeds"][0]["title"].startswith("outagebot")


async def test_shards_use_an_autosharded_client(tmp_path: Path) -> None:
    # One shard: discord.py waits 5 s between IDENTIFYs of several shards, as Discord asks.
    async with running(tmp_path, shards=1) as h:
        assert isinstance(h.adapter.client, discord.AutoShardedClient)
        assert [i["shard"] for i in h.fake.identifies] == [[0, 1]]
        assert h.adapter.client.shard_count == 1
        assert h.adapter.client.is_ready()  # READY carried "shard": [0, 1]
        interaction = await h.fake.slash("help")
        await h.fake.wait_for(lambda: interaction.callbacks)


# ---- start-up errors and wiring ----------------------------------------------------------------


async def test_a_missing_token_names_the_variable(tmp_path: Path) -> None:
    from bot.adapters.discord.adapter import build
    from bot.adapters.registry import AdapterDeps
    from bot.config import parse_settings
    from bot.errors import StartupError

    settings = parse_settings({"discord": {"enabled": True, "token_env": "MY_DISCORD_TOKEN"}})

    async def dispatch(inv: Invocation) -> Reply:
        return Reply(ReplyKind.INFO, text=Message("cmd.help"))

    deps = AdapterDeps(settings, dispatch, lambda *a: [], SPECS, {}, None)
    with pytest.raises(StartupError, match="MY_DISCORD_TOKEN"):
        build(deps)


async def test_a_refused_token_stops_start_with_a_clear_error(tmp_path: Path) -> None:
    from bot.errors import StartupError

    with pytest.raises(StartupError, match="refused the token in DISCORD_TOKEN"):
        async with running(tmp_path, token="wrong-token"):
            pass


async def test_outagebot_run_connects_when_discord_is_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.app import App
    from bot.config import parse_settings

    fake = await FakeDiscord().start()
    monkeypatch.setenv("DISCORD_TOKEN", fake.token)
    settings = parse_settings(
        {
            "bot": {"database": str(tmp_path / "app.db")},
            "api": {"enabled": False},
            "probes": {"enabled": False},
            "discord": {
                "enabled": True,
                "api_base": fake.api_base,
                "gateway_url": fake.gateway_url,
            },
        }
    )
    async with restore_discord_urls():
        app = await App.create(settings, demo=False)
        try:
            (adapter,) = app.adapters
            assert isinstance(adapter, DiscordAdapter)
            await app.start()
            assert len(fake.identifies) == 1
            interaction = await fake.slash("services")
            await fake.wait_for(lambda: interaction.callbacks)
            assert "Services I know" in interaction.callbacks[0]["data"]["embeds"][0]["title"]
        finally:
            await app.close()
            await fake.close()


async def test_discord_sync_command_registers_the_guild_commands(tmp_path: Path) -> None:
    fake = await FakeDiscord().start()
    config = tmp_path / "config.toml"
    config.write_text(
        "[discord]\n"
        f'api_base = "{fake.api_base}"\n'
        f'gateway_url = "{fake.gateway_url}"\n'
        f'guild_ids = ["{fake.guild_id}"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "DISCORD_TOKEN": fake.token}
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "discord-sync",
            "--config",
            str(config),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        await fake.close()
    assert process.returncode == 0, err.decode()
    assert (
        out.decode().strip()
        == f"{len(fake.commands[fake.guild_id])} commands synced to guild {fake.guild_id}"
    )
    assert "global" not in fake.commands  # guild commands only: instant, and no duplicates
    assert {c["name"] for c in fake.commands[fake.guild_id]} >= {"isitdown", "report"}
    assert fake.identifies == []  # REST only, no gateway session

"""The console adapter as a conversation: real lines in, the real router and store behind it.

Nothing is mocked: each test builds a SQLite store in tmp_path, the router with every registered
command, and feeds the adapter text through a StringIO stdin; output goes to a rich Console
writing into a StringIO without colour.

Golden files: ``tests/golden/console_verdict_user_reports.txt`` pins ``render_plain`` of an
/isitdown verdict built from fixed evidence at a fixed time. After an intended change to the
rendering, regenerate it with::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/adapters/test_console.py

and review the diff of the golden file before committing it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from fakes.seeding import CATALOG, NOW, SPECS, Clock, seed_user_reports
from rich.console import Console

from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.config import parse_settings
from bot.context import CommandContext
from bot.invocation import Invocation
from bot.model import Category
from bot.reply import Reply, ReplyKind
from bot.resolve import Resolver
from bot.router import Router
from bot.store import Store
from bot.textrender import render_plain
from bot.verdicts import VerdictService
from commands import COMMANDS

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


@dataclass
class Bot:
    router: Router
    clock: Clock

    @property
    def store(self) -> Store:
        return self.router.ctx.store

    async def chat(self, *lines: str, chart_dir: Path | None = None) -> str:
        """Type ``lines`` into a fresh console session; return everything it printed."""
        out = Console(file=StringIO(), force_terminal=False, width=120)
        adapter = ConsoleAdapter(
            self.router.dispatch,
            SPECS,
            stdin=StringIO("".join(f"{line}\n" for line in lines)),
            console=out,
            chart_dir=chart_dir,
        )
        await adapter.start()
        output = out.file.getvalue()
        assert isinstance(output, str)
        return output


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    settings = parse_settings({"bot": {"default_region": "US"}, "reports": {"min_reports": 5}})
    store = await Store.open(tmp_path / "console.db", CATALOG)
    clock = Clock()
    ctx = CommandContext(
        settings=settings,
        catalog=CATALOG,
        store=store,
        resolver=Resolver(CATALOG),
        verdicts=VerdictService(store, settings),
        clock=clock,
    )
    yield Bot(Router(ctx, COMMANDS), clock)
    await store.close()


# ---- the contract ------------------------------------------------------------------------------


async def test_console_adapter_follows_the_adapter_contract(bot: Bot) -> None:
    adapter = ConsoleAdapter(bot.router.dispatch, SPECS, stdin=StringIO(""), console=Console())
    assert isinstance(adapter, Adapter)
    assert adapter.name == "console"


# ---- conversations ---------------------------------------------------------------------------


async def test_help_lists_every_command_usage(bot: Bot) -> None:
    output = await bot.chat("/help")
    assert "outagebot: is it down, or is it just me?" in output
    for spec in SPECS.values():
        # Usages hold "[problem]": shown as typed, not swallowed as rich markup.
        assert spec.usage() in output, spec.name


async def test_isitdown_known_service_prints_the_headline_and_table(bot: Bot) -> None:
    await seed_user_reports(bot.store)
    output = await bot.chat("/isitdown twitter")
    assert "User reports: Probes pass, but users report problems with Twitter / X" in output
    assert "mostly website (93%)" in output
    for heading in ("Region", "State", "Probes ok/failed", "Latency", "Reports (usual)"):
        assert heading in output
    assert "Works for me" in output
    region_lines = {line.split()[0]: line for line in output.splitlines() if line[:3].strip()}
    assert "215 (0)" in region_lines["US"] and "reports" in region_lines["US"]
    assert "55 (0)" in region_lines["JP"] and "JP Japan" in region_lines["JP"]
    assert "GB UK" in region_lines["GB"]
    assert "FR France" in region_lines["FR"] and "10/0" in region_lines["FR"]
    assert "Problems reported: website 93% · app 7%" in output
    assert "Official status: All Systems Operational (it disagrees with what we see)" in output
    assert "Next: /report twitter · /worksforme twitter · /isitdown twitter" in output


async def test_isitdown_by_alias_with_no_evidence_says_unknown(bot: Bot) -> None:
    output = await bot.chat("/isitdown gh")
    assert "Unknown: No recent evidence about GitHub" in output


async def test_isitdown_unknown_service_suggests_or_explains(bot: Bot) -> None:
    output = await bot.chat("/isitdown twiter", "/isitdown nosuch")
    assert "Did you mean Twitter / X (twitter)?" in output
    assert "I don't know a service called “nosuch”. See /services for the list." in output


async def test_second_report_in_the_window_is_kept_as_a_comment(bot: Bot) -> None:
    output = await bot.chat("/report twitter website GB", "/report twitter website GB")
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [
        "Thanks: your website report about Twitter / X from the UK counts toward the verdict.",
        "You already reported Twitter / X in the last 60 minutes; we kept this as a comment.",
    ]


async def test_quoted_note_and_named_parameters_reach_the_store(bot: Bot) -> None:
    output = await bot.chat('/report twitter problem=app region=jp "it will not load"')
    assert "your app report about Twitter / X from Japan counts" in output
    counts = await bot.store.table_counts()
    assert counts["reports"] == 1


async def test_unbalanced_quotes_print_an_error_with_the_usage(bot: Bot) -> None:
    output = await bot.chat('/report twitter "broken')
    assert "A quote is not closed." in output
    assert "Usage: /report <service> [problem] [region] [note]" in output
    assert (await bot.store.table_counts())["reports"] == 0


async def test_too_many_words_print_an_error_with_the_usage(bot: Bot) -> None:
    output = await bot.chat("/isitdown twitter github")
    assert "Too many words. Usage: /isitdown <service>" in output


async def test_router_errors_are_shown(bot: Bot) -> None:
    output = await bot.chat("/isitdown", "/nosuchcommand now")
    assert "Missing service. Usage: /isitdown <service>" in output
    assert "I don't know /nosuchcommand. Try /help." in output


async def test_a_line_without_slash_gets_a_hint_and_blank_lines_nothing(bot: Bot) -> None:
    output = await bot.chat("", "   ", "is twitter down?")
    assert output == "Commands start with /, try /help\n"


async def test_quit_ends_the_session_before_later_lines(bot: Bot) -> None:
    output = await bot.chat("/services", "/QUIT", "/help")
    assert "Services I know (3)" in output
    assert "Steam (`steam`)" in output  # every line, not a "+n more"
    assert "outagebot: is it down" not in output


async def test_eof_ends_start_and_no_prompt_without_a_tty(bot: Bot) -> None:
    assert await bot.chat() == ""
    output = await bot.chat("/isitdown steam")
    assert "outagebot> " not in output


async def test_console_user_is_an_admin_on_the_console_platform(bot: Bot) -> None:
    seen: list[Invocation] = []

    async def record(inv: Invocation) -> Reply:
        seen.append(inv)
        return await bot.router.dispatch(inv)

    out = Console(file=StringIO(), force_terminal=False, width=120)
    adapter = ConsoleAdapter(
        record, SPECS, locale="en-GB", user="ops", stdin=StringIO("/report x\n"), console=out
    )
    await adapter.start()
    assert seen == [
        Invocation(
            "report",
            {"service": "x"},
            platform="console",
            tenant="local",
            channel="console",
            user="ops",
            locale="en-GB",
            is_admin=True,
        )
    ]
    assert "from the UK counts toward the verdict" in out.file.getvalue()


async def test_chart_is_saved_as_png_beside_the_verdict(bot: Bot, tmp_path: Path) -> None:
    await seed_user_reports(bot.store)
    charts = tmp_path / "charts"
    output = await bot.chat("/isitdown x", chart_dir=charts)
    png = charts / "twitter.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert f"Chart saved to {png}" in output.replace("\n", "")


async def test_stop_ends_start_while_it_waits_for_input(bot: Bot) -> None:
    answered = asyncio.Event()

    async def dispatch(inv: Invocation) -> Reply:
        reply = await bot.router.dispatch(inv)
        answered.set()
        return reply

    read_fd, write_fd = os.pipe()
    with open(read_fd, encoding="utf-8") as stdin, open(write_fd, "w", encoding="utf-8") as feed:
        out = Console(file=StringIO(), force_terminal=False, width=120)
        adapter = ConsoleAdapter(dispatch, SPECS, stdin=stdin, console=out)
        feed.write("/services\n")
        feed.flush()
        running = asyncio.create_task(adapter.start())
        await answered.wait()  # start() is past its first line and will wait on an empty pipe
        await adapter.stop()
        await asyncio.wait_for(running, timeout=5)
        # Release the abandoned reader thread before its file is closed under it.
        feed.write("\n")
        feed.flush()
        for thread in threading.enumerate():
            if thread.name == "console-stdin":
                thread.join(timeout=5)
    assert running.result() is None
    assert "Services I know (3)" in out.file.getvalue()


# ---- golden ------------------------------------------------------------------------------------


async def test_golden_user_reports_verdict(bot: Bot) -> None:
    await seed_user_reports(bot.store)
    reply = await bot.router.dispatch(Invocation("isitdown", {"service": "twitter"}))
    assert reply.kind is ReplyKind.VERDICT
    assert reply.verdict is not None and reply.verdict.category is Category.USER_REPORTS
    assert reply.verdict.at == NOW + timedelta(seconds=1)
    check_golden("console_verdict_user_reports.txt", render_plain(reply) + "\n")


def check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text(encoding="utf-8")

"""The commands through the real router and a real store, as a chat user would use them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import parse_settings
from bot.context import CommandContext
from bot.i18n import render
from bot.invocation import Invocation
from bot.model import Catalog, Category, Service, Target, to_epoch
from bot.reply import Reply, ReplyKind
from bot.resolve import Resolver
from bot.router import Router
from bot.spec import CommandSpec
from bot.store import ImportBatch, ProbeRow, ReportRow, StatusRow, Store
from bot.verdicts import VerdictService
from commands import COMMANDS

NOW = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
CATALOG = Catalog(
    (
        Service(
            "twitter",
            "Twitter / X",
            ("x",),
            (Target("web", "https://x.invalid/"), Target("api", "https://api.x.invalid/")),
        ),
        Service("github", "GitHub", ("gh",), (Target("web", "https://gh.invalid/"),)),
    )
)


class Clock:
    """A clock the test moves forward: each reading is one second later."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
async def router(tmp_path: Path):
    settings = parse_settings({"bot": {"default_region": "FR"}, "reports": {"min_reports": 5}})
    store = await Store.open(tmp_path / "c.db", CATALOG)
    ctx = CommandContext(
        settings=settings,
        catalog=CATALOG,
        store=store,
        resolver=Resolver(CATALOG),
        verdicts=VerdictService(store, settings),
        clock=Clock(),
    )
    yield Router(ctx, COMMANDS)
    await store.close()


def say(
    router: Router,
    command: str,
    *,
    locale: str | None = None,
    tenant: str = "g1",
    user: str = "u1",
    **args: str,
):
    return router.dispatch(
        Invocation(
            command, args, platform="discord", tenant=tenant, channel="c1", user=user, locale=locale
        )
    )


def text_of(reply: Reply) -> str:
    assert reply.text is not None
    return render(reply.text)


async def counts(router: Router) -> dict[str, int]:
    return await router.ctx.store.table_counts()


async def seed_founding_example(store: Store) -> None:
    sid = store.service_id("twitter")
    assert sid is not None
    t0 = to_epoch(NOW)
    batch = ImportBatch()
    for region, n in (("US", 300), ("JP", 80), ("GB", 75)):
        batch.reports += [
            ReportRow(sid, t0 - i, region, "website", "import", "", f"{region}{i}")
            for i in range(n)
        ]
    batch.probes += [
        ProbeRow(sid, tg, region, (t0 - k * 30) * 1000, True, 200, 90.0, None)
        for region in ("US", "JP", "GB", "FR")
        for tg in ("web", "api")
        for k in range(5)
    ]
    batch.status.append(StatusRow(sid, t0 - 300, "none", "All Systems Operational"))
    await store.import_batch(batch, 3600)


async def test_isitdown_answers_with_verdict_chart_and_buttons(router: Router) -> None:
    await seed_founding_example(router.ctx.store)
    reply = await say(router, "isitdown", service="X")
    assert reply.kind is ReplyKind.VERDICT and not reply.ephemeral
    assert reply.verdict is not None and reply.verdict.category is Category.USER_REPORTS
    assert reply.chart is not None and len(reply.chart.buckets) == 96
    assert sum(reply.chart.reports) == 455  # every counted report, in the last two buckets
    assert reply.chart.reports[:-2] == (0,) * 94
    assert render(reply.verdict.headline).startswith("Probes pass, but users report problems")
    assert [(b.action, b.value) for b in reply.buttons] == [
        ("report", "twitter"),
        ("worksforme", "twitter"),
        ("isitdown", "twitter"),
        ("subscribe", "twitter"),
    ]


async def test_buttons_dispatch_the_same_invocation_as_typing(router: Router) -> None:
    await seed_founding_example(router.ctx.store)
    verdict_reply = await say(router, "isitdown", service="twitter")
    button = verdict_reply.buttons[0]
    clicked = await say(router, button.action, service=button.value)
    assert "counts toward the verdict" in text_of(clicked)


async def test_unknown_service_suggests(router: Router) -> None:
    reply = await say(router, "isitdown", service="twiter")
    assert reply.kind is ReplyKind.ERROR and reply.ephemeral
    assert "Did you mean Twitter / X (twitter)" in text_of(reply)
    nothing = await say(router, "isitdown", service="qqqqqq")
    assert "See /services" in text_of(nothing)


async def test_url_outside_catalog_is_explained(router: Router) -> None:
    reply = await say(router, "isitdown", service="https://example.org/")
    assert reply.kind is ReplyKind.ERROR and "not in the catalog" in text_of(reply)


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("isitdown", {}, "Missing service. Usage: /isitdown <service>"),
        ("isitdown", {"service": "   "}, "Missing service"),
        ("isitdown", {"service": "\u200b\u200b"}, "Missing service"),
        ("isitdown", {"service": "x" * 500}, "too long (at most 200"),
        ("isitdown", {"service": "twit\x00ter"}, "control characters"),
        ("report", {"service": "twitter", "problem": "explosions"}, "not a problem type"),
        ("report", {"service": "twitter", "region": "ZZ"}, "not a country code"),
        ("report", {"service": "twitter", "note": "n" * 201}, "too long (at most 200"),
        ("report", {"problem": "website"}, "Missing service. Usage: /report <service> [problem]"),
        ("worksforme", {"service": "nope"}, "don't know a service"),
        ("nosuchcommand", {}, "I don't know /nosuchcommand"),
    ],
)
async def test_bad_input_is_explained_and_changes_nothing(
    router: Router, command: str, args: dict[str, str], expected: str
) -> None:
    before = await counts(router)
    reply = await say(router, command, **args)
    assert reply.kind is ReplyKind.ERROR and reply.ephemeral
    assert expected in text_of(reply)
    assert await counts(router) == before


async def test_report_region_defaults(router: Router) -> None:
    store = router.ctx.store
    await say(router, "report", service="twitter", locale="en-GB", user="a")
    await say(router, "report", service="twitter", locale="ja", user="b")
    await store.set_tenant_setting("discord", "g1", "default_region", "DE")
    await say(router, "report", service="twitter", user="c")
    await say(router, "report", service="twitter", tenant="g2", user="d")
    await say(router, "report", service="twitter", region="uk", problem="mobile", user="e")
    conn = sqlite3.connect(store.path)
    rows = conn.execute("SELECT user, region, problem FROM reports ORDER BY user").fetchall()
    assert rows == [
        ("a", "GB", "other"),
        ("b", "JP", "other"),
        ("c", "DE", "other"),
        ("d", "FR", "other"),
        ("e", "GB", "app"),
    ]


async def test_report_twice_is_a_comment_and_note_is_cleaned(router: Router) -> None:
    first = await say(router, "report", service="twitter", problem="website")
    assert "counts toward the verdict" in text_of(first) and first.ephemeral
    again = await say(
        router, "report", service="twitter", problem="app", note="still\nbroken \u202e<@everyone>"
    )
    assert "kept this as a comment" in text_of(again)
    conn = sqlite3.connect(router.ctx.store.path)
    notes = [n for (n,) in conn.execute("SELECT note FROM reports ORDER BY id")]
    assert notes == ["", "still broken <@everyone>"]  # stored as text; adapters never ping


async def test_works_for_me(router: Router) -> None:
    assert "works for you in France" in text_of(await say(router, "worksforme", service="gh"))
    assert "already said" in text_of(await say(router, "worksforme", service="github"))


async def test_services_and_help(router: Router) -> None:
    services = await say(router, "services")
    assert [render(line) for line in services.lines] == [
        "Twitter / X (`twitter`), also: x",
        "GitHub (`github`), also: gh",
    ]
    help_reply = await say(router, "help")
    usages = "\n".join(render(line) for line in help_reply.lines)
    for module in COMMANDS.values():
        # Members are not shown admin-only commands.
        assert (module.SPEC.usage() in usages) is (not module.SPEC.admin)
    admin_help = await router.dispatch(Invocation("help", {}, is_admin=True))
    assert "/agents" in "\n".join(render(line) for line in admin_help.lines)


async def test_admin_commands_are_checked_at_run_time(router: Router) -> None:
    class AdminOnly:
        SPEC = CommandSpec(name="danger", description="cmd.help", admin=True)

        @staticmethod
        async def run(ctx, inv, args):
            return Reply(ReplyKind.INFO)

    router.commands["danger"] = AdminOnly  # type: ignore[assignment]
    refused = await router.dispatch(Invocation("danger", {}, is_admin=False))
    assert refused.kind is ReplyKind.ERROR and "Only server admins" in text_of(refused)
    allowed = await router.dispatch(Invocation("danger", {}, is_admin=True))
    assert allowed.kind is ReplyKind.INFO


async def test_storage_failure_is_not_an_outage(router: Router) -> None:
    conn = sqlite3.connect(router.ctx.store.path)
    conn.execute("DROP TABLE works_for_me")
    conn.commit()
    reply = await say(router, "worksforme", service="twitter")
    assert reply.kind is ReplyKind.ERROR
    assert "could not reach my database" in text_of(reply)

"""/service add|edit|remove and /region default: per-server catalogs, checked and scoped."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import parse_settings
from bot.context import CommandContext
from bot.i18n import render
from bot.invocation import Invocation
from bot.model import Catalog, Service, Target
from bot.reply import Reply, ReplyKind
from bot.resolve import Resolver
from bot.router import Router
from bot.ssrf import Policy
from bot.store import Store
from bot.tenants import TenantCatalogs
from bot.verdicts import VerdictService
from commands import COMMANDS

CATALOG = Catalog(
    (Service("twitter", "Twitter / X", ("x",), (Target("web", "https://x.invalid/"),)),)
)


async def _router(path: Path, *, limit: int = 3, changes: list[int] | None = None) -> Router:
    settings = parse_settings({"bot": {"default_region": "FR"}})
    store = await Store.open(path, CATALOG)
    tenants = TenantCatalogs(
        CATALOG,
        store,
        policy=Policy.from_config(),
        limit=limit,
        on_change=(lambda: changes.append(1)) if changes is not None else None,
    )
    await tenants.load()
    ctx = CommandContext(
        settings=settings,
        catalog=CATALOG,
        store=store,
        resolver=Resolver(CATALOG),
        verdicts=VerdictService(store, settings),
        tenants=tenants,
    )
    return Router(ctx, COMMANDS)


@pytest.fixture
async def router(tmp_path: Path):
    r = await _router(tmp_path / "t.db")
    yield r
    await r.ctx.store.close()


def say(router: Router, command: str, *, tenant: str = "g1", admin: bool = True, **args: str):
    return router.dispatch(
        Invocation(
            command, args, platform="discord", tenant=tenant, channel="c", user="u", is_admin=admin
        )
    )


def text(reply: Reply) -> str:
    assert reply.text is not None
    return render(reply.text)


async def test_an_admin_adds_a_service_only_their_server_sees(router: Router) -> None:
    added = await say(
        router, "service add", key="Intranet", url="intranet.example.com", name="Our Intranet"
    )
    assert added.kind is ReplyKind.INFO and not added.ephemeral
    assert "Our Intranet" in text(added) and "https://intranet.example.com" in text(added)
    mine = await say(router, "isitdown", service="intranet")
    assert mine.kind is ReplyKind.VERDICT and mine.verdict is not None
    assert mine.verdict.name == "Our Intranet"
    assert (await say(router, "report", service="our intranet")).kind is ReplyKind.INFO
    other = await say(router, "isitdown", tenant="g2", service="intranet")
    assert other.kind is ReplyKind.ERROR  # another server never sees it
    listed = await say(router, "services")
    assert any(
        "Our Intranet" in render(line) and "intranet" in render(line) for line in listed.lines
    )
    assert not any(
        "Our Intranet" in render(m) for m in (await say(router, "services", tenant="g2")).lines
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"key": "bad key!", "url": "https://ok.example/"}, "can't be a key"),
        ({"key": "lan", "url": "http://127.0.0.1/"}, "I can't check"),
        ({"key": "lan", "url": "http://[::ffff:10.0.0.1]/"}, "I can't check"),
        ({"key": "lan", "url": "ftp://files.example/"}, "I can't check"),
        ({"key": "lan", "url": "https://ok.example:6379/"}, "I can't check"),
        ({"key": "tw", "url": "https://ok.example/", "name": "Twitter"}, "already names"),
        ({"key": "x", "url": "https://ok.example/"}, "already names"),
    ],
)
async def test_bad_additions_are_explained_and_change_nothing(
    router: Router, args: dict[str, str], expected: str
) -> None:
    before = await router.ctx.store.table_counts()
    reply = await say(router, "service add", **args)
    assert reply.kind is ReplyKind.ERROR and reply.ephemeral
    assert expected in text(reply)
    assert await router.ctx.store.table_counts() == before


async def test_members_and_direct_messages_cannot_change_services(router: Router) -> None:
    refused = await say(router, "service add", admin=False, key="a", url="https://a.example/")
    assert refused.kind is ReplyKind.ERROR and "admins" in text(refused)
    dm = await say(router, "service add", tenant="", key="a", url="https://a.example/")
    assert dm.kind is ReplyKind.ERROR and "direct message" in text(dm)
    assert (await say(router, "region default", tenant="", region="JP")).kind is ReplyKind.ERROR


async def test_limit_edit_and_remove(tmp_path: Path) -> None:
    changes: list[int] = []
    router = await _router(tmp_path / "l.db", limit=2, changes=changes)
    try:
        for key in ("a", "b"):
            reply = await say(router, "service add", key=key, url=f"https://{key}.example/")
            assert reply.kind is ReplyKind.INFO, text(reply)
        full = await say(router, "service add", key="c", url="https://c.example/")
        assert full.kind is ReplyKind.ERROR and "2 services" in text(full)
        edited = await say(router, "service edit", key="a", name="Alpha", aliases="first, uno")
        assert edited.kind is ReplyKind.INFO, text(edited)
        found = await say(router, "isitdown", service="uno")
        assert found.verdict is not None and found.verdict.name == "Alpha"
        await say(router, "report", service="alpha")
        before = await router.ctx.store.table_counts()
        removed = await say(router, "service remove", key="a")
        assert removed.kind is ReplyKind.INFO and "Alpha" in text(removed)
        after = await router.ctx.store.table_counts()
        assert after["reports"] == before["reports"] - 1  # its history went with it
        gone = await say(router, "isitdown", service="alpha")
        assert gone.kind is ReplyKind.ERROR
        missing = await say(router, "service remove", key="a")
        assert missing.kind is ReplyKind.ERROR and "no service" in text(missing)
        assert len(changes) == 4  # add, add, edit, remove: probe tasks re-derived each time
    finally:
        await router.ctx.store.close()


async def test_services_survive_a_restart(tmp_path: Path) -> None:
    router = await _router(tmp_path / "r.db")
    await say(router, "service add", key="wiki", url="https://wiki.example/", name="Wiki")
    await router.ctx.store.close()
    again = await _router(tmp_path / "r.db")
    try:
        reply = await say(again, "isitdown", service="wiki")
        assert reply.verdict is not None and reply.verdict.name == "Wiki"
        assert again.ctx.tenants is not None
        (svc,) = again.ctx.tenants.all_services()
        assert svc.key == "discord:g1/wiki"
    finally:
        await again.ctx.store.close()


async def test_region_default_applies_to_reports_without_a_region(router: Router) -> None:
    set_ = await say(router, "region default", region="uk")
    assert set_.kind is ReplyKind.INFO and "(GB)" in text(set_)
    reply = await say(router, "report", service="twitter")
    assert "the UK" in text(reply)
    elsewhere = await say(router, "report", tenant="g2", service="twitter")
    assert "France" in text(elsewhere)  # the bot's default, [bot] default_region = "FR"

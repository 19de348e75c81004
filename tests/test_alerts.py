"""Subscriptions, the outbox and its dispatcher, from an incident to the message in a channel.

The channel is the real console adapter writing to a buffer; a platform that fails is a small
Sender standing in for the far side of the wire (a 429 with Retry-After, a refused channel).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from bot.adapters.base import DeliveryError, Sent
from bot.adapters.console import ConsoleAdapter
from bot.config import parse_settings
from bot.context import CommandContext
from bot.i18n import render
from bot.incidents import IncidentPolicy, IncidentTracker
from bot.invocation import Invocation
from bot.model import Catalog, Service, Target, to_epoch
from bot.outbox import AlertDispatcher, DeliveryPolicy
from bot.reply import Reply, ReplyKind
from bot.resolve import Resolver
from bot.router import Router
from bot.ssrf import Policy
from bot.store import ImportBatch, ProbeRow, ReportRow, Store
from bot.tenants import TenantCatalogs
from bot.verdicts import VerdictService
from commands import COMMANDS

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
ACME = Service("acme", "Acme", (), (Target("web", "https://acme.invalid/"),), tags=("cloud",))
BETA = Service("beta", "Beta", (), (Target("web", "https://beta.invalid/"),))
CATALOG = Catalog((ACME, BETA))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()


class World:
    def __init__(self, store: Store, clock: Clock, tenants: TenantCatalogs) -> None:
        settings = parse_settings({"reports": {"min_reports": 5}})
        self.store, self.clock, self.tenants = store, clock, tenants
        self.out = StringIO()
        self.console = ConsoleAdapter(
            self.dispatch,
            {},
            stdin=StringIO(""),
            console=Console(file=self.out, force_terminal=False, width=200),
        )
        self.router = Router(
            CommandContext(
                settings=settings,
                catalog=CATALOG,
                store=store,
                resolver=Resolver(CATALOG),
                verdicts=VerdictService(store, settings),
                clock=clock,
                tenants=tenants,
            ),
            COMMANDS,
        )
        self.tracker = IncidentTracker(
            store,
            self.router.ctx.verdicts,
            lambda: (*CATALOG.services, *tenants.all_services()),
            policy=IncidentPolicy(open_after=1, resolve_after=timedelta(minutes=10)),
            clock=clock,
        )
        self.dispatcher = AlertDispatcher(store, {"console": self.console}, clock=clock.epoch)

    async def dispatch(self, inv: Invocation) -> Reply:
        return await self.router.dispatch(inv)

    def say(
        self,
        command: str,
        *,
        platform: str = "console",
        tenant: str = "local",
        where: str = "ops",
        admin: bool = True,
        **args: str,
    ):  # type: ignore[no-untyped-def]
        """Run ``command`` as user u1 in channel ``where``; ``args`` are its parameters."""
        return self.router.dispatch(
            Invocation(command, args, platform, tenant, where, "u1", "en-GB", admin)
        )

    async def probes(self, ok: bool, service: str = "acme") -> None:
        sid = self.store.service_id(service)
        assert sid is not None
        t = to_epoch(self.clock.now)
        batch = ImportBatch()
        batch.probes = [
            ProbeRow(sid, "web", r, (t - k * 30) * 1000, ok, 200 if ok else 503, 80.0, None)
            for r in ("US", "JP", "GB")
            for k in range(3)
        ]
        await self.store.import_batch(batch, 3600)

    def outbox(self) -> list[tuple[str, str, str, str | None]]:
        conn = sqlite3.connect(self.store_path)
        try:
            return conn.execute(
                "SELECT channel, kind, state, message_id FROM outbox ORDER BY id"
            ).fetchall()
        finally:
            conn.close()

    store_path: Path


@pytest.fixture
async def world(tmp_path: Path):
    store = await Store.open(tmp_path / "a.db", CATALOG)
    tenants = TenantCatalogs(CATALOG, store, policy=Policy.from_config(), limit=5)
    await tenants.load()
    w = World(store, Clock(), tenants)
    w.store_path = tmp_path / "a.db"
    yield w
    await store.close()


def text_of(reply: Reply) -> str:
    assert reply.text is not None
    return render(reply.text)


async def test_one_message_per_incident_edited_then_resolved(world: World) -> None:
    reply = await world.say("subscribe", subject="acme", level="down")
    assert reply.kind is ReplyKind.INFO and "Acme" in text_of(reply)
    await world.probes(ok=False)
    (_opened,) = await world.tracker.run_pass()
    assert await world.dispatcher.drain_once("console") == 1
    assert "🔴 Acme: Down" in world.out.getvalue()
    assert world.outbox() == [("ops", "open", "sent", "console-1")]
    assert await world.dispatcher.drain_once("console") == 0  # nothing twice

    world.clock.now += timedelta(minutes=1)
    await world.probes(ok=True)
    assert await world.tracker.run_pass() == []  # quiet, not resolved yet
    world.clock.now += timedelta(minutes=11)
    await world.probes(ok=True)
    (resolved,) = await world.tracker.run_pass()
    assert resolved.kind == "resolve"
    await world.dispatcher.drain_once("console")
    printed = world.out.getvalue()
    assert "[ops console-1 edited]" in printed  # the first message, edited in place
    assert "[ops ↳ console-1]" not in printed  # no updates, so no thread to tell
    assert "resolved after 12 min" in printed
    assert [row[1] for row in world.outbox()] == ["open", "resolve"]


async def test_levels_tags_and_all(world: World) -> None:
    await world.say("subscribe", subject="cloud", level="regional", where="tags")
    await world.say("subscribe", subject="all", level="down", where="everything")
    await world.say("subscribe", subject="beta", level="down", where="beta-only")
    sid = world.store.service_id("acme")
    assert sid is not None
    t = to_epoch(world.clock.now)
    await world.probes(ok=True)
    batch = ImportBatch()
    batch.reports = [
        ReportRow(sid, t - i, "US", "website", "import", "", f"u{i}") for i in range(80)
    ]
    await world.store.import_batch(batch, 3600)
    (change,) = await world.tracker.run_pass()
    assert change.verdict.category.value == "user_reports"
    # user_reports reaches neither "regional" nor "down" subscriptions.
    assert world.outbox() == []
    world.clock.now += timedelta(minutes=2)
    await world.probes(ok=False)
    (update,) = await world.tracker.run_pass()
    assert update.kind == "update" and update.verdict.category.value == "down"
    channels = sorted(row[0] for row in world.outbox())
    assert channels == ["everything", "tags"]  # the tag and "all"; not another service's


async def test_a_servers_own_service_alerts_only_that_server(world: World) -> None:
    added = await world.say(
        "service add", platform="discord", tenant="g1", key="wiki", url="https://wiki.example/"
    )
    assert added.kind is ReplyKind.INFO, text_of(added)
    await world.say("subscribe", platform="discord", tenant="g1", where="1", subject="all")
    await world.say("subscribe", platform="discord", tenant="g2", where="2", subject="all")
    await world.probes(ok=False, service="discord:g1/wiki")
    changes = await world.tracker.run_pass()
    assert [c.service.key for c in changes] == ["discord:g1/wiki"]
    assert [row[0] for row in world.outbox()] == ["1"]


class FlakyPlatform:
    """The far side of a platform: a 429 for the first message to "live", "gone" never exists."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        self.calls.append(channel)
        if channel == "gone":
            raise DeliveryError("404 Unknown Channel", permanent=True)
        if self.calls.count(channel) == 1:
            raise DeliveryError("429 Too Many Requests", retry_after=30)
        return Sent(channel, f"m{len(self.calls)}")

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        return None


async def test_retry_after_is_honoured_and_refusals_become_dead_letters(world: World) -> None:
    flaky = FlakyPlatform()
    dispatcher = AlertDispatcher(
        world.store, {"discord": flaky}, policy=DeliveryPolicy(), clock=world.clock.epoch
    )
    for channel in ("live", "gone"):
        r = await world.say(
            "subscribe", platform="discord", tenant="g1", where=channel, subject="acme"
        )
        assert r.kind is ReplyKind.INFO
    await world.probes(ok=False)
    await world.tracker.run_pass()
    assert await dispatcher.drain_once("discord") == 2
    assert {row[0]: row[2] for row in world.outbox()} == {"live": "pending", "gone": "dead"}
    world.clock.now += timedelta(seconds=29)
    assert await dispatcher.drain_once("discord") == 0  # Retry-After is not over yet
    world.clock.now += timedelta(seconds=2)
    assert await dispatcher.drain_once("discord") == 1
    assert {row[0]: row[2] for row in world.outbox()} == {"live": "sent", "gone": "dead"}
    assert flaky.calls.count("gone") == 1  # a refusal is not retried
    listed = await world.say("subscriptions", platform="discord", tenant="g1", where="live")
    lines = [render(m) for m in listed.lines]
    assert any("could not be delivered" in line for line in lines)
    assert any("404 Unknown Channel" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"subject": "acme", "level": "loud"}, "not a level"),
        ({"subject": "nosuch"}, "don't know a service or tag"),
        ({"subject": "acme", "channel": "#bad channel!"}, "not a channel"),
    ],
)
async def test_bad_subscriptions_are_explained_and_change_nothing(
    world: World, args: dict[str, str], expected: str
) -> None:
    reply = await world.say("subscribe", **args)
    assert reply.kind is ReplyKind.ERROR and expected in text_of(reply)
    assert await world.store.subscriptions("console", "local") == []


async def test_no_one_points_alerts_at_another_channel(world: World) -> None:
    """A channel id alone does not say which server it belongs to: only "here" is accepted."""
    dm = await world.say(
        "subscribe", platform="discord", tenant="", where="dm1", subject="all", channel="<#999>"
    )
    admin = await world.say(
        "subscribe", platform="discord", tenant="g1", where="1", subject="all", channel="999"
    )
    for reply in (dm, admin):
        assert reply.kind is ReplyKind.ERROR and "in the channel you want" in text_of(reply)
    here = await world.say(
        "subscribe", platform="discord", tenant="g1", where="1", subject="all", channel="<#1>"
    )
    assert here.kind is ReplyKind.INFO
    assert [s.channel for s in await world.store.subscriptions("discord", "g1")] == ["1"]
    assert await world.store.subscriptions("discord", "") == []


async def test_members_subscribe_only_their_direct_messages(world: World) -> None:
    member = await world.say(
        "subscribe", platform="discord", tenant="g1", admin=False, subject="acme"
    )
    assert member.kind is ReplyKind.ERROR and "admins" in text_of(member)
    dm = await world.say(
        "subscribe", platform="discord", tenant="", where="dm1", admin=False, subject="acme"
    )
    assert dm.kind is ReplyKind.INFO
    gone = await world.say(
        "unsubscribe", platform="discord", tenant="", where="dm1", admin=False, subject="acme"
    )
    assert gone.kind is ReplyKind.INFO
    again = await world.say(
        "unsubscribe", platform="discord", tenant="", where="dm1", admin=False, subject="acme"
    )
    assert again.kind is ReplyKind.ERROR and "not subscribed" in text_of(again)


async def test_maintenance_records_but_does_not_alert(world: World) -> None:
    scope = {"platform": "discord", "tenant": "g1"}
    added = await world.say("service add", **scope, key="wiki", url="https://wiki.example/")
    assert added.kind is ReplyKind.INFO
    await world.say("subscribe", **scope, where="1", subject="all", level="user_reports")
    shared = await world.say("maintenance", **scope, service="acme", duration="2h")
    assert shared.kind is ReplyKind.ERROR and "only the bot's operator" in text_of(shared)
    for bad in ("soon", "0m", "8d"):
        reply = await world.say("maintenance", **scope, service="wiki", duration=bad)
        assert reply.kind is ReplyKind.ERROR and "not a duration" in text_of(reply)
    declared = await world.say("maintenance", **scope, service="wiki", duration="2h", note="db")
    assert declared.kind is ReplyKind.INFO and "120 min" in text_of(declared)
    await world.probes(ok=False, service="discord:g1/wiki")
    (change,) = await world.tracker.run_pass()
    assert change.suppressed and change.verdict.category.value == "maintenance"
    assert world.outbox() == []  # recorded, not alerted
    ended = await world.say("maintenance", **scope, service="wiki", duration="end")
    assert ended.kind is ReplyKind.INFO and "ended" in text_of(ended)
    again = await world.say("maintenance", **scope, service="wiki", duration="end")
    assert "no maintenance window" in text_of(again)


async def test_incidents_lists_what_is_down_and_most_reported_for_this_server(world: World) -> None:
    await world.say(
        "service add", platform="discord", tenant="g1", key="wiki", url="https://w.example/"
    )
    await world.probes(ok=False)
    await world.probes(ok=False, service="discord:g1/wiki")
    sid = world.store.service_id("beta")
    assert sid is not None
    t = to_epoch(world.clock.now)
    batch = ImportBatch()
    batch.reports = [ReportRow(sid, t - i, "US", "app", "import", "", f"r{i}") for i in range(7)]
    await world.store.import_batch(batch, 3600)
    assert len(await world.tracker.run_pass()) >= 2
    mine = await world.say("incidents", platform="discord", tenant="g1")
    other = await world.say("incidents", platform="discord", tenant="g2")
    mine_text = [render(m) for m in mine.lines]
    other_text = [render(m) for m in other.lines]
    assert any(line.startswith("• Acme: Down for") for line in mine_text)
    assert any("wiki" in line for line in mine_text)  # this server's own service
    assert not any("wiki" in line for line in other_text)  # never another server's
    assert any(line.startswith("• Acme: Down") for line in other_text)
    assert "Most reported in the last hour: Beta 7" in mine_text


class DownPlatform:
    """The far side of a platform that is unreachable until ``up`` is set, then records sends."""

    def __init__(self) -> None:
        self.up = False
        self.attempts = 0
        self.sent: list[str] = []

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        self.attempts += 1
        if not self.up:
            raise DeliveryError("ClientConnectorError: connection refused")
        assert reply.title is not None
        self.sent.append(render(reply.title))
        return Sent(channel, f"m{len(self.sent)}")

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        if not self.up:
            raise DeliveryError("ClientConnectorError: connection refused")
        assert reply.title is not None
        self.sent.append(f"{sent.message_id} edited to {render(reply.title)}")


async def test_a_platform_down_for_minutes_delays_only_itself_then_catches_up_in_order(
    world: World,
) -> None:
    down = DownPlatform()
    dispatcher = AlertDispatcher(
        world.store, {"discord": down, "console": world.console}, clock=world.clock.epoch
    )
    await world.say("subscribe", subject="acme", level="down")  # the console channel
    await world.say("subscribe", platform="discord", tenant="g1", where="1", subject="acme")
    await world.probes(ok=False)
    await world.tracker.run_pass()  # opened
    assert await dispatcher.drain_once("console") == 1  # the other platform is not held up
    assert "🔴 Acme" in world.out.getvalue()
    for _ in range(6):  # minutes of refusals, each retried after its backoff
        await dispatcher.drain_once("discord")
        world.clock.now += timedelta(minutes=2)
    assert down.sent == [] and down.attempts >= 4
    await world.probes(ok=True)
    world.clock.now += timedelta(minutes=11)
    await world.probes(ok=True)
    await world.tracker.run_pass()  # quiet ...
    world.clock.now += timedelta(minutes=11)
    await world.probes(ok=True)
    assert [c.kind for c in await world.tracker.run_pass()] == ["resolve"]
    down.up = True
    world.clock.now += timedelta(minutes=6)  # past the longest backoff so far
    while await dispatcher.drain_once("discord"):
        pass
    # In order, once each: the opening message, then the resolution editing it.
    assert [t.split(":")[0] for t in down.sent] == ["🔴 Acme", "m1 edited to ✅ Acme"]
    rows = {(r[0], r[1]): r[2] for r in world.outbox()}
    assert rows[("1", "open")] == "sent" and rows[("1", "resolve")] == "sent"

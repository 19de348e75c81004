"""Fan-out: one incident to 1,000 Discord and 200 Slack channels through the local platforms.

Four processes, none sharing an event loop with another:

- this one (the orchestrator) writes the SQLite database through the Store: the subscriptions
  (every channel subscribed to "all" at level "down") and one opened incident, whose outbox rows
  are queued in the same transaction as in production; it writes the config and watches the
  outbox until every row is settled;
- the local Discord (tests/fakes/discord_fake.py) in a spawned process, enforcing Discord's limits:
  50 requests/s for the bot across routes (a 429 with ``global: true`` beyond it) and 5 messages
  per 5 s per channel (a route 429), both with Retry-After;
- the local Slack (tests/fakes/slack.py) in another, enforcing about one message per second per
  channel (bursts of 3) and 50 calls/s per Web API method for the workspace, 429 with Retry-After;
- the bot: the real ``outagebot run --no-console --no-demo`` with both adapters on (Slack in
  Socket Mode), ``[probes]``, ``[api]``, ``[incidents]`` and ``[digest]`` off: the outbox is all
  it does.

The floor is what the limits allow: N requests under a limit of L per sliding second take at
least ceil(N / L) - 1 seconds from the first to the last (L go at once, then L more each second).
The delivery time is measured on each platform's own clock, from the first request of the
fan-out reaching it to the last message accepted; the target (issue 6) is within 10% of the
floor, with zero global 429s and under 1% route 429s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Imported for code_version() (benchmarks/common.py): the bot under test is a subprocess.
import bot.app  # noqa: F401
from bot.alerts import alert_spec
from bot.i18n import Message
from bot.incidents import snapshot
from bot.model import Catalog, Category, Service, Target, to_epoch
from bot.store import IncidentWrite, Store
from bot.verdict import Verdict

from .common import (
    PROJECT_DIR,
    VENV_BIN,
    Section,
    Table,
    cpu_seconds,
    data_dir,
    median,
    progress,
    remove_database,
    wait_for_message,
)

TARGET_OVER_FLOOR = 0.10  # delivery time at most 10% over the floor
TARGET_ROUTE_429_SHARE = 0.01
DISCORD_LIMIT = 50  # requests per second, all routes (Discord's global limit)
SLACK_LIMIT = 50  # calls per second per Web API method and workspace
DISCORD_TOKEN_ENV = "OUTAGEBOT_BENCH_DISCORD_TOKEN"
SLACK_BOT_ENV = "OUTAGEBOT_BENCH_SLACK_BOT"
SLACK_APP_ENV = "OUTAGEBOT_BENCH_SLACK_APP"
DELIVERY_TIMEOUT = 300.0  # seconds for a whole fan-out; later counts as a failure
SERVICE = Service("acme", "Acme Cloud", (), (Target("web", "https://acme.invalid/"),))


@dataclass(frozen=True, slots=True)
class FanoutScenario:
    discord_channels: int
    slack_channels: int
    rounds: int


FULL = FanoutScenario(discord_channels=1000, slack_channels=200, rounds=3)
QUICK = FanoutScenario(discord_channels=150, slack_channels=60, rounds=1)


def floor_seconds(requests: int, per_second: int) -> float:
    """The shortest first-to-last span for ``requests`` under ``per_second`` per sliding second."""
    return float(max(0, math.ceil(requests / per_second) - 1))


# ---- the local platforms' processes ------------------------------------------------------------


def _fake_process(platform: str, conn: Connection) -> None:
    # The fakes import their siblings as ``fakes.*``, as the tests do (tests/ on sys.path).
    sys.path.insert(0, str(PROJECT_DIR / "tests"))
    asyncio.run(_fake_main(platform, conn))


async def _fake_main(platform: str, conn: Connection) -> None:
    if platform == "discord":
        from fakes.discord_fake import FakeDiscord

        fake: Any = await FakeDiscord(global_limit=DISCORD_LIMIT).start()
        conn.send(
            {
                "api_base": fake.api_base,
                "gateway_url": fake.gateway_url,
                "token": fake.token,
                "tenant": fake.guild_id,
            }
        )
    else:
        from fakes.slack import FakeSlack

        fake = await FakeSlack(global_limit=SLACK_LIMIT).start()
        conn.send(
            {
                "api_base": fake.api_base,
                "bot_token": fake.bot_token,
                "app_token": fake.app_token,
                "tenant": fake.team,
            }
        )
    try:
        channels: list[str] = await asyncio.to_thread(conn.recv)
        cpu = time.process_time()

        def arrived() -> int:
            return sum(1 for c in channels if fake.channel_messages.get(c))

        with contextlib.suppress(TimeoutError):
            await fake.wait_for(lambda: arrived() >= len(channels), DELIVERY_TIMEOUT)
        conn.send({"arrived": arrived()})
        # The orchestrator answers once the bot has recorded every row as settled, so a resend
        # (there should be none) would have reached us by then.
        await asyncio.to_thread(conn.recv)
        fake_cpu = time.process_time() - cpu
        conn.send(_results(platform, fake, channels, fake_cpu))
    finally:
        await fake.close()


def _results(platform: str, fake: Any, channels: list[str], fake_cpu: float) -> dict[str, Any]:
    """When the fan-out's first request and last accepted message arrived, and what was refused."""
    wanted = set(channels)
    if platform == "discord":
        posts = [
            (r.at, 200 <= r.status < 300)
            for r in fake.requests
            if r.method == "POST" and _discord_channel(r.path) in wanted
        ]
        max_window = fake.max_requests_in_window()
    else:
        accepted = {id(call) for c in channels for call in fake.channel_messages.get(c, [])}
        posts = [
            (c.at, id(c) in accepted)
            for c in fake.calls_to("chat.postMessage")
            if str(c.args.get("channel")) in wanted
        ]
        max_window = 0
    ok = [at for at, good in posts if good]
    return {
        "first": min((at for at, _ in posts), default=math.nan),
        "last": max(ok, default=math.nan),
        "requests": len(posts),
        "per_channel": [len(fake.channel_messages.get(c, [])) for c in channels],
        "global_429s": fake.global_429s,
        "route_429s": fake.route_429s,
        "max_window": max_window,
        "fake_cpu": fake_cpu,
    }


def _discord_channel(path: str) -> str:
    """The channel of ``/api/v10/channels/{id}/messages``, else ""."""
    parts = path.split("/")
    return parts[4] if len(parts) == 6 and parts[3] == "channels" and parts[5] == "messages" else ""


# ---- the database, the config and the bot --------------------------------------------------------


async def _seed(database: Path, tenants: dict[str, str], channels: dict[str, list[str]]) -> int:
    """Subscribe every channel, then open one incident: its outbox rows are the fan-out."""
    store = await Store.open(database, Catalog((SERVICE,)))
    try:
        for platform, listed in channels.items():
            for channel in listed:
                await store.subscribe(
                    platform,
                    tenants[platform],
                    channel,
                    "all",
                    "",
                    level="down",
                    lang="en",
                    user="bench",
                )
        at = datetime.now(UTC).replace(microsecond=0)
        headline = "Acme Cloud is down for everyone: probes fail in US, JP, GB and FR"
        verdict = Verdict("acme", SERVICE.name, at, Category.DOWN, Message("raw", text=headline))
        alert = alert_spec("open", SERVICE, verdict, category="down", opened_at=at, at=at)
        await store.write_incidents(
            [IncidentWrite("open", "acme", "down", to_epoch(at), snapshot(verdict), None, alert)]
        )
    finally:
        await store.close()
    return _unsettled(database)


def _unsettled(database: Path) -> int:
    conn = sqlite3.connect(database)
    try:
        return int(
            conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        )
    finally:
        conn.close()


def _config(database: Path, discord: dict[str, Any], slack: dict[str, Any]) -> str:
    lines = [
        "[bot]",
        f"database = {json.dumps(str(database))}",
        "[api]",
        "enabled = false",
        "[probes]",
        "enabled = false",
        "[incidents]",
        "enabled = false",
        "[digest]",
        "enabled = false",
        "[discord]",
        "enabled = true",
        f"token_env = {json.dumps(DISCORD_TOKEN_ENV)}",
        f"guild_ids = [{json.dumps(discord['tenant'])}]",
        f"api_base = {json.dumps(discord['api_base'])}",
        f"gateway_url = {json.dumps(discord['gateway_url'])}",
        "[slack]",
        "enabled = true",
        'mode = "socket"',
        f"bot_token_env = {json.dumps(SLACK_BOT_ENV)}",
        f"app_token_env = {json.dumps(SLACK_APP_ENV)}",
        f"api_base = {json.dumps(slack['api_base'])}",
        "[[services]]",
        'key = "acme"',
        f"name = {json.dumps(SERVICE.name)}",
        'targets = { web = "https://acme.invalid/" }',
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class _Platform:
    """One platform's fan-out in one round."""

    name: str
    channels: int
    requests: int
    span: float  # seconds from the first request to the last accepted message
    floor: float
    delivered: int  # channels with at least one message
    duplicates: int  # messages beyond one per channel
    global_429s: int
    route_429s: int
    max_window: int
    fake_cpu: float

    @property
    def over_floor(self) -> float:
        return self.span / self.floor - 1 if self.floor else math.nan

    @property
    def route_share(self) -> float:
        return self.route_429s / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class _Round:
    number: int
    platforms: tuple[_Platform, ...]
    startup: float  # bot start to every row settled, seconds
    bot_cpu: float
    load: float
    unrecorded: int  # outbox rows still pending a minute after every message arrived


def _round(scenario: FanoutScenario, number: int) -> _Round:
    ctx = multiprocessing.get_context("spawn")
    pipes: dict[str, Connection] = {}
    procs: list[Any] = []
    for platform in ("discord", "slack"):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_fake_process, args=(platform, child), daemon=True)
        proc.start()
        pipes[platform], procs = parent, [*procs, proc]
    bot: subprocess.Popen[bytes] | None = None
    log_path = data_dir() / "fanout-bot.log"
    database = data_dir() / "fanout-bench.db"
    try:
        info: dict[str, dict[str, Any]] = {}
        for platform, pipe in pipes.items():
            if not pipe.poll(60):
                raise RuntimeError(f"the local {platform} did not start")
            info[platform] = pipe.recv()
        channels = {
            "discord": [str(10**17 + i) for i in range(scenario.discord_channels)],
            "slack": [f"C{i:08d}" for i in range(scenario.slack_channels)],
        }
        remove_database(database)
        tenants = {p: str(info[p]["tenant"]) for p in pipes}
        queued = asyncio.run(_seed(database, tenants, channels))
        if queued != scenario.discord_channels + scenario.slack_channels:
            raise RuntimeError(f"expected one outbox row per channel, found {queued}")
        config = data_dir() / "fanout-bench.toml"
        config.write_text(_config(database, info["discord"], info["slack"]), encoding="utf-8")
        env = {
            **os.environ,
            DISCORD_TOKEN_ENV: info["discord"]["token"],
            SLACK_BOT_ENV: info["slack"]["bot_token"],
            SLACK_APP_ENV: info["slack"]["app_token"],
        }
        for platform, pipe in pipes.items():
            pipe.send(channels[platform])
        load = os.getloadavg()[0]
        started = time.perf_counter()
        with log_path.open("ab") as log:
            bot = subprocess.Popen(
                [
                    str(VENV_BIN / "outagebot"),
                    "--config",
                    str(config),
                    "run",
                    "--no-console",
                    "--no-demo",
                ],
                cwd=data_dir(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for platform, pipe in pipes.items():
            silent = f"the local {platform} never reported"
            wait_for_message(pipe, bot, DELIVERY_TIMEOUT + 60, silent)
            pipe.recv()
        deadline = time.monotonic() + 60
        while _unsettled(database) and time.monotonic() < deadline:
            time.sleep(0.1)  # another process's writes: nothing to wait on but the file
        settled = time.perf_counter() - started
        unrecorded = _unsettled(database)  # delivered but never recorded: a failure
        bot_cpu = cpu_seconds(bot.pid)
        results: dict[str, dict[str, Any]] = {}
        for platform, pipe in pipes.items():
            pipe.send("report")
            wait_for_message(pipe, bot, 60, f"the local {platform} sent no results")
            results[platform] = pipe.recv()
    finally:
        if bot is not None:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    limits = {"discord": DISCORD_LIMIT, "slack": SLACK_LIMIT}
    platforms = tuple(
        _platform(p, len(channels[p]), results[p], limits[p]) for p in ("discord", "slack")
    )
    return _Round(number, platforms, settled, bot_cpu, load, unrecorded)


def _platform(name: str, channels: int, result: dict[str, Any], limit: int) -> _Platform:
    per_channel: list[int] = result["per_channel"]
    return _Platform(
        name=name,
        channels=channels,
        requests=int(result["requests"]),
        span=float(result["last"] - result["first"]),
        floor=floor_seconds(channels, limit),
        delivered=sum(1 for n in per_channel if n),
        duplicates=sum(max(0, n - 1) for n in per_channel),
        global_429s=int(result["global_429s"]),
        route_429s=int(result["route_429s"]),
        max_window=int(result["max_window"]),
        fake_cpu=float(result["fake_cpu"]),
    )


# ---- the report ------------------------------------------------------------------------------


def run(scenario: FanoutScenario) -> Section:
    rounds = []
    for number in range(1, scenario.rounds + 1):
        progress(
            f"fanout: round {number}/{scenario.rounds}: {scenario.discord_channels} Discord and "
            f"{scenario.slack_channels} Slack channels"
        )
        rounds.append(_round(scenario, number))
    with contextlib.suppress(OSError):
        remove_database(data_dir() / "fanout-bench.db")
    return _section(scenario, rounds)


def _section(scenario: FanoutScenario, rounds: list[_Round]) -> Section:
    section = Section("fanout", "Fan-out: one incident to every subscribed channel")
    section.facts += [
        f"Load: one incident opened with {scenario.discord_channels:,} Discord channels and "
        f"{scenario.slack_channels:,} Slack channels subscribed (one outbox row each, queued "
        f"with the incident), {scenario.rounds} round(s), a fresh database, bot and local "
        "platforms per round",
        "Processes: the local Discord and the local Slack (tests/fakes) each in a spawned process; "
        "the bot as `outagebot run --no-console --no-demo` (Discord, Slack in Socket Mode; "
        "probes, API, incidents and digests off)",
        f"Limits enforced: Discord {DISCORD_LIMIT} requests/s across routes (global 429) and 5 "
        f"messages per 5 s per channel (route 429); Slack {SLACK_LIMIT} calls/s per Web API method "
        "(the figure issue 6 gives; Slack documents no workspace ceiling for chat.postMessage) "
        "and about 1 message/s per channel, bursts of 3 (429); all with Retry-After",
        "Floor: N messages under L per sliding second need ceil(N / L) - 1 s from the first to "
        "the last; delivery time: the platform's clock from the first message request of the "
        "fan-out to the last message it accepted; every outbox row must also be recorded as "
        "sent",
        "Route 429s: with one message per channel, a channel's own limit (5 per 5 s on "
        "Discord, about 1 per s on Slack) cannot be reached, so this run cannot show them; "
        "pacing within a channel is covered by tests (tests/adapters/test_slack_limits.py, "
        "tests/test_delivery_storms.py)",
    ]
    for platform in ("discord", "slack"):
        mine = [p for r in rounds for p in r.platforms if p.name == platform]
        span = median([p.span for p in mine])
        floor = mine[0].floor
        within = span <= floor * (1 + TARGET_OVER_FLOOR)
        global_429s = sum(p.global_429s for p in mine)
        share = max(p.route_share for p in mine)
        complete = all(p.delivered == p.channels for p in mine)
        duplicates = sum(p.duplicates for p in mine)
        unrecorded = sum(r.unrecorded for r in rounds)
        ok = within and global_429s == 0 and share < TARGET_ROUTE_429_SHARE and complete
        ok = ok and duplicates == 0 and unrecorded == 0
        section.facts.append(
            f"{platform}: target delivered within {TARGET_OVER_FLOOR:.0%} of the floor, zero "
            f"global 429s, under {TARGET_ROUTE_429_SHARE:.0%} route 429s: "
            f"{'PASS' if ok else 'FAIL'} (median {span:.2f} s against a floor of {floor:.0f} s, "
            f"{span / floor - 1:+.1%}; global 429s {global_429s}; worst route 429 share "
            f"{share:.2%}; every channel reached: {complete}; duplicates {duplicates}; rows "
            f"not recorded as sent: {unrecorded})"
            if floor
            else f"{platform}: floor is 0 s at this size (quick mode): not judged"
        )
    section.tables.append(_table(rounds))
    return section


def _table(rounds: list[_Round]) -> Table:
    table = Table(
        "Delivery per round",
        [
            "platform / round",
            "channels",
            "message requests",
            "delivered",
            "duplicates",
            "delivery s",
            "floor s",
            "÷ floor",
            "messages/s",
            "global 429s",
            "route 429s",
            "most requests in 1 s",
            "local platform CPU s",
        ],
    )
    for r in rounds:
        for p in r.platforms:
            table.add(
                f"{p.name} / {r.number}",
                f"{p.channels:,}",
                f"{p.requests:,}",
                f"{p.delivered:,}",
                p.duplicates,
                f"{p.span:.2f}",
                f"{p.floor:.0f}",
                f"{p.span / p.floor:.3f}×" if p.floor else "–",
                f"{p.delivered / p.span:.1f}" if p.span > 0 else "–",
                p.global_429s,
                f"{p.route_429s} ({p.route_share:.2%})",
                p.max_window or "–",
                f"{p.fake_cpu:.1f}",
            )
    table.notes += [
        "message requests: every POST of a message to a subscribed channel the platform saw, "
        "refusals included; most requests in 1 s: the local Discord's busiest sliding second "
        "over every route (its global limit is 50)",
        "Per round, bot start to every outbox row recorded as sent (start-up included), bot CPU "
        "and the 1-minute load average before the start: "
        + "; ".join(
            f"{r.number}: {r.startup:.1f} s, {r.bot_cpu:.1f} s CPU, load {r.load:.2f}"
            for r in rounds
        ),
    ]
    return table

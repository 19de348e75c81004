"""Fault to alert: from a fault injected into a loopback target to the alert in the local Discord.

The whole path the issue names, in one process on loopback: aiohttp targets (one per service),
the core ``App`` with its local probe agent (``[probes] interval_seconds = 10``), confirmation
and re-check bursts, the incident job (``[incidents] interval_seconds = 10``), the outbox and
the real Discord adapter posting to the fake Discord from tests/fakes (a subscribed channel).
Each trial switches one service's target to HTTP 503 at T0 and waits for the channel to receive
the message "🔴 <name>: ..."; then the target recovers and the next trial on that service waits
for the incident to resolve first. Trials on different services overlap and start at random
offsets, so the probe and incident phases vary. Target: p95 at most 45 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import App
from bot.config import parse_settings

from .common import PROJECT_DIR, Section, Table, median, progress

TARGET_P95_SECONDS = 45.0


@dataclass(frozen=True, slots=True)
class AlertScenario:
    services: int
    trials_per_service: int
    seed: int = 7


QUICK = AlertScenario(services=4, trials_per_service=1)
FULL = AlertScenario(services=10, trials_per_service=2)


class Targets:
    """One route per service on one loopback listener; each answers 200 or 503 as set."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{name}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _answer(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.Response(status=503 if name in self.failing else 200, text="ok")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def run_async(sc: AlertScenario) -> Section:
    sys.path.insert(0, str(PROJECT_DIR / "tests"))  # the fake Discord lives with the tests
    from fakes.discord_fake import FakeDiscord

    fake = await FakeDiscord().start()
    targets = Targets()
    await targets.start()
    names = [f"svc{i:02d}" for i in range(sc.services)]
    with tempfile.TemporaryDirectory(prefix="alert-bench-") as tmp:
        os.environ["OUTAGEBOT_BENCH_DISCORD_TOKEN"] = fake.token
        settings = parse_settings(
            {
                "bot": {"database": str(Path(tmp) / "alerts.db"), "default_region": "US"},
                "probes": {
                    "interval_seconds": 10,
                    "timeout_seconds": 3.0,
                    "allow_private": ["127.0.0.0/8"],
                },
                "api": {"enabled": False},
                # Resolve after 1 min of quiet so trials can follow each other quickly.
                "incidents": {"interval_seconds": 10, "resolve_after_minutes": 1},
                "digest": {"enabled": False},
                "discord": {
                    "enabled": True,
                    "token_env": "OUTAGEBOT_BENCH_DISCORD_TOKEN",
                    "guild_ids": [fake.guild_id],
                    "api_base": fake.api_base,
                    "gateway_url": fake.gateway_url,
                },
                "services": [
                    {
                        "key": n,
                        "name": f"Bench {n}",
                        "targets": {"web": f"http://127.0.0.1:{targets.port}/{n}"},
                    }
                    for n in names
                ],
            }
        )
        app = await App.create(settings, demo=False)
        await app.store.subscribe(
            "discord",
            fake.guild_id,
            fake.channel_id,
            "all",
            "",
            level="regional",
            lang="en",
            user="bench",
        )
        await app.start()
        try:
            latencies = await _trials(sc, fake, targets, names)
        finally:
            await app.close()
            await targets.close()
            await fake.close()
    return _section(sc, latencies)


async def _trials(sc: AlertScenario, fake: Any, targets: Targets, names: list[str]) -> list[float]:
    rng = random.Random(sc.seed)
    latencies: list[float] = []

    def alerts(name: str, mark: str) -> int:
        return sum(
            1
            for mid in fake.channel_messages.get(fake.channel_id, [])
            if mark in (text := json.dumps(fake.messages[mid], ensure_ascii=False))
            and f"Bench {name}" in text
        )

    async def one(name: str) -> None:
        await asyncio.sleep(rng.uniform(5, 25))  # let the schedule settle, vary the phase
        for trial in range(sc.trials_per_service):
            opened = alerts(name, "🔴")
            targets.failing.add(name)
            t0 = time.monotonic()
            await fake.wait_for(lambda n=opened: alerts(name, "🔴") > n, timeout=120)
            latencies.append(time.monotonic() - t0)
            progress(f"alert: {name} trial {trial + 1}: {latencies[-1]:.1f} s")
            resolved = alerts(name, "✅")
            targets.failing.discard(name)
            await fake.wait_for(lambda n=resolved: alerts(name, "✅") > n, timeout=300)

    await asyncio.gather(*(one(n) for n in names))
    return latencies


def _section(sc: AlertScenario, latencies: list[float]) -> Section:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0
    verdict = "PASS" if ordered and p95 <= TARGET_P95_SECONDS else "FAIL"
    section = Section("alert", "Fault to alert (end to end)")
    section.facts += [
        "One process on loopback: aiohttp targets, the core App with its local probe agent "
        "([probes] interval_seconds = 10, timeout 3 s), confirmation (3 failures, re-check "
        "bursts), the incident job every 10 s (resolve after 1 min of quiet, so trials can "
        "follow each other), the outbox and the real Discord adapter posting "
        "to the fake Discord (tests/fakes), one channel subscribed to all at level regional.",
        f"{sc.services} services × {sc.trials_per_service} trials: a target turns to HTTP 503 at "
        "T0; latency = T0 → the channel receives '🔴 <name>'. Trials start at random offsets.",
        f"Target p95 ≤ {TARGET_P95_SECONDS:g} s: {verdict} (p95 {p95:.1f} s over "
        f"{len(ordered)} trials)",
    ]
    table = Table("Fault to alert (s)", ["trials", "min", "median", "p95", "max"])
    if ordered:
        table.add(
            len(ordered),
            f"{ordered[0]:.1f}",
            f"{median(ordered):.1f}",
            f"{p95:.1f}",
            f"{ordered[-1]:.1f}",
        )
    section.tables.append(table)
    return section


def run(sc: AlertScenario) -> Section:
    return asyncio.run(run_async(sc))


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    section = run(QUICK if quick else FULL)
    print(section.markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Discord under a burst: concurrent ``/isitdown`` interactions through the local Discord.

Three processes, none sharing an event loop with another:

- this one (the orchestrator) builds a SQLite database of stored evidence with the real CLI
  (``outagebot import`` of a JSON Lines file generated like examples/twitter_2022_12_28.py,
  shifted so that its peak is now), writes the config and reads the bot's CPU from /proc;
- the local Discord (tests/fakes/discord_fake.py, REST and gateway on 127.0.0.1, port 0) runs in
  a spawned process; it fires the interactions over the gateway and times what comes back;
- the bot is the real ``outagebot run --no-console --no-demo`` in a subprocess, with
  ``[discord] enabled`` pointing at the local Discord, ``[probes]`` and ``[api]`` disabled.

A round starts a fresh local Discord and a fresh bot, waits for one answered ``/isitdown`` about a
service outside the measured set (start-up: imports, matplotlib, the store's caches), then sends
N INTERACTION_CREATE events at once and waits up to 15 s for every answer. Per interaction:
acknowledgement = dispatch (just before the frame is written to the gateway) to the interaction
callback (the defer) reaching the local Discord; answer = dispatch to the followup carrying the
verdict's embed reaching it; chart attached = dispatch to the request carrying the chart file (the
bot answers first and attaches the chart by editing the answer). The measured services' charts
and verdicts are cold in every round: a burst at the start of an outage is the case the targets
are about.

Targets (issue 4): acknowledgement p99 < 500 ms, answer from stored evidence p99 < 1 s, judged on
the median of the per-round p99s. Set OUTAGEBOT_BENCH_PROFILE to a folder to run the bot under
cProfile (one .prof file per round, written when the bot stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Imported for code_version() (benchmarks/common.py) alone: it hashes the bot/ sources loaded in
# this process, and the bot under test (a subprocess) loads the modules bot.app does.
import bot.app  # noqa: F401

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

TARGET_ACK_P99_MS = 500.0
TARGET_ANSWER_P99_MS = 1000.0
ANSWER_TIMEOUT = 15.0  # seconds after dispatch; later (or never) counts as a failure
TOKEN_ENV = "OUTAGEBOT_BENCH_DISCORD_TOKEN"
PROFILE_ENV = "OUTAGEBOT_BENCH_PROFILE"
# The first ten services of config.example.toml; every one gets the example's evidence.
SERVICES = (
    "twitter",
    "discord",
    "slack",
    "github",
    "gitlab",
    "google",
    "gmail",
    "google-cloud",
    "youtube",
    "facebook",
)
WARMUP_SERVICE = "cloudflare"  # in the catalog, never measured, no outage
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class DiscordScenario:
    interactions: int
    rounds: int


FULL = DiscordScenario(interactions=200, rounds=3)
QUICK = DiscordScenario(interactions=50, rounds=1)

# (label, how the burst picks each interaction's service)
MIXES: tuple[tuple[str, str], ...] = (
    ("same outage", "every interaction asks about twitter"),
    ("10 services", "interaction i asks about service i mod 10"),
)


def _services_for(mix: str, n: int) -> list[str]:
    if mix == "same outage":
        return ["twitter"] * n
    return [SERVICES[i % len(SERVICES)] for i in range(n)]


# ---- the local Discord's process ---------------------------------------------------------------


def _fake_process(conn: Connection) -> None:
    # discord_fake imports its siblings as ``fakes.*``, as the tests do (tests/ on sys.path).
    sys.path.insert(0, str(PROJECT_DIR / "tests"))
    asyncio.run(_fake_main(conn))


async def _fake_main(conn: Connection) -> None:
    from fakes.discord_fake import FakeDiscord

    fake = await FakeDiscord().start()
    conn.send(
        {
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "token": fake.token,
            "guild_id": fake.guild_id,
        }
    )
    try:
        started = time.monotonic()
        # Ready: commands synced to the guild, a gateway session, then one answered /isitdown.
        await fake.wait_for(lambda: fake.commands.get(fake.guild_id) and fake.sessions, 120)
        warm = await fake.slash("isitdown", {"service": WARMUP_SERVICE})
        await fake.wait_for(lambda: warm.followups, 60)
        conn.send({"warm_seconds": time.monotonic() - started})
        services: list[str] = await asyncio.to_thread(conn.recv)
        fake.requests.clear()
        cpu = time.process_time()
        fired = await asyncio.gather(*(fake.slash("isitdown", {"service": s}) for s in services))

        def answered_with_chart(i: Any) -> bool:
            return bool(i.followups) and bool(fake.messages[i.followups[0]["id"]].get("files"))

        with contextlib.suppress(TimeoutError):
            await fake.wait_for(lambda: all(map(answered_with_chart, fired)), ANSWER_TIMEOUT)
        await asyncio.sleep(0.2)  # let late refusals and stray requests land before counting
        conn.send(
            {
                "records": _records(fake, fired),
                "fake_cpu": time.process_time() - cpu,
                "invalid": fake.invalid[:5],
                "first_answer": _first_answer(fake, fired),
            }
        )
    finally:
        await fake.close()


def _records(fake: Any, fired: Sequence[Any]) -> list[dict[str, Any]]:
    """Per interaction: when its callback and its answer reached the local Discord, and how."""
    by_token = {i.token: i for i in fired}
    out = {
        i.token: {
            "created": i.created,
            "ack": None,
            "ack_status": None,
            "answer": None,
            "answer_status": None,
            "chart": None,
            "embed": False,
            "file": False,
            "statuses": [],
        }
        for i in fired
    }
    for req in fake.requests:  # in arrival order; ``at`` is when the local Discord began on it
        parts = req.path.removeprefix("/api/v10/").split("/")
        callback = parts[0] == "interactions" and parts[-1] == "callback"
        webhook = parts[0] == "webhooks" and len(parts) >= 3
        token = parts[2] if callback or webhook else ""
        if token not in by_token:
            continue
        rec = out[token]
        rec["statuses"].append(req.status)
        if parts[0] == "interactions":
            if rec["ack"] is None:
                rec["ack"], rec["ack_status"] = req.at, req.status
        elif req.method in ("POST", "PATCH") and req.status < 300:
            body = req.body or {}
            # The answer is the verdict's embed; its chart may come with it or in a later edit.
            if rec["answer"] is None and body.get("embeds"):
                rec["answer"], rec["answer_status"] = req.at, req.status
                rec["embed"] = True
            if rec["chart"] is None and req.files:
                rec["chart"] = req.at
                rec["file"] = True
    return list(out.values())


def _first_answer(fake: Any, fired: Sequence[Any]) -> str:
    """The title of the first answer's embed, to show which verdict the burst was served."""
    for i in fired:
        for msg in i.followups:
            for embed in msg.get("embeds") or []:
                return str(embed.get("title") or "")
    return "(none)"


# ---- evidence, config and the bot ----------------------------------------------------------------


def _example_events() -> Any:
    path = PROJECT_DIR / "examples" / "twitter_2022_12_28.py"
    spec = importlib.util.spec_from_file_location("twitter_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_evidence(path: Path, peak: datetime) -> int:
    """The founding example for each service, shifted so its peak is ``peak``.

    Service k keeps every event of the example except the outage reports, of which it keeps a
    share of 1/(k+1) (twitter has the whole outage, the tenth service a tenth of it), and the
    probes of targets it does not have. The warm-up service gets the ordinary history alone.
    """
    example = _example_events()
    shift = peak - example.PEAK
    catalog = tomllib.loads((PROJECT_DIR / "config.example.toml").read_text(encoding="utf-8"))
    targets = {s["key"]: set(s["targets"]) for s in catalog["services"]}
    lines = 0
    with path.open("w", encoding="utf-8") as f:
        for k, service in enumerate((*SERVICES, WARMUP_SERVICE)):
            rng = random.Random(20221228 + k)
            for event in example.events(rng):
                outage = event["type"] == "report" and not str(event["user"]).startswith("h")
                if outage and (service == WARMUP_SERVICE or (k and rng.random() * (k + 1) >= 1)):
                    continue
                if event["type"] == "probe" and event["target"] not in targets[service]:
                    continue
                at = datetime.strptime(str(event["at"]), TIME_FORMAT).replace(tzinfo=UTC)
                event = {**event, "service": service, "at": (at + shift).strftime(TIME_FORMAT)}
                f.write(json.dumps(event, separators=(",", ":")) + "\n")
                lines += 1
    return lines


def _config(database: Path, fake: dict[str, Any] | None) -> str:
    """[bot], [api], [probes] and [discord] for the benchmark, then the example's services."""
    example = (PROJECT_DIR / "config.example.toml").read_text(encoding="utf-8")
    services = example[example.index("\n[[services]]") :]
    out = [
        "[bot]",
        f"database = {json.dumps(str(database))}",
        "[api]",
        "enabled = false",
        "[probes]",
        "enabled = false",
    ]
    if fake is not None:
        out += [
            "[discord]",
            "enabled = true",
            f"token_env = {json.dumps(TOKEN_ENV)}",
            f"guild_ids = [{json.dumps(fake['guild_id'])}]",
            f"api_base = {json.dumps(fake['api_base'])}",
            f"gateway_url = {json.dumps(fake['gateway_url'])}",
        ]
    return "\n".join(out) + "\n" + services


def _build_database(database: Path) -> tuple[str, float]:
    directory = data_dir()
    jsonl = directory / "discord-evidence.jsonl"
    config = directory / "discord-import.toml"
    remove_database(database)
    peak = datetime.now(UTC).replace(microsecond=0)
    lines = _write_evidence(jsonl, peak)
    config.write_text(_config(database, None), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [str(VENV_BIN / "outagebot"), "--config", config.name, "import", jsonl.name],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"outagebot import failed: {done.stderr.strip()}")
    took = time.perf_counter() - started
    return f"{lines:,} events ({done.stdout.strip()})", took


def _bot_command(config: Path, round_no: int, mix: str) -> list[str]:
    args = ["--config", str(config), "run", "--no-console", "--no-demo"]
    profile = os.environ.get(PROFILE_ENV)
    if profile:
        Path(profile).mkdir(parents=True, exist_ok=True)
        out = Path(profile) / f"discord-bot-{mix.replace(' ', '-')}-{round_no}.prof"
        return [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "bot", *args]
    return [str(VENV_BIN / "outagebot"), *args]


@dataclass(frozen=True, slots=True)
class _Round:
    mix: str
    number: int
    acks: list[float]  # ms, inf when there was none
    answers: list[float]  # ms, inf when there was none within ANSWER_TIMEOUT
    charts: list[float]  # ms until the chart file arrived (with the answer or by an edit)
    failures: int
    failure_notes: list[str]
    bot_cpu: float
    wall: float
    fake_cpu: float
    warm_seconds: float
    load: float
    verdict: str


def _round(scenario: DiscordScenario, database: Path, mix: str, number: int) -> _Round:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    fake_proc = ctx.Process(target=_fake_process, args=(child,), daemon=True)
    fake_proc.start()
    bot: subprocess.Popen[bytes] | None = None
    log_path = data_dir() / "discord-bot.log"
    try:
        if not parent.poll(60):
            raise RuntimeError("the local Discord did not start")
        fake: dict[str, Any] = parent.recv()
        config = data_dir() / "discord-bench.toml"
        config.write_text(_config(database, fake), encoding="utf-8")
        env = {**os.environ, TOKEN_ENV: fake["token"]}
        with log_path.open("ab") as log:
            bot = subprocess.Popen(
                _bot_command(config, number, mix),
                cwd=data_dir(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        no_answer = f"the bot did not answer a first /isitdown; see {log_path}"
        wait_for_message(parent, bot, 120, no_answer)
        warm = parent.recv()
        load = os.getloadavg()[0]
        cpu = cpu_seconds(bot.pid)
        started = time.perf_counter()
        parent.send(_services_for(mix, scenario.interactions))
        wait_for_message(parent, bot, ANSWER_TIMEOUT + 60, "the local Discord sent no results")
        result: dict[str, Any] = parent.recv()
        wall = time.perf_counter() - started
        bot_cpu = cpu_seconds(bot.pid) - cpu
    finally:
        if bot is not None:
            bot.send_signal(signal.SIGTERM)  # a clean stop (cProfile writes its file then)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
        fake_proc.join(timeout=10)
        if fake_proc.is_alive():
            fake_proc.kill()
    return _summarise(mix, number, result, bot_cpu, wall, warm["warm_seconds"], load)


def _summarise(
    mix: str,
    number: int,
    result: dict[str, Any],
    bot_cpu: float,
    wall: float,
    warm_seconds: float,
    load: float,
) -> _Round:
    acks, answers, charts, notes = [], [], [], []
    failures = 0
    for rec in result["records"]:
        created = rec["created"]
        ack = (rec["ack"] - created) * 1000 if rec["ack"] is not None else math.inf
        answer = (rec["answer"] - created) * 1000 if rec["answer"] is not None else math.inf
        chart = (rec["chart"] - created) * 1000 if rec["chart"] is not None else math.inf
        bad = [s for s in rec["statuses"] if not 200 <= s < 300]
        problem = ""
        if rec["ack"] is None:
            problem = "no acknowledgement"
        elif rec["answer"] is None or answer > ANSWER_TIMEOUT * 1000:
            problem = f"no answer within {ANSWER_TIMEOUT:.0f} s"
        elif bad:
            problem = f"non-2xx {bad}"
        elif not (rec["embed"] and rec["file"]):
            problem = "answer without the embed or the chart file"
        if problem:
            failures += 1
            notes.append(problem)
        acks.append(ack)
        answers.append(answer if answer <= ANSWER_TIMEOUT * 1000 else math.inf)
        charts.append(chart if chart <= ANSWER_TIMEOUT * 1000 else math.inf)
    if result["invalid"]:
        notes.append(f"payloads refused by the local Discord: {result['invalid']}")
    return _Round(
        mix=mix,
        number=number,
        acks=acks,
        answers=answers,
        charts=charts,
        failures=failures,
        failure_notes=sorted(set(notes)),
        bot_cpu=bot_cpu,
        wall=wall,
        fake_cpu=result["fake_cpu"],
        warm_seconds=warm_seconds,
        load=load,
        verdict=result["first_answer"],
    )


# ---- statistics and the report -------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (as statistics' "inclusive"), inf-aware."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = ordered[lo], ordered[hi]
    if math.isinf(a) or math.isinf(b):
        return b
    return a + (b - a) * (pos - lo)


def _ms(value: float) -> str:
    return f"> {ANSWER_TIMEOUT * 1000:,.0f}" if math.isinf(value) else f"{value:,.1f}"


def run(scenario: DiscordScenario) -> Section:
    database = data_dir() / "discord-bench.db"
    progress("discord: building the evidence database through `outagebot import`")
    evidence, import_seconds = _build_database(database)
    rounds: list[_Round] = []
    try:
        for number in range(1, scenario.rounds + 1):
            for mix, _ in MIXES:  # round-major: a slow patch of the machine hits both mixes
                progress(
                    f"discord: round {number}/{scenario.rounds}: {mix}, "
                    f"{scenario.interactions} interactions"
                )
                rounds.append(_round(scenario, database, mix, number))
    finally:
        remove_database(database)
    return _section(scenario, rounds, evidence, import_seconds)


def _section(
    scenario: DiscordScenario, rounds: list[_Round], evidence: str, import_seconds: float
) -> Section:
    section = Section("discord", "Discord: concurrent /isitdown through the local Discord")
    n = scenario.interactions
    section.facts += [
        f"Load: {n} INTERACTION_CREATE (/isitdown) sent at once over the gateway, "
        f"{scenario.rounds} round(s) per mix; mixes: "
        + "; ".join(f"{name}: {how}" for name, how in MIXES),
        "Processes: the local Discord (tests/fakes/discord_fake.py) in a spawned process; the bot "
        "as `outagebot run --no-console --no-demo` in a subprocess ([discord] at the local "
        "Discord, [probes] and [api] disabled, other sections at their defaults); a fresh pair "
        "per round, warmed by one answered /isitdown about a service outside the measured set",
        f"Stored evidence: examples/twitter_2022_12_28.py shifted to peak at the start of the "
        f"run, for {len(SERVICES)} services (service k keeps 1/(k+1) of the outage reports) and "
        f"{WARMUP_SERVICE} (the ordinary history alone): "
        f"{evidence}, imported in {import_seconds:.1f} s",
        "acknowledgement: dispatch (the frame about to be written to the gateway) to the "
        "interaction callback (the defer) reaching the local Discord; answer: dispatch to the "
        "followup with the verdict's embed reaching it; chart attached: to the request carrying "
        "the chart file (the bot sends the verdict first and attaches the chart by editing it; "
        "the local Discord's clock)",
        f"Failure: no acknowledgement, no answer within {ANSWER_TIMEOUT:.0f} s, a non-2xx "
        "answer to any of its requests, or an answer without the embed or the chart file; "
        "missing times count as infinite in the percentiles",
        "Charts are cold in every round: each measured service's chart is drawn once per round "
        "(1 drawing for the same outage, 10 for 10 services; matplotlib, 0.2-0.3 s of CPU each "
        "on a worker thread of the bot), and every answer about a service waits for its chart",
    ]
    for mix, _ in MIXES:
        mine = [r for r in rounds if r.mix == mix]
        ack_p99 = median([quantile(r.acks, 0.99) for r in mine])
        answer_p99 = median([quantile(r.answers, 0.99) for r in mine])
        failures = sum(r.failures for r in mine)
        cpu_ms = median([r.bot_cpu * 1000 / len(r.acks) for r in mine])
        verdict = "PASS" if ack_p99 < TARGET_ACK_P99_MS else "FAIL"
        section.facts.append(
            f"{mix}: target acknowledgement p99 < {TARGET_ACK_P99_MS:.0f} ms: {verdict} "
            f"({_ms(ack_p99)} ms, median of {len(mine)} per-round p99s)"
        )
        verdict = "PASS" if answer_p99 < TARGET_ANSWER_P99_MS else "FAIL"
        section.facts.append(
            f"{mix}: target answer p99 < {TARGET_ANSWER_P99_MS:.0f} ms: {verdict} "
            f"({_ms(answer_p99)} ms, median of {len(mine)} per-round p99s); "
            f"failures {failures} of {n * len(mine)}; bot CPU {cpu_ms:.1f} ms per interaction"
        )
    notes = sorted({note for r in rounds for note in r.failure_notes})
    if notes:
        section.facts.append(f"Failure kinds seen: {notes}")
    section.facts.append(
        "Verdicts served (first answer's embed title): "
        + "; ".join(sorted({f"{r.mix}: {r.verdict}" for r in rounds}))
    )
    section.tables.append(_table(rounds))
    return section


def _table(rounds: list[_Round]) -> Table:
    table = Table(
        "Latency per round (ms from dispatch)",
        [
            "mix / round",
            "ack median",
            "ack p95",
            "ack p99",
            "ack max",
            "answer median",
            "answer p95",
            "answer p99",
            "answer max",
            "chart attached median / p99",
            "failures",
            "bot CPU s (÷ wall)",
            "load avg",
        ],
    )
    for r in rounds:
        table.add(
            f"{r.mix} / {r.number}",
            *(_ms(quantile(r.acks, q)) for q in (0.5, 0.95, 0.99, 1.0)),
            *(_ms(quantile(r.answers, q)) for q in (0.5, 0.95, 0.99, 1.0)),
            f"{_ms(quantile(r.charts, 0.5))} / {_ms(quantile(r.charts, 0.99))}",
            f"{r.failures} of {len(r.acks)}",
            f"{r.bot_cpu:.2f} ({r.bot_cpu / r.wall:.2f})" if r.wall else f"{r.bot_cpu:.2f}",
            f"{r.load:.2f}",
        )
    warm = ", ".join(f"{r.warm_seconds:.1f}" for r in rounds)
    table.notes += [
        "bot CPU: user + system seconds of the bot process (all its threads) from the burst's "
        "first dispatch until every answer arrived (or 15 s passed), plus 0.2 s (÷ wall: cores "
        "used); load avg: the machine's 1-minute load average just before the burst (2 cores, "
        "shared with other people's jobs)",
        "Local Discord process CPU per burst: " + ", ".join(f"{r.fake_cpu:.2f} s" for r in rounds),
        f"Seconds from starting the bot to its first answered /isitdown, per round: {warm}",
    ]
    return table

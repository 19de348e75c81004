"""``python -m benchmarks [--quick] [--only NAME] [--output PATH]``.

NAME: one of NAMES (results.ORDER): verdict, import, storage, detect, probe, schedule, alert,
fanout, slack, discord.

Prints each benchmark's tables to stdout (progress goes to stderr) and writes a Markdown report:
``benchmarks/RESULTS.md`` in full mode, ``benchmarks/data/RESULTS-quick.md`` in quick mode so a
smoke test never overwrites the published figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import (
    alert_bench,
    detect_bench,
    discord_bench,
    fanout_bench,
    import_bench,
    probe_bench,
    schedule_bench,
    slack_bench,
    storage_growth,
    verdict_bench,
    verdict_data,
)
from .common import BENCH_DIR, Section, code_version, data_dir, describe_machine, progress
from .results import ORDER, save_section, write_results

NAMES = ORDER


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke test (well under a minute)"
    )
    parser.add_argument(
        "--only",
        choices=NAMES,
        help="run one benchmark",
    )
    parser.add_argument("--output", type=Path, help="where to write the Markdown report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    mode = "quick" if args.quick else "full"
    command = " ".join([".venv/bin/python -m benchmarks", *(argv or sys.argv[1:])])
    output = args.output or (
        data_dir() / "RESULTS-quick.md" if args.quick else BENCH_DIR / "RESULTS.md"
    )
    machine = describe_machine()
    print("\n".join(machine.lines()) + "\n")
    # The bot's modules are imported once, now; bot/ may change later (other people work in
    # this tree). In-process figures use the code loaded now; subprocesses load it from disk.
    code = code_version()
    for name in NAMES:
        if args.only in (None, name):
            started = time.perf_counter()
            section = _run(name, quick=args.quick)
            progress(f"{name}: done in {time.perf_counter() - started:,.0f} s")
            section.facts.append(f"Code: {code}, loaded when the run started")
            now = code_version()
            in_subprocess = ("import", "detect", "probe", "schedule", "fanout", "discord")
            if name in in_subprocess and now != code:
                section.facts.append(
                    f"WARNING: bot/ changed during this run (now {now}): the CLI subprocesses "
                    "may have run other code than the in-process paths. Run it again."
                )
            print(section.text(), flush=True)
            save_section(mode, section, command)
    write_results(output, mode, machine)
    progress(f"wrote {output}")
    return 0


def _run(name: str, *, quick: bool) -> Section:
    if name == "verdict":
        scenario = verdict_data.QUICK if quick else verdict_data.FULL
        how = (
            verdict_bench.VerdictRun(rounds=3, outage_rounds=100)
            if quick
            else verdict_bench.VerdictRun(rounds=1000, outage_rounds=1000)
        )
        return asyncio.run(verdict_bench.run(scenario, how))
    if name == "storage":
        return storage_growth.run(storage_growth.QUICK if quick else storage_growth.FULL)
    if name == "detect":
        return asyncio.run(detect_bench.run(detect_bench.QUICK if quick else detect_bench.FULL))
    if name == "probe":
        return probe_bench.run(probe_bench.QUICK if quick else probe_bench.FULL)
    if name == "alert":
        return alert_bench.run(alert_bench.QUICK if quick else alert_bench.FULL)
    if name == "schedule":
        return schedule_bench.run(schedule_bench.QUICK if quick else schedule_bench.FULL)
    if name == "fanout":
        return fanout_bench.run(fanout_bench.QUICK if quick else fanout_bench.FULL)
    if name == "slack":
        return slack_bench.run(slack_bench.QUICK if quick else slack_bench.FULL)
    if name == "discord":
        return discord_bench.run(discord_bench.QUICK if quick else discord_bench.FULL)
    return import_bench.run(import_bench.QUICK if quick else import_bench.FULL)


if __name__ == "__main__":
    raise SystemExit(main())

"""The command line: ``outagebot run | status | import | check-config | discord-sync``, and
``slack-manifest``.

Exit codes: 0 success, 1 the command ran but failed (bad import file, unknown service), 2 the
configuration or the command line is wrong. Messages go to stderr and say what to change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.config import ConfigError, Settings, load_settings, resolve_config_path
from bot.model import Catalog

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: ./config.toml, else $OUTAGEBOT_CONFIG, else the example)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log progress at INFO level",
    )
    parser = argparse.ArgumentParser(
        prog="outagebot",
        description="Is it down, or is it just me? A chat bot for Discord and Slack.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", parents=[common], help="start the bot")
    demo = run.add_mutually_exclusive_group()
    demo.add_argument(
        "--demo",
        dest="demo",
        action="store_true",
        default=None,
        help="loopback services, simulated regions and seeded history "
        "(default when no chat adapter is enabled)",
    )
    demo.add_argument("--no-demo", dest="demo", action="store_false")
    run.add_argument(
        "--no-console",
        action="store_true",
        help="do not read commands from the terminal; run until SIGTERM",
    )

    status = sub.add_parser(
        "status", parents=[common], help="the verdict for a service now or at a past moment"
    )
    status.add_argument("service")
    status.add_argument("--at", metavar="ISO-TIME", help="e.g. 2022-12-28T21:30:00Z")
    status.add_argument("--json", action="store_true", help="print the JSON verdict")

    imp = sub.add_parser("import", parents=[common], help="bulk-load a JSON Lines file")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--check",
        action="store_true",
        help="check every line and report problems, without writing anything",
    )

    probe = sub.add_parser(
        "probe",
        parents=[common],
        help="check one URL now from this machine, through the SSRF guard",
    )
    probe.add_argument("url")
    probe.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: url, ok, status, latency_ms, error, detail",
    )

    agent = sub.add_parser(
        "agent", parents=[common], help="run a remote probe agent that reports to a core"
    )
    agent.add_argument("--region", required=True, help="this agent's country code, e.g. JP")
    agent.add_argument("--core", required=True, metavar="URL", help="the core's API base URL")
    agent.add_argument(
        "--key-env",
        required=True,
        metavar="VAR",
        help="environment variable holding this agent's signing key",
    )
    agent.add_argument(
        "--id",
        dest="agent_id",
        default=None,
        help="agent id (default: the [[agents]] entry with this key_env)",
    )
    agent.add_argument(
        "--spool",
        default=None,
        metavar="DIR",
        help="where results wait while the core is unreachable",
    )

    sub.add_parser("check-config", parents=[common], help="validate the config and exit")
    sub.add_parser(
        "discord-sync",
        parents=[common],
        help="register the slash commands with Discord now ([discord] guild_ids, else global)",
    )
    slack = sub.add_parser(
        "slack-manifest",
        parents=[common],
        help="print the Slack app manifest (JSON) generated from the commands",
    )
    slack.add_argument(
        "--mode", choices=("socket", "http"), default=None, help="default: [slack] mode"
    )
    slack.add_argument(
        "--request-url",
        metavar="URL",
        help="HTTP mode: the public https URL Slack posts to (ends in /slack/events)",
    )
    slack.add_argument("--name", default="outagebot", help="the app's name in Slack")
    return parser


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    path = resolve_config_path(getattr(args, "config", None))
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        print("The configuration is invalid; nothing was started.", file=sys.stderr)
        return 2
    handler = {
        "run": _run,
        "status": _status,
        "import": _import,
        "probe": _probe,
        "agent": _agent,
        "check-config": _check_config,
        "discord-sync": _discord_sync,
        "slack-manifest": _slack_manifest,
    }[args.command]
    from bot.store.schema import SchemaMismatch, SchemaTooNew

    try:
        return handler(settings, args, path)
    except (SchemaTooNew, SchemaMismatch) as exc:
        print(f"outagebot: {settings.bot.database}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _slack_manifest(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from bot.adapters.slack.manifest import build_manifest
    from commands import COMMANDS

    mode = args.mode or settings.slack.mode
    if mode == "http" and not args.request_url:
        print(
            "outagebot: slack-manifest in HTTP mode needs --request-url "
            "(the public https URL of POST /slack/events)",
            file=sys.stderr,
        )
        return 2
    specs = {name: module.SPEC for name, module in COMMANDS.items()}
    manifest = build_manifest(specs, mode=mode, request_url=args.request_url, name=args.name)
    print(json.dumps(manifest, indent=2, ensure_ascii=False))
    return 0


def _probe(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from bot import probe_cli

    # Exit 0 when the probe passed, 1 when it did not (or was refused before any socket).
    return probe_cli.run(settings, args.url, as_json=args.json)


def _agent(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from bot.agents.cli import run

    return run(
        settings,
        region=args.region,
        core_url=args.core,
        key_env=args.key_env,
        agent_id=args.agent_id,
        spool_dir=args.spool,
    )


def _discord_sync(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    import os

    from bot.adapters.discord.adapter import read_token, sync_commands
    from bot.errors import StartupError
    from commands import COMMANDS

    specs = {name: m.SPEC for name, m in COMMANDS.items()}
    try:
        token = read_token(settings.discord, os.environ)
        lines = asyncio.run(sync_commands(settings.discord, token, specs))
    except StartupError as exc:
        print(f"outagebot: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def _check_config(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    print(f"{path}: OK ({len(settings.services)} services)")
    return 0


def _run(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from bot.app import App, StartupError, chat_adapters_enabled

    demo = args.demo if args.demo is not None else not chat_adapters_enabled(settings)

    async def go() -> None:
        app = await App.create(settings, demo=demo)
        await app.run(console=not args.no_console)

    try:
        asyncio.run(go())
    except StartupError as exc:
        print(f"outagebot: {exc}", file=sys.stderr)
        return 2
    return 0


def _status(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from bot.model import parse_time
    from bot.reply import Reply, ReplyKind
    from bot.resolve import Resolver
    from bot.store import Store
    from bot.verdict_json import verdict_to_json
    from bot.verdicts import VerdictService

    at = None
    if args.at:
        at = parse_time(args.at)
        if at is None:
            print(
                f"outagebot: --at {args.at!r} is not an ISO 8601 time with a timezone "
                "(e.g. 2022-12-28T21:30:00Z)",
                file=sys.stderr,
            )
            return 2
    catalog = settings.catalog()
    resolver = Resolver(catalog)
    service = resolver.resolve(args.service)
    if service is None:
        hints = ", ".join(s.key for s in resolver.suggest(args.service))
        print(
            f"outagebot: unknown service {args.service!r}"
            + (f"; did you mean {hints}?" if hints else "; see [[services]] in the config"),
            file=sys.stderr,
        )
        return 1

    async def go() -> int:
        store = await Store.open(settings.bot.database, catalog)
        try:
            verdict = await VerdictService(store, settings).verdict(service, at)
        finally:
            await store.close()
        if args.json:
            print(json.dumps(verdict_to_json(verdict), indent=2, ensure_ascii=False))
        else:
            from bot.textrender import render_plain

            print(render_plain(Reply(ReplyKind.VERDICT, verdict=verdict), settings.bot.language))
        return 0

    return asyncio.run(go())


def _import(settings: Settings, args: argparse.Namespace, path: Path) -> int:
    from bot.importer import ImportErrors, import_file
    from bot.resolve import Resolver
    from bot.store import ImportConflict, Store

    file: Path = args.file
    if not file.is_file():
        print(f"outagebot: {file} is not a file", file=sys.stderr)
        return 1
    catalog = settings.catalog()
    progress = _ProgressBar() if sys.stderr.isatty() else None

    if args.check:
        return _check_import(file, catalog, progress)

    async def go() -> int:
        store = await Store.open(settings.bot.database, catalog)
        started = time.perf_counter()
        try:
            result = await import_file(
                file,
                store,
                Resolver(catalog),
                dedupe_seconds=settings.reports.dedupe_minutes * 60,
                progress=progress.update if progress else None,
            )
        except (ImportErrors, ImportConflict) as exc:
            if progress:
                progress.close()
            print(f"{file}: not imported:\n{exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            if progress:
                progress.close()
            print(f"{file}: interrupted; run the same import again to finish it.", file=sys.stderr)
            return 130
        finally:
            await store.close()
        if progress:
            progress.close()
        took = time.perf_counter() - started
        counts = result.counts
        if result.already_imported:
            print(f"{file} was already imported (same content); nothing to do.")
            return 0
        events = counts.reports + counts.works_for_me + counts.probes + counts.status
        resumed = (
            f" Resumed after {result.skipped_batches} of {result.batches} batches committed "
            "by an earlier run."
            if result.skipped_batches
            else ""
        )
        print(
            f"Imported from {file}: {counts.reports:,} reports ({counts.counted:,} counted), "
            f"{counts.works_for_me:,} works-for-me, {counts.probes:,} probe results, "
            f"{counts.status:,} status snapshots in {took:.1f} s "
            f"({events / took if took else 0:,.0f} events/s).{resumed}"
        )
        return 0

    return asyncio.run(go())


def _check_import(file: Path, catalog: Catalog, progress: _ProgressBar | None) -> int:
    from bot.importer import ImportErrors, check_file
    from bot.resolve import Resolver

    # Ids only need to exist for the check; nothing is opened or written.
    ids = {s.key: i for i, s in enumerate(catalog.services, start=1)}
    try:
        events = check_file(
            file, Resolver(catalog), ids, progress=progress.update if progress else None
        )
    except ImportErrors as exc:
        print(f"{file}: not importable:\n{exc}", file=sys.stderr)
        return 1
    finally:
        if progress:
            progress.close()
    print(f"{file}: {events:,} events, all valid. Nothing was written (--check).")
    return 0


class _ProgressBar:
    """A two-phase progress bar (checking, then writing) on a terminal."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._progress.start()

    def update(self, phase: str, done: int, total: int) -> None:
        if phase not in self._tasks:
            label = "Checking" if phase == "check" else "Importing"
            self._tasks[phase] = int(self._progress.add_task(label, total=total))
        self._progress.update(self._tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

    def close(self) -> None:
        self._progress.stop()

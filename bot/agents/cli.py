"""``outagebot agent``: check the command line, then run a remote probe agent until a signal.

Exit codes as for the rest of the CLI: 0 stopped cleanly, 1 the agent crashed (the log says
why), 2 the command line, the config or the environment is wrong (the message says what to
change). The key is read from the environment
variable named by ``--key-env`` and is never printed or logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

from bot.agents.auth import MissingKey, load_key
from bot.agents.client import AgentCrashed, AgentError, run_agent
from bot.agents.protocol import is_agent_id
from bot.agents.spool import SpoolLocked
from bot.config import Settings
from bot.regions import normalize_region

log = logging.getLogger(__name__)


def run(
    settings: Settings,
    *,
    region: str,
    core_url: str,
    key_env: str,
    agent_id: str | None,
    spool_dir: str | Path | None,
) -> int:
    """Run an agent for ``region`` against the core at ``core_url``; return the exit code."""
    code = normalize_region(region)
    if code is None:
        return _fail(f"--region {region!r} is not an ISO 3166 country code (e.g. US, GB, JP)")
    parts = urlsplit(core_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _fail(f"--core {core_url!r} is not a URL (e.g. https://core.example:8080)")
    if agent_id is None:
        agent_id, problem = _id_from_config(settings, key_env, code)
        if agent_id is None:
            return _fail(problem)
    elif not is_agent_id(agent_id):
        return _fail(f"--id {agent_id!r}: use 1-32 characters of a-z, 0-9 and -, as in [[agents]]")
    try:
        key = load_key(key_env, os.environ, where="--key-env")
    except MissingKey as exc:
        return _fail(str(exc))
    spool = Path(spool_dir) if spool_dir is not None else Path(f"outagebot-agent-{agent_id}.spool")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run_agent(
            agent_id=agent_id,
            region=code,
            core_url=core_url,
            key=key,
            probe_settings=settings.probes,
            spool_dir=spool,
            stop=stop,
        )

    try:
        asyncio.run(main())
    except AgentCrashed as exc:
        print(f"outagebot agent: {exc}", file=sys.stderr)
        return 1
    except (AgentError, SpoolLocked) as exc:
        return _fail(str(exc))
    return 0


def _id_from_config(settings: Settings, key_env: str, region: str) -> tuple[str | None, str]:
    """The ``[[agents]]`` entry with this key variable, when the agent shares the core's config."""
    matches = [a for a in settings.agents if a.key_env == key_env]
    if len(matches) != 1:
        return None, (
            f"--id is required: the config has {len(matches) or 'no'} [[agents]] entries "
            f"with key_env = {key_env!r} to take the id from"
        )
    entry = matches[0]
    if entry.region != region:
        return None, (
            f"[[agents]] {entry.id!r} is in region {entry.region}, not {region}; "
            "fix --region or the config"
        )
    return entry.id, ""


def _fail(message: str) -> int:
    print(f"outagebot agent: {message}", file=sys.stderr)
    return 2

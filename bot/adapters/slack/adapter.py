"""The Slack adapter's entry point for the registry (bot/adapters/registry.py)."""

from __future__ import annotations

from bot.adapters.base import Adapter
from bot.adapters.registry import AdapterDeps
from bot.errors import StartupError


def build(deps: AdapterDeps) -> Adapter:
    # Honest failure beats silently not connecting: the adapter is not in this build yet.
    raise StartupError(
        "[slack] enabled = true, but this build has no slack adapter yet; "
        "set [slack] enabled = false"
    )

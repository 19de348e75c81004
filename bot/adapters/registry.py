"""ADAPTERS: the chat platforms outagebot can serve, each built only when its section is enabled.

Each factory imports its platform library lazily, so a deployment with Slack only never imports
discord.py (and the core never imports either). The composition root (bot/app.py) calls
``build_adapters`` before the HTTP API starts, because Slack's HTTP mode mounts its route there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from bot.adapters.base import Adapter, Complete, Dispatch
from bot.config import Settings
from bot.spec import CommandSpec

__all__ = ["ADAPTERS", "AdapterDeps", "build_adapters"]


@dataclass(frozen=True, slots=True)
class AdapterDeps:
    """Everything an adapter factory may hand to its adapter (each takes only what it needs)."""

    settings: Settings
    dispatch: Dispatch
    complete: Complete
    specs: Mapping[str, CommandSpec]
    environ: Mapping[str, str]
    web_app: web.Application | None  # the [api] server's app, for routes like POST /slack/events


Factory = Callable[[AdapterDeps], Adapter]


def _discord(deps: AdapterDeps) -> Adapter:
    from bot.adapters.discord.adapter import build  # lazy: an optional platform

    return build(deps)


def _slack(deps: AdapterDeps) -> Adapter:
    from bot.adapters.slack.adapter import build  # lazy: an optional platform

    return build(deps)


ADAPTERS: Mapping[str, tuple[Callable[[Settings], bool], Factory]] = {
    "discord": (lambda s: s.discord.enabled, _discord),
    "slack": (lambda s: s.slack.enabled, _slack),
}


def build_adapters(deps: AdapterDeps) -> list[Adapter]:
    """The enabled chat adapters, built but not started (a config error raises StartupError)."""
    return [factory(deps) for enabled, factory in ADAPTERS.values() if enabled(deps.settings)]

"""Probe tasks (what to probe how often) and probe records (what a probe found, where, when)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.model import Catalog, Target
from bot.probes.base import Outcome


@dataclass(frozen=True, slots=True)
class ProbeTask:
    service: str  # service key
    target: Target
    interval_seconds: int
    # A URL a chat admin supplied (/service add): probed under the public policy, never with
    # the operator's allow_private ranges (RELIABILITY.md).
    public_only: bool = False

    @property
    def id(self) -> str:
        """Stable job id: the same task keeps its id across restarts and config reloads."""
        return f"probe:{self.service}:{self.target.kind}"


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    service: str
    target: str  # target kind ("web", "api")
    region: str
    at_ms: int
    outcome: Outcome


# Where results go: the core stores them and feeds confirmation; an agent signs and sends them.
ResultSink = Callable[[Sequence[ProbeRecord]], Awaitable[None]]


def tasks_from_catalog(
    catalog: Catalog, default_interval: int, *, public_only: bool = False
) -> list[ProbeTask]:
    return [
        ProbeTask(service.key, target, target.interval_seconds or default_interval, public_only)
        for service in catalog.services
        for target in service.targets
    ]

"""The evidence about one service in a time window: what the store hands the verdict.

Pure data. The store fills it in one read transaction; ``bot.verdict.decide`` turns it into a
Verdict without any I/O, so a verdict "as of" any past moment is the same function on older data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.model import MaintenanceWindow, Service, StatusSnapshot


@dataclass(frozen=True, slots=True)
class ProbeSample:
    """One probe result inside the window (``at`` in epoch seconds, with milliseconds)."""

    target: str
    region: str
    at: float
    ok: bool
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the verdict may look at, gathered as of ``at``."""

    service: Service
    at: datetime
    probes: tuple[ProbeSample, ...] = ()  # oldest first
    reports: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (region, problem) -> n
    # Counted reports per region in the hour of ``at`` on each of the previous days, oldest first:
    # the history a detector turns into the usual level for this time of day.
    history: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    history_days: int = 0
    works_for_me: Mapping[str, int] = field(default_factory=dict)
    status: StatusSnapshot | None = None
    maintenance: MaintenanceWindow | None = None
    last_report_at: datetime | None = None
    last_probe_at: datetime | None = None

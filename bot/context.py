"""What every command handler receives: the collaborators, passed explicitly (no singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Settings
from bot.model import Catalog, utcnow
from bot.resolve import Resolver
from bot.store import ReportRules, Store
from bot.verdicts import VerdictService


@dataclass(frozen=True, slots=True)
class CommandContext:
    settings: Settings
    catalog: Catalog
    store: Store
    resolver: Resolver
    verdicts: VerdictService
    clock: Callable[[], datetime] = field(default=utcnow)

    @property
    def report_rules(self) -> ReportRules:
        r = self.settings.reports
        return ReportRules(
            dedupe_seconds=r.dedupe_minutes * 60,
            tenant_cap=r.tenant_cap,
            user_hourly_limit=r.user_hourly_limit,
        )

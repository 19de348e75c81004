"""What every command handler receives: the collaborators, passed explicitly (no singletons)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from bot.config import Settings
from bot.model import Catalog, utcnow
from bot.probing.ondemand import OnDemand
from bot.resolve import Resolver
from bot.store import ReportRules, Store
from bot.verdicts import VerdictService

if TYPE_CHECKING:
    from bot.agents.hub import AgentStatus
    from bot.digests import DigestScheduler
    from bot.invocation import Invocation
    from bot.tenants import TenantCatalogs


class AgentDirectory(Protocol):
    """What /agents needs from the agent hub."""

    async def status(self) -> list[AgentStatus]: ...


@dataclass(frozen=True, slots=True)
class CommandContext:
    settings: Settings
    catalog: Catalog
    store: Store
    resolver: Resolver
    verdicts: VerdictService
    clock: Callable[[], datetime] = field(default=utcnow)
    ondemand: OnDemand | None = None  # None when probing is off: URLs cannot be checked
    agents: AgentDirectory | None = None  # probe agents' health, for /agents
    tenants: TenantCatalogs | None = None  # services each guild or workspace added
    digests: DigestScheduler | None = None  # re-derived when subscriptions change

    def resolver_for(self, inv: Invocation) -> Resolver:
        """The catalog as this guild or workspace sees it (the shared one in DMs)."""
        if self.tenants is None:
            return self.resolver
        return self.tenants.resolver(inv.platform, inv.tenant)

    @property
    def report_rules(self) -> ReportRules:
        r = self.settings.reports
        return ReportRules(
            dedupe_seconds=r.dedupe_minutes * 60,
            tenant_cap=r.tenant_cap,
            user_hourly_limit=r.user_hourly_limit,
        )

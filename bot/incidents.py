"""Incidents from verdicts: one per service at a time, opened, updated and resolved with hysteresis.

A scheduled pass asks the verdict of every service (one store call at a time, so chat commands
are never queued behind a whole pass) and compares it with the open incident:

- It opens when the verdict is alertable: at once for ``down`` and ``regional`` (probes already
  needed ``confirm_failures`` failures in a row), after ``open_after`` passes in a row for
  ``user_reports`` and ``degraded`` (crowd reports and latency are noisier).
- It is updated when what a subscriber would read changes: category, failing regions, failing
  targets, report level or the official status.
- It resolves only after the service has been quiet (not alertable) for ``resolve_after``, so a
  flapping target gives one incident instead of a flood. Quiet time is stored in the incident, so
  a restart does not reset it.
- Maintenance (declared, or announced by the status page) is recorded as an incident marked
  ``suppressed``: alerts for it are not sent, but nothing is lost.

Each pass returns the changes it wrote; the alert outbox consumes them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.alerts import alert_spec
from bot.model import Category, RegionState, Service, TargetState, to_epoch, utcnow
from bot.store import IncidentRow, IncidentWrite, Store
from bot.verdict import Verdict
from bot.verdicts import VerdictService

__all__ = ["ALERTABLE", "IncidentChange", "IncidentPolicy", "IncidentTracker", "snapshot"]

log = logging.getLogger(__name__)

ALERTABLE = frozenset({Category.DOWN, Category.REGIONAL, Category.USER_REPORTS, Category.DEGRADED})
# Crowd reports and latency are noisier than confirmed probe failures: they must persist.
_NOISY = frozenset({Category.USER_REPORTS, Category.DEGRADED})
_SNAPSHOT_KEYS = ("category", "regions", "targets", "level", "status")


@dataclass(frozen=True, slots=True)
class IncidentPolicy:
    open_after: int = 2  # passes in a row before user_reports / degraded opens an incident
    resolve_after: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class IncidentChange:
    kind: str  # "open", "update" or "resolve"
    incident_id: int
    service: Service
    verdict: Verdict
    opened_at: datetime
    suppressed: bool  # inside maintenance: record, do not alert


def snapshot(verdict: Verdict) -> dict[str, Any]:
    """What a subscriber reads in an alert; a change in it is an update."""
    return {
        "category": verdict.category.value,
        "regions": sorted(
            r.region
            for r in verdict.regions
            if r.state in (RegionState.DOWN, RegionState.PARTIAL, RegionState.USER_REPORTS)
        ),
        "targets": sorted(t.target for t in verdict.targets if t.state is not TargetState.OK),
        "level": verdict.reports.level.value,
        "status": verdict.status.indicator.value if verdict.status else None,
    }


def _view(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: detail.get(key) for key in _SNAPSHOT_KEYS}


class IncidentTracker:
    def __init__(
        self,
        store: Store,
        verdicts: VerdictService,
        services: Callable[[], Sequence[Service]],
        *,
        policy: IncidentPolicy = IncidentPolicy(),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._verdicts = verdicts
        self._services = services
        self._policy = policy
        self._clock = clock
        self._streak: dict[str, int] = {}  # service key -> alertable passes in a row
        self.on_change: Callable[[], None] | None = None  # e.g. wake the alert dispatcher

    async def run_pass(self) -> list[IncidentChange]:
        """Evaluate every service once; write and return what changed."""
        open_rows = {row.service: row for row in await self._store.open_incidents()}
        changes: list[IncidentChange] = []
        for service in self._services():
            verdict = await self._verdicts.verdict(service, self._clock())
            change = await self._consider(service, verdict, open_rows.get(service.key))
            if change is not None:
                changes.append(change)
        return changes

    async def _consider(
        self, service: Service, verdict: Verdict, row: IncidentRow | None
    ) -> IncidentChange | None:
        at = to_epoch(verdict.at)
        category = verdict.category
        maintenance = category is Category.MAINTENANCE
        # Maintenance is recorded like an incident, but suppressed: no alert goes out for it.
        active = category in ALERTABLE or maintenance
        streak = self._streak[service.key] = self._streak.get(service.key, 0) + 1 if active else 0
        new = {**snapshot(verdict), "quiet_since": None, "suppressed": maintenance}
        if row is None:
            if not active or (category in _NOISY and streak < self._policy.open_after):
                return None
            return await self._write("open", service, verdict, new, None, at, at)
        if active:
            if _view(new) != _view(row.detail):
                return await self._write("update", service, verdict, new, row.id, row.opened_at, at)
            if row.detail.get("quiet_since") is not None:
                # Active again before resolving: the same incident goes on, quietly.
                await self._record(service, row, at, new)
            return None
        quiet_since = row.detail.get("quiet_since")
        if quiet_since is None:
            await self._record(service, row, at, {**row.detail, "quiet_since": at})
            return None
        if at - int(quiet_since) < self._policy.resolve_after.total_seconds():
            return None
        return await self._write(
            "resolve", service, verdict, dict(row.detail), row.id, row.opened_at, at
        )

    async def _record(
        self, service: Service, row: IncidentRow, at: int, detail: dict[str, Any]
    ) -> None:
        """Change the stored detail without telling anyone (no IncidentChange, no alert)."""
        await self._store.write_incidents(
            [IncidentWrite("update", service.key, row.category, at, detail, row.id)]
        )

    async def _write(
        self,
        kind: str,
        service: Service,
        verdict: Verdict,
        detail: dict[str, Any],
        incident_id: int | None,
        opened_at: int,
        at: int,
    ) -> IncidentChange:
        category = verdict.category.value if kind != "resolve" else str(detail["category"])
        suppressed = bool(detail.get("suppressed"))
        opened = datetime.fromtimestamp(opened_at, verdict.at.tzinfo)
        moment = datetime.fromtimestamp(at, verdict.at.tzinfo)
        # The alert rows are queued in the same transaction as the change (the outbox rule).
        alert = (
            None
            if suppressed
            else alert_spec(kind, service, verdict, category=category, opened_at=opened, at=moment)
        )
        (iid,) = await self._store.write_incidents(
            [IncidentWrite(kind, service.key, category, at, detail, incident_id, alert)]
        )
        log.info("incident %s id=%d service=%s category=%s", kind, iid, service.key, category)
        if self.on_change is not None:
            self.on_change()
        return IncidentChange(kind, iid, service, verdict, opened, suppressed)

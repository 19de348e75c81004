"""Failure confirmation per (service, target, region), and when to ask for re-checks.

A state machine per series: ``confirm_failures`` consecutive failures open it (failing),
``recover_successes`` consecutive passes close it (gatus's 3 and 2). The first failure after a
pass is a *suspicion*: instead of waiting a whole interval per probe, the coordinator asks the
same region for quick re-checks and every other region for one re-check at once. A hard-down
target is then confirmed everywhere within seconds, and a one-region blip is told from a global
outage; a target that fails one probe in ten never opens anything, because its quick re-checks
pass.

Pure: ``observe`` returns what changed; the caller does the I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from bot.probing.tasks import ProbeRecord


class Change(enum.StrEnum):
    SUSPECT = "suspect"  # first failure after passes: re-check now, here and elsewhere
    OPENED = "opened"  # confirmed failing
    CLOSED = "closed"  # recovered


@dataclass(slots=True)
class SeriesState:
    failing: bool = False
    run: int = 0  # length of the streak that would flip the state
    last_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class Transition:
    service: str
    target: str
    region: str
    change: Change
    at_ms: int


@dataclass(slots=True)
class Confirmer:
    failures: int = 3
    successes: int = 2
    states: dict[tuple[str, str, str], SeriesState] = field(default_factory=dict)

    def observe(self, record: ProbeRecord) -> Transition | None:
        """Feed one result (in time order per series); return the change it caused, if any."""
        key = (record.service, record.target, record.region)
        state = self.states.setdefault(key, SeriesState())
        if record.at_ms < state.last_at_ms:
            return None  # a late, out-of-order result: the newer ones already decided
        state.last_at_ms = record.at_ms
        ok = record.outcome.ok
        if ok != state.failing:
            state.run = 0  # the current state holds: no streak towards flipping it
            return None
        state.run += 1
        needed = self.successes if state.failing else self.failures
        if state.run >= needed:
            state.failing = not state.failing
            state.run = 0
            change = Change.OPENED if state.failing else Change.CLOSED
            return Transition(*key, change, record.at_ms)
        if not state.failing and state.run == 1:
            return Transition(*key, Change.SUSPECT, record.at_ms)
        return None

    def failing(self) -> set[tuple[str, str, str]]:
        return {key for key, state in self.states.items() if state.failing}

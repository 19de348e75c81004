"""The verdict: a pure function from the evidence about one service to one answer.

``/isitdown``, alerts, digests and the HTTP API all call ``decide``. The rules, in order:

1. no probes, reports, confirmations, status or report history in the windows -> ``unknown``;
2. inside a maintenance window, or the status page says maintenance -> ``maintenance``;
3. a (target, region) is failing after ``confirm_failures`` consecutive failed probes and recovers
   after ``recover_successes`` passes; a region is failing if any of its targets is. Failing in at
   least two regions and in more than ``down_share`` of the regions with probe data -> ``down``;
   failing somewhere else -> ``regional``;
4. the status page says major or critical and no probe data contradicts it -> ``down``;
5. reports above the usual level (``problems``) in any region or overall -> ``user_reports``
   (reports alone never say "down for everyone");
6. probes pass but slower than the threshold, or the status page reports an incident while our
   probes pass -> ``degraded``;
7. otherwise -> ``up`` ("if it fails for you, it is probably on your side").
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.confirmation import confirmed_failing
from bot.detector import Detector
from bot.evidence import Evidence, ProbeSample
from bot.i18n import Message, RegionList
from bot.model import (
    Category,
    Indicator,
    MaintenanceWindow,
    Problem,
    RegionState,
    ReportLevel,
    StatusSnapshot,
    TargetState,
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    report_window_seconds: int = 1800
    confirm_failures: int = 3
    recover_successes: int = 2
    down_share: float = 0.5
    slow_ms: float = 3000.0


@dataclass(frozen=True, slots=True)
class RegionRow:
    region: str
    state: RegionState
    probe_ok: int = 0
    probe_failed: int = 0
    latency_ms: float | None = None
    reports: int = 0
    usual: float = 0.0
    level: ReportLevel = ReportLevel.NONE
    works_for_me: int = 0


@dataclass(frozen=True, slots=True)
class TargetRow:
    target: str
    state: TargetState
    failing_regions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProblemShare:
    kind: Problem
    count: int
    share: float  # 0..1


@dataclass(frozen=True, slots=True)
class ReportSummary:
    recent: int
    usual: float
    level: ReportLevel


@dataclass(frozen=True, slots=True)
class Verdict:
    service: str
    name: str
    at: datetime
    category: Category
    headline: Message
    notes: tuple[Message, ...] = ()
    regions: tuple[RegionRow, ...] = ()
    targets: tuple[TargetRow, ...] = ()
    problems: tuple[ProblemShare, ...] = ()
    reports: ReportSummary = ReportSummary(0, 0.0, ReportLevel.NONE)
    works_for_me: int = 0
    status: StatusSnapshot | None = None
    maintenance: MaintenanceWindow | None = None
    probes_at: datetime | None = None
    reports_at: datetime | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


_REGION_ORDER = {
    RegionState.DOWN: 0,
    RegionState.PARTIAL: 1,
    RegionState.USER_REPORTS: 2,
    RegionState.SLOW: 3,
    RegionState.OK: 4,
    RegionState.NO_DATA: 5,
}


def decide(ev: Evidence, t: Thresholds, detector: Detector) -> Verdict:
    """The verdict for ``ev`` under thresholds ``t``; pure and deterministic."""
    name = ev.service.name
    probes = _probe_view(ev, t)
    reports = _report_view(ev, t, detector)
    wfm = dict(ev.works_for_me)

    regions = sorted(set(probes.by_region) | set(reports.recent) | set(wfm))
    rows = tuple(
        sorted(
            (_region_row(r, probes, reports, wfm.get(r, 0), t) for r in regions),
            key=lambda row: (_REGION_ORDER[row.state], -row.reports, row.region),
        )
    )
    targets = _target_rows(ev, probes, t)
    problems = _problem_shares(ev.reports)
    summary = ReportSummary(reports.total, reports.total_usual, reports.total_level)

    failing = tuple(r.region for r in rows if r.state in (RegionState.DOWN, RegionState.PARTIAL))
    passing = tuple(
        r.region for r in rows if r.region in probes.by_region and r.region not in failing
    )
    slow = tuple(r.region for r in rows if r.state is RegionState.SLOW)
    reporting = tuple(r.region for r in rows if r.level is ReportLevel.PROBLEMS)
    status = ev.status

    has_evidence = bool(
        ev.probes or reports.total or wfm or status or ev.maintenance or reports.has_history
    )
    category, headline = _classify(
        name=name,
        has_evidence=has_evidence,
        ev=ev,
        failing=failing,
        passing=passing,
        slow=slow,
        reporting=reporting,
        summary=summary,
        problems=problems,
        probed=len(probes.by_region),
        t=t,
    )
    return Verdict(
        service=ev.service.key,
        name=name,
        at=ev.at,
        category=category,
        headline=headline,
        notes=_notes(targets, status, sum(wfm.values()), category),
        regions=rows,
        targets=targets,
        problems=problems,
        reports=summary,
        works_for_me=sum(wfm.values()),
        status=status,
        maintenance=ev.maintenance,
        probes_at=ev.last_probe_at,
        reports_at=ev.last_report_at,
    )


# ---- probes ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Probes:
    # region -> target -> results oldest first
    by_region: dict[str, dict[str, list[ProbeSample]]] = field(default_factory=dict)
    failing: set[tuple[str, str]] = field(default_factory=set)  # (target, region)
    slow: set[tuple[str, str]] = field(default_factory=set)


def _probe_view(ev: Evidence, t: Thresholds) -> _Probes:
    view = _Probes()
    # A target's own max_latency_ms overrides the global slow threshold.
    slow_ms = {tg.kind: tg.max_latency_ms for tg in ev.service.targets if tg.max_latency_ms}
    samples = ev.probes
    for s in samples:
        view.by_region.setdefault(s.region, {}).setdefault(s.target, []).append(s)
    for region, targets in view.by_region.items():
        for target, results in targets.items():
            oks = [r.ok for r in results]
            if confirmed_failing(oks, failures=t.confirm_failures, successes=t.recover_successes):
                view.failing.add((target, region))
                continue
            latency = _median_latency(results)
            if latency is not None and latency > slow_ms.get(target, t.slow_ms):
                view.slow.add((target, region))
    return view


def _median_latency(results: list[ProbeSample]) -> float | None:
    values = [r.latency_ms for r in results if r.ok and r.latency_ms is not None]
    return statistics.median(values) if values else None


def _target_rows(ev: Evidence, probes: _Probes, t: Thresholds) -> tuple[TargetRow, ...]:
    kinds = [tg.kind for tg in ev.service.targets]
    seen = {target for targets in probes.by_region.values() for target in targets}
    kinds += sorted(seen - set(kinds))
    rows = []
    for kind in kinds:
        regions = [r for r, targets in probes.by_region.items() if kind in targets]
        failing = tuple(sorted(r for r in regions if (kind, r) in probes.failing))
        if not regions:
            state = TargetState.NO_DATA
        elif failing and _is_quorum(len(failing), len(regions), t):
            state = TargetState.DOWN
        elif failing:
            state = TargetState.REGIONAL
        elif any((kind, r) in probes.slow for r in regions):
            state = TargetState.SLOW
        else:
            state = TargetState.OK
        rows.append(TargetRow(kind, state, failing))
    return tuple(rows)


def _is_quorum(failing: int, probed: int, t: Thresholds) -> bool:
    # "Most regions", and never fewer than two: one vantage point cannot see "everyone".
    return failing >= 2 and failing > t.down_share * probed


# ---- reports --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reports:
    recent: dict[str, int]
    usual: dict[str, float]
    level: dict[str, ReportLevel]
    total: int
    total_usual: float
    total_level: ReportLevel
    has_history: bool


def _report_view(ev: Evidence, t: Thresholds, detector: Detector) -> _Reports:
    recent: dict[str, int] = defaultdict(int)
    for (region, _problem), n in ev.reports.items():
        recent[region] += n
    usual: dict[str, float] = {}
    level: dict[str, ReportLevel] = {}
    for region in set(recent) | set(ev.history):
        a = detector.assess(
            recent.get(region, 0),
            _padded(ev.history.get(region, ()), ev.history_days),
            window_seconds=t.report_window_seconds,
        )
        usual[region], level[region] = a.usual, a.level
    days = ev.history_days
    totals = [
        sum(col) for col in zip(*(_padded(h, days) for h in ev.history.values()), strict=True)
    ]
    total = sum(recent.values())
    overall = detector.assess(
        total, totals or _padded((), days), window_seconds=t.report_window_seconds
    )
    return _Reports(
        recent=dict(recent),
        usual=usual,
        level=level,
        total=total,
        total_usual=overall.usual,
        total_level=overall.level,
        has_history=any(sum(h) for h in ev.history.values()),
    )


def _padded(history: tuple[int, ...], days: int) -> tuple[int, ...]:
    return history if len(history) >= days else (0,) * (days - len(history)) + history


def _problem_shares(reports: Mapping[tuple[str, str], int]) -> tuple[ProblemShare, ...]:
    counts: dict[Problem, int] = defaultdict(int)
    for (_region, problem), n in reports.items():
        counts[Problem(problem) if problem in Problem.__members__.values() else Problem.OTHER] += n
    total = sum(counts.values())
    if not total:
        return ()
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].value))
    return tuple(ProblemShare(kind, n, n / total) for kind, n in ordered if n)


# ---- rows and the decision -------------------------------------------------------------------


def _region_row(
    region: str, probes: _Probes, reports: _Reports, wfm: int, t: Thresholds
) -> RegionRow:
    targets = probes.by_region.get(region, {})
    results = [s for samples in targets.values() for s in samples]
    failing = [tg for tg in targets if (tg, region) in probes.failing]
    level = reports.level.get(region, ReportLevel.NONE)
    if targets and failing and len(failing) == len(targets):
        state = RegionState.DOWN
    elif failing:
        state = RegionState.PARTIAL
    elif level is ReportLevel.PROBLEMS:
        state = RegionState.USER_REPORTS
    elif any((tg, region) in probes.slow for tg in targets):
        state = RegionState.SLOW
    else:
        state = RegionState.OK
    return RegionRow(
        region=region,
        state=state,
        probe_ok=sum(1 for s in results if s.ok),
        probe_failed=sum(1 for s in results if not s.ok),
        latency_ms=_median_latency(results),
        reports=reports.recent.get(region, 0),
        usual=round(reports.usual.get(region, 0.0), 2),
        level=level,
        works_for_me=wfm,
    )


def _classify(
    *,
    name: str,
    has_evidence: bool,
    ev: Evidence,
    failing: tuple[str, ...],
    passing: tuple[str, ...],
    slow: tuple[str, ...],
    reporting: tuple[str, ...],
    summary: ReportSummary,
    problems: tuple[ProblemShare, ...],
    probed: int,
    t: Thresholds,
) -> tuple[Category, Message]:
    status = ev.status
    if not has_evidence:
        return Category.UNKNOWN, Message("headline.unknown", name=name)
    if ev.maintenance or (status and status.indicator is Indicator.MAINTENANCE):
        note = ev.maintenance.note if ev.maintenance else status.description if status else ""
        return Category.MAINTENANCE, Message("headline.maintenance", name=name, note=note)
    if failing and _is_quorum(len(failing), probed, t):
        return Category.DOWN, Message("headline.down", name=name, regions=RegionList(failing))
    if failing:
        if not passing:
            return Category.REGIONAL, Message(
                "headline.regional_only", name=name, regions=RegionList(failing)
            )
        return Category.REGIONAL, Message(
            "headline.regional", name=name, regions=RegionList(failing), ok=RegionList(passing)
        )
    official_outage = status is not None and status.indicator in (
        Indicator.MAJOR,
        Indicator.CRITICAL,
    )
    if official_outage and not probed and status is not None:
        return Category.DOWN, Message(
            "headline.down_official", name=name, status=status.description
        )
    if summary.level is ReportLevel.PROBLEMS or reporting:
        top = problems[0] if problems else None
        return Category.USER_REPORTS, Message(
            "headline.user_reports" if probed else "headline.user_reports_no_probes",
            name=name,
            regions=RegionList(reporting),
            problem=Message(f"problem.{top.kind.value if top else Problem.OTHER.value}"),
            share=round(top.share * 100) if top else 0,
        )
    if slow:
        return Category.DEGRADED, Message("headline.slow", name=name, regions=RegionList(slow))
    if status is not None and status.indicator in (
        Indicator.MINOR,
        Indicator.MAJOR,
        Indicator.CRITICAL,
    ):
        return Category.DEGRADED, Message(
            "headline.degraded_official", name=name, status=status.description
        )
    if not probed:
        return Category.UP, Message("headline.up_no_probes", name=name)
    return Category.UP, Message("headline.up", name=name)


def _notes(
    targets: tuple[TargetRow, ...], status: StatusSnapshot | None, wfm: int, category: Category
) -> tuple[Message, ...]:
    notes: list[Message] = []
    broken = [r.target for r in targets if r.state in (TargetState.DOWN, TargetState.REGIONAL)]
    working = [r.target for r in targets if r.state in (TargetState.OK, TargetState.SLOW)]
    if broken and working:
        # "works in the app, fails on the website": the per-target split is the useful part.
        notes.append(
            Message("note.targets_split", broken=", ".join(broken), working=", ".join(working))
        )
    if status is not None:
        key = (
            "note.status_disagrees"
            if (
                status.indicator is Indicator.NONE
                and category in (Category.DOWN, Category.REGIONAL, Category.USER_REPORTS)
            )
            else "note.status"
        )
        notes.append(Message(key, status=status.description, indicator=status.indicator.value))
    if wfm:
        notes.append(Message("note.works_for_me", count=wfm))
    return tuple(notes)


def evidence_age(verdict: Verdict) -> dict[str, datetime | None]:
    """When each kind of evidence was last seen, for freshness footers."""
    return {
        "probes": verdict.probes_at,
        "reports": verdict.reports_at,
        "status": verdict.status.at if verdict.status else None,
    }


__all__ = ["Thresholds", "Verdict", "decide", "evidence_age"]

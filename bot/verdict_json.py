"""The JSON form of a Verdict: a public contract (API, ``outagebot status --json``).

Keys: service, name, at, verdict, headline, regions[{region, state, probe_ok, probe_failed,
reports, usual, works_for_me}], targets[{target, state}], problems[{kind, share}],
reports{recent, usual, level}, works_for_me, status_page (null or {indicator, description, at}).
Added keys are allowed in later versions; these never change meaning.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.i18n import render
from bot.verdict import Verdict


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def verdict_to_json(v: Verdict, lang: str = "en") -> dict[str, Any]:
    return {
        "service": v.service,
        "name": v.name,
        "at": _iso(v.at),
        "verdict": v.category.value,
        "headline": render(v.headline, lang),
        "notes": [render(n, lang) for n in v.notes],
        "regions": [
            {
                "region": r.region,
                "state": r.state.value,
                "probe_ok": r.probe_ok,
                "probe_failed": r.probe_failed,
                "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1),
                "reports": r.reports,
                "usual": r.usual,
                "level": r.level.value,
                "works_for_me": r.works_for_me,
            }
            for r in v.regions
        ],
        "targets": [
            {"target": t.target, "state": t.state.value, "failing_regions": list(t.failing_regions)}
            for t in v.targets
        ],
        "problems": [{"kind": p.kind.value, "share": round(p.share, 4)} for p in v.problems],
        "reports": {
            "recent": v.reports.recent,
            "usual": round(v.reports.usual, 2),
            "level": v.reports.level.value,
        },
        "works_for_me": v.works_for_me,
        "status_page": None
        if v.status is None
        else {
            "indicator": v.status.indicator.value,
            "description": v.status.description,
            "at": _iso(v.status.at),
        },
        "evidence": {"probes_at": _iso(v.probes_at), "reports_at": _iso(v.reports_at)},
    }

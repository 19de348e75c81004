"""The verdict rules, table-driven, each case named after the real outage whose shape it has.

Evidence is built directly (the verdict is a pure function); the store's part is tested elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from bot.detector import ThresholdDetector
from bot.evidence import Evidence, ProbeSample
from bot.i18n import render
from bot.model import (
    Category,
    Indicator,
    MaintenanceWindow,
    Problem,
    RegionState,
    ReportLevel,
    Service,
    StatusSnapshot,
    Target,
    TargetState,
)
from bot.verdict import Thresholds, decide

AT = datetime(2022, 12, 28, 21, 30, tzinfo=UTC)
NOW = int(AT.timestamp())
REGIONS = ("US", "JP", "GB", "FR")
SERVICE = Service(
    "svc",
    "Example",
    targets=(
        Target("web", "https://example.invalid/"),
        Target("api", "https://api.example.invalid/"),
    ),
)
DETECTOR = ThresholdDetector(min_reports=5, problem_factor=3.0, possible_factor=1.5)
T = Thresholds(report_window_seconds=1800, confirm_failures=3, recover_successes=2, slow_ms=3000)


def probes(
    pattern: str,
    *,
    regions: tuple[str, ...] = REGIONS,
    targets: tuple[str, ...] = ("web", "api"),
    latency: float = 120.0,
) -> list[ProbeSample]:
    """Probe history from a pattern, oldest first: '.' passed, 'x' failed, 30 s apart."""
    out = []
    for i, ch in enumerate(pattern):
        at = NOW - (len(pattern) - i) * 30
        for region in regions:
            for target in targets:
                ok = ch == "."
                out.append(
                    ProbeSample(
                        target,
                        region,
                        at,
                        ok,
                        200 if ok else 503,
                        latency if ok else None,
                        None if ok else "status",
                    )
                )
    return out


@dataclass
class Case:
    probes: list[ProbeSample] = field(default_factory=list)
    reports: dict[tuple[str, str], int] = field(default_factory=dict)
    history: dict[str, tuple[int, ...]] = field(default_factory=dict)
    works_for_me: dict[str, int] = field(default_factory=dict)
    status: tuple[Indicator, str] | None = None
    maintenance: bool = False

    def evidence(self) -> Evidence:
        return Evidence(
            service=SERVICE,
            at=AT,
            probes=tuple(sorted(self.probes, key=lambda p: p.at)),
            reports=self.reports,
            history=self.history,
            history_days=14,
            works_for_me=self.works_for_me,
            status=None
            if self.status is None
            else StatusSnapshot("svc", AT, self.status[0], self.status[1]),
            maintenance=MaintenanceWindow("svc", AT, AT.replace(hour=23), "Database upgrade")
            if self.maintenance
            else None,
        )


TWITTER_2022_12_28 = Case(
    # Downdetector: >10,000 US reports, ~2,500 each in Japan and the UK, mostly the website;
    # the mobile app worked; the status page said all systems operational; the owner said
    # "works for me". Probes of the public endpoints passed.
    probes=probes("." * 10),
    reports={
        ("US", "website"): 8800,
        ("US", "app"): 1300,
        ("JP", "website"): 2500,
        ("GB", "website"): 2400,
        ("GB", "login"): 100,
    },
    history={"US": (20,) * 14, "JP": (6,) * 14, "GB": (6,) * 14, "FR": (3,) * 14},
    works_for_me={"US": 1},
    status=(Indicator.NONE, "All Systems Operational"),
)

CASES: dict[str, tuple[Case, Category]] = {
    "twitter_2022_12_28_website_broken_probes_pass": (TWITTER_2022_12_28, Category.USER_REPORTS),
    # Facebook 2021-10-04: BGP routes withdrawn, DNS gone, unreachable from everywhere.
    "facebook_2021_10_04_unreachable_everywhere": (
        Case(probes=probes("....xxxxxx"), reports={("US", "app"): 900, ("GB", "website"): 300}),
        Category.DOWN,
    ),
    # Fastly 2021-06-08: a config change made most edges answer 503 worldwide for an hour.
    "fastly_2021_06_08_503_worldwide": (
        Case(probes=probes("xxxxx"), status=(Indicator.MAJOR, "Investigating")),
        Category.DOWN,
    ),
    # AWS us-east-1 2021-12-07: broken from the US, fine from Europe and Asia.
    "aws_us_east_1_2021_12_07_one_region": (
        Case(probes=probes("xxxx", regions=("US",)) + probes("....", regions=("JP", "GB", "FR"))),
        Category.REGIONAL,
    ),
    # Two of four regions is not "most": Japan and the UK down, the US and France fine.
    "down_in_japan_and_the_uk": (
        Case(probes=probes("xxxx", regions=("JP", "GB")) + probes("....", regions=("US", "FR"))),
        Category.REGIONAL,
    ),
    # Slack 2021-01-04: after the holidays, slow then failing; here the slow phase.
    "slack_2021_01_04_slow_phase": (
        Case(probes=probes("......", latency=4500.0)),
        Category.DEGRADED,
    ),
    # Discord planned maintenance: announced on the status page.
    "discord_status_page_maintenance": (
        Case(probes=probes("xxx"), status=(Indicator.MAINTENANCE, "Scheduled maintenance")),
        Category.MAINTENANCE,
    ),
    "declared_maintenance_window": (
        Case(probes=probes("...."), maintenance=True),
        Category.MAINTENANCE,
    ),
    # GitHub 2020-02-27 style: status page says major outage, no probes configured here.
    "github_status_major_no_probes": (
        Case(status=(Indicator.MAJOR, "Major outage: Git operations")),
        Category.DOWN,
    ),
    "status_minor_while_probes_pass": (
        Case(probes=probes("...."), status=(Indicator.MINOR, "Degraded performance: Actions")),
        Category.DEGRADED,
    ),
    # Reports alone never say "down for everyone".
    "reports_without_probes": (
        Case(reports={("US", "login"): 400}, history={"US": (2,) * 14}),
        Category.USER_REPORTS,
    ),
    "quiet_day_everything_passes": (
        Case(probes=probes("........"), reports={("US", "website"): 4}, history={"US": (10,) * 14}),
        Category.UP,
    ),
    # A busy service's normal evening is not an outage: 200 reports against a usual 150.
    "busy_service_usual_evening": (
        Case(probes=probes("...."), reports={("US", "app"): 200}, history={"US": (300,) * 14}),
        Category.UP,
    ),
    "busy_service_real_spike": (
        Case(probes=probes("...."), reports={("US", "app"): 600}, history={"US": (300,) * 14}),
        Category.USER_REPORTS,
    ),
    "blip_one_probe_in_ten_fails": (Case(probes=probes(".....x....")), Category.UP),
    "two_failures_are_not_confirmed": (Case(probes=probes("......xx")), Category.UP),
    "recovering_needs_two_successes": (Case(probes=probes("xxxxx.")), Category.DOWN),
    "recovered_after_two_successes": (Case(probes=probes("xxxxx..")), Category.UP),
    "only_history_no_recent_signal": (Case(history={"US": (3,) * 14}), Category.UP),
    "no_evidence_at_all": (Case(), Category.UNKNOWN),
}


@pytest.mark.parametrize("name", list(CASES))
def test_category(name: str) -> None:
    case, expected = CASES[name]
    verdict = decide(case.evidence(), T, DETECTOR)
    assert verdict.category is expected, render(verdict.headline)


def test_founding_example_shows_the_whole_picture() -> None:
    v = decide(TWITTER_2022_12_28.evidence(), T, DETECTOR)
    headline = render(v.headline)
    assert "Probes pass" in headline and "website" in headline
    # Per region: reports against the usual level, most affected first.
    assert [r.region for r in v.regions] == ["US", "GB", "JP", "FR"]
    us = v.regions[0]
    assert us.reports == 10100 and us.state is RegionState.USER_REPORTS
    assert us.usual == pytest.approx(10.0)  # 20 per hour -> 10 per 30-minute window
    assert us.works_for_me == 1 and us.probe_failed == 0
    assert v.regions[-1].state is RegionState.OK  # France: no unusual reports
    # Mostly the website.
    assert v.problems[0].kind is Problem.WEBSITE and v.problems[0].share > 0.8
    assert v.reports.level is ReportLevel.PROBLEMS and v.reports.recent == 15100
    # The official line, flagged as disagreeing, and the "works for me" beside it.
    notes = [render(n) for n in v.notes]
    assert any("All Systems Operational" in n and "disagrees" in n for n in notes)
    assert any("1 person said it works" in n for n in notes)
    assert all(t.state is TargetState.OK for t in v.targets)


def test_regional_headline_names_the_regions() -> None:
    case, _ = CASES["down_in_japan_and_the_uk"]
    v = decide(case.evidence(), T, DETECTOR)
    # Most affected first, then by code: deterministic for golden files and alerts.
    assert (
        render(v.headline) == "Example is down in the UK and Japan; it works in France and the US."
    )


def test_single_region_cannot_say_everyone() -> None:
    v = decide(Case(probes=probes("xxxx", regions=("US",))).evidence(), T, DETECTOR)
    assert v.category is Category.REGIONAL
    assert "no other region" in render(v.headline)


def test_web_down_api_up_is_split_per_target() -> None:
    case = Case(probes=probes("xxxx", targets=("web",)) + probes("....", targets=("api",)))
    v = decide(case.evidence(), T, DETECTOR)
    assert v.category is Category.DOWN
    states = {t.target: t.state for t in v.targets}
    assert states == {"web": TargetState.DOWN, "api": TargetState.OK}
    assert all(r.state is RegionState.PARTIAL for r in v.regions)
    assert "Failing: web. Working: api." in [render(n) for n in v.notes]


def test_target_threshold_overrides_global_slow() -> None:
    service = Service(
        "svc", "Example", targets=(Target("web", "https://e.invalid/", max_latency_ms=200),)
    )
    ev = Evidence(
        service=service, at=AT, probes=tuple(probes("....", targets=("web",), latency=250))
    )
    assert decide(ev, T, DETECTOR).category is Category.DEGRADED


def test_down_quorum_is_configurable() -> None:
    case, _ = CASES["down_in_japan_and_the_uk"]
    loose = Thresholds(down_share=0.4)
    assert decide(case.evidence(), loose, DETECTOR).category is Category.DOWN


def test_unknown_problem_strings_count_as_other() -> None:
    v = decide(Case(reports={("US", "weird"): 10}).evidence(), T, DETECTOR)
    assert [(p.kind, p.count) for p in v.problems] == [(Problem.OTHER, 10)]

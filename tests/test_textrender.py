"""Plain and rich rendering of replies: built from hand-made Verdicts, since the renderers are pure.

The end-to-end rendering of a verdict from a real store is pinned by the golden test in
tests/adapters/test_console.py.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from rich.console import Console, RenderableType

from bot.charts import ChartData
from bot.i18n import Message, RegionList
from bot.model import (
    Category,
    Indicator,
    Problem,
    RegionState,
    ReportLevel,
    StatusSnapshot,
    TargetState,
)
from bot.reply import Button, Reply, ReplyKind, error, info
from bot.textrender import render_plain, render_rich
from bot.verdict import ProblemShare, RegionRow, TargetRow, Verdict

AT = datetime(2024, 7, 19, 5, 0, tzinfo=UTC)
ANSI = re.compile(r"\x1b\[([0-9;]*)m")


def regional_verdict(**changes: object) -> Verdict:
    base = Verdict(
        service="svc",
        name="Example",
        at=AT,
        category=Category.REGIONAL,
        headline=Message(
            "headline.regional", name="Example", regions=RegionList(("JP",)), ok=RegionList(("US",))
        ),
        notes=(
            Message("note.targets_split", broken="api", working="web"),
            Message("note.status", status="Partial outage", indicator="minor"),
        ),
        regions=(
            RegionRow("JP", RegionState.PARTIAL, 6, 4, 120.4, 12, 1.5, ReportLevel.PROBLEMS, 0),
            RegionRow("US", RegionState.OK, 10, 0, 95.0, 1, 2.0, ReportLevel.NONE, 4),
            RegionRow("ZW", RegionState.NO_DATA, 0, 0, None, 2, 0.0, ReportLevel.NONE, 0),
        ),
        targets=(
            TargetRow("web", TargetState.OK),
            TargetRow("api", TargetState.REGIONAL, ("JP",)),
        ),
        problems=(ProblemShare(Problem.API, 9, 0.6), ProblemShare(Problem.LOGIN, 6, 0.4)),
        status=StatusSnapshot("svc", AT - timedelta(hours=2), Indicator.MINOR, "Partial outage"),
        probes_at=AT - timedelta(seconds=45),
        reports_at=AT - timedelta(minutes=12),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def verdict_reply(verdict: Verdict, **changes: object) -> Reply:
    return Reply(ReplyKind.VERDICT, verdict=verdict, **changes)  # type: ignore[arg-type]


def printed(renderable: RenderableType, *, colour: bool = False) -> str:
    console = Console(
        file=StringIO(),
        force_terminal=colour,
        color_system="standard" if colour else None,
        width=120,
    )
    console.print(renderable)
    output = console.file.getvalue()
    assert isinstance(output, str)
    return output


def sgr_codes(output: str) -> set[str]:
    """Every ANSI colour parameter used, e.g. {"1;31", "0"}, split into single numbers."""
    return {part for match in ANSI.findall(output) for part in match.split(";")}


# ---- plain -------------------------------------------------------------------------------------


def test_plain_verdict_reads_top_to_bottom() -> None:
    lines = render_plain(verdict_reply(regional_verdict())).splitlines()
    assert lines[0] == "Regional outage: Example is down in Japan; it works in the US."
    assert lines[1] == "Failing: api. Working: web."
    assert lines[3].split("  ")[0] == "Region"
    assert lines[-4:] == [
        "Targets: web: ok · api: failing in Japan",
        "Problems reported: API 60% · login 40%",
        "Official status: Partial outage",
        "Probes 45s ago · reports 12 min ago · status 2 h ago · as of 2024-07-19 05:00 UTC",
    ]


def test_plain_table_has_one_aligned_row_per_region() -> None:
    text = render_plain(verdict_reply(regional_verdict()))
    header, rule, *rows = text.split("\n\n")[1].splitlines()
    assert header.split("  ")[0] == "Region"
    assert ("Probes ok/failed" in header) and ("Works for me" in header)
    assert set(rule.replace(" ", "")) == {"-"}
    assert len(rows) == 3
    jp, us, zw = rows
    assert jp.startswith("JP Japan") and "partial" in jp and "6/4" in jp and "120 ms" in jp
    assert "12 (1.5)" in jp
    assert us.startswith("US ") and "95 ms" in us and "1 (2)" in us and us.endswith("4")
    # A region nobody probes shows dashes, not zeros that look like measurements.
    assert zw.startswith("ZW ") and "no data" in zw and zw.count("–") == 2
    # Numeric columns are right-aligned: every row ends at the same column.
    assert len({len(line) for line in (header, rule)}) == 1
    assert len({len(row) for row in rows}) == 1


def test_plain_status_note_is_shown_once_in_its_own_line() -> None:
    text = render_plain(verdict_reply(regional_verdict()))
    assert text.count("Partial outage") == 1


def test_plain_status_line_without_a_note_comes_from_the_snapshot() -> None:
    text = render_plain(verdict_reply(regional_verdict(notes=())))
    assert "Official status: Partial outage" in text


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(seconds=-5), "Probes 0s ago"),  # a probe agent's clock ahead of ours
        (timedelta(seconds=59), "Probes 59s ago"),
        (timedelta(minutes=59, seconds=59), "Probes 59 min ago"),
        (timedelta(hours=23), "Probes 23 h ago"),
        (timedelta(days=3, hours=5), "Probes 3 d ago"),
    ],
)
def test_freshness_ages(age: timedelta, expected: str) -> None:
    text = render_plain(verdict_reply(regional_verdict(probes_at=AT - age)))
    assert expected in text


def test_freshness_without_evidence_says_none() -> None:
    verdict = Verdict(
        service="svc",
        name="Example",
        at=AT,
        category=Category.UNKNOWN,
        headline=Message("headline.unknown", name="Example"),
    )
    assert render_plain(verdict_reply(verdict)) == (
        "Unknown: No recent evidence about Example: no probes, reports or status page data.\n"
        "Probes none · reports none · status none · as of 2024-07-19 05:00 UTC"
    )


def test_plain_chart_is_a_sparkline() -> None:
    buckets = tuple(AT - timedelta(minutes=15 * i) for i in range(4, 0, -1))
    chart = ChartData("Example", buckets, (0, 2, 8, 4), (1.0, 1.0, 1.0, 1.0))
    text = render_plain(verdict_reply(regional_verdict(), chart=chart))
    assert "Reports, last 24 h: ▁▃█▅ (peak 8 per 15 min)" in text


def test_buttons_become_commands_to_type() -> None:
    buttons = (
        Button("report", "svc", Message("button.report")),
        Button("isitdown", "Microsoft 365", Message("button.recheck")),
    )
    text = render_plain(verdict_reply(regional_verdict(), buttons=buttons))
    assert text.endswith('Next: /report svc · /isitdown "Microsoft 365"')


def test_plain_info_reply_has_title_text_and_every_line() -> None:
    reply = Reply(
        ReplyKind.INFO,
        title=Message("services.title", count=40),
        text=Message("help.intro"),
        lines=tuple(
            Message("services.line", name=f"S{i}", key=f"s{i}", aliases="") for i in range(40)
        ),
    )
    lines = render_plain(reply).splitlines()
    assert lines[0] == "Services I know (40)"
    assert lines[1].startswith("I combine probes")
    assert lines[2:] == [f"S{i} (`s{i}`)" for i in range(40)]


def test_plain_error_is_its_text() -> None:
    assert render_plain(error("error.unknown_command", command="nope")) == (
        "I don't know /nope. Try /help."
    )


def test_plain_renders_in_french_with_english_fallback() -> None:
    text = render_plain(verdict_reply(regional_verdict()), "fr")
    assert "Example est en panne depuis Japon ; fonctionne depuis États-Unis." in text
    assert "JP Japon" in text and "US États-Unis" in text


# ---- rich --------------------------------------------------------------------------------------


def test_rich_has_the_same_content_as_plain() -> None:
    reply = verdict_reply(
        regional_verdict(), buttons=(Button("report", "svc", Message("button.report")),)
    )
    output = printed(render_rich(reply))
    plain = render_plain(reply)
    head, _table, tail = plain.split("\n\n")
    for line in [*head.splitlines(), *tail.splitlines()]:
        assert line in output, line
    for cell in ("JP Japan", "partial", "6/4", "120 ms", "12 (1.5)", "Works for me"):
        assert cell in output


@pytest.mark.parametrize(
    ("category", "colour"),
    [
        (Category.DOWN, "31"),  # red
        (Category.UP, "32"),  # green
        (Category.USER_REPORTS, "33"),  # yellow
        (Category.MAINTENANCE, "34"),  # blue
    ],
)
def test_rich_colours_the_headline_by_category(category: Category, colour: str) -> None:
    verdict = regional_verdict(category=category, regions=(), notes=(), status=None)
    output = printed(render_rich(verdict_reply(verdict)), colour=True)
    headline = output.splitlines()[0]
    assert colour in sgr_codes(headline)


def test_rich_errors_are_red_and_info_is_not() -> None:
    assert "31" in sgr_codes(printed(render_rich(error("error.internal")), colour=True))
    assert "31" not in sgr_codes(printed(render_rich(info("help.intro")), colour=True))


def test_rich_without_a_terminal_has_no_colour_codes() -> None:
    assert "\x1b[" not in printed(render_rich(verdict_reply(regional_verdict())))


def test_rich_shows_user_text_literally_not_as_markup() -> None:
    verdict = regional_verdict(
        headline=Message("headline.up", name="[bold]x[/bold]"),
        notes=(Message("note.status", status="[red]fine[/red]", indicator="none"),),
    )
    reply = Reply(
        ReplyKind.INFO,
        text=Message("services.line", name="[link=http://evil]S[/link]", key="s", aliases=""),
    )
    output = printed(render_rich(verdict_reply(verdict))) + printed(render_rich(reply))
    assert "[bold]x[/bold] is up everywhere" in output
    assert "[red]fine[/red]" in output
    assert "[link=http://evil]S[/link]" in output


def test_rich_shows_every_line_of_a_long_list() -> None:
    reply = info("services.title", count=300)
    reply = Reply(
        ReplyKind.INFO,
        title=reply.text,
        lines=tuple(
            Message("services.line", name=f"S{i}", key=f"s{i}", aliases="") for i in range(300)
        ),
    )
    output = printed(render_rich(reply))
    assert all(f"S{i} (`s{i}`)" in output for i in range(300))

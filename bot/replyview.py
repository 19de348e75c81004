"""A verdict reply reduced to finished, localized strings: the one view every renderer lays out.

The console, the plain-text fallback, Discord embeds and Slack blocks all read this view, so they
always say the same thing; each renderer only decides layout, styling and platform limits.
Everything a user reads comes from the message catalog (bot/i18n.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.charts import ChartData, sparkline
from bot.i18n import Message, RegionList, render, text
from bot.model import Category, RegionState
from bot.regions import region_name
from bot.reply import Button
from bot.verdict import RegionRow, Verdict, evidence_age

__all__ = [
    "COLUMNS",
    "NONE",
    "SEP",
    "VerdictView",
    "ViewRow",
    "chart_line",
    "next_line",
    "plain_table",
    "verdict_view",
]

# Shown in a table cell that has no value (no probes, no latency): a blank cell reads as a bug.
NONE = "–"
SEP = " · "

# Column catalog keys and whether the column holds numbers (right-aligned so digits line up).
COLUMNS: tuple[tuple[str, bool], ...] = (
    ("col.region", False),
    ("col.state", False),
    ("col.probes", True),
    ("col.latency", True),
    ("col.reports", True),
    ("col.works_for_me", True),
)


@dataclass(frozen=True, slots=True)
class ViewRow:
    cells: tuple[str, ...]
    state: RegionState


@dataclass(frozen=True, slots=True)
class VerdictView:
    """A verdict reduced to finished strings in reading order; the renderers only lay it out."""

    category: Category
    headline: str
    notes: tuple[str, ...]
    header: tuple[str, ...]
    rows: tuple[ViewRow, ...]
    targets: str | None
    problems: str | None
    status: str | None
    freshness: str


# ---- the shared view ------------------------------------------------------------------------


def verdict_view(verdict: Verdict, lang: str) -> VerdictView:
    notes, status = _split_status_note(verdict)
    headline = text(
        "render.verdict",
        lang,
        category=Message(f"category.{verdict.category.value}"),
        headline=verdict.headline,
    )
    return VerdictView(
        category=verdict.category,
        headline=headline,
        notes=tuple(render(n, lang) for n in notes),
        header=tuple(text(key, lang) for key, _ in COLUMNS),
        rows=tuple(ViewRow(_region_cells(r, lang), r.state) for r in verdict.regions),
        targets=_targets_line(verdict, lang),
        problems=_problems_line(verdict, lang),
        status=render(status, lang) if status else None,
        freshness=_freshness(verdict, lang),
    )


def _split_status_note(verdict: Verdict) -> tuple[list[Message], Message | None]:
    """The notes without the official-status one, and that one: it gets its own line lower down.

    The verdict already chose between "note.status" and "note.status_disagrees"; reusing its
    message keeps that judgement instead of printing the status twice.
    """
    status = next((n for n in verdict.notes if n.key.startswith("note.status")), None)
    rest = [n for n in verdict.notes if n is not status]
    if status is None and verdict.status is not None:
        status = Message(
            "note.status",
            status=verdict.status.description,
            indicator=verdict.status.indicator.value,
        )
    return rest, status


def _region_label(code: str, lang: str) -> str:
    """Region cell: "JP Japan", "GB UK", "US"; the code to scan by, the name to read."""
    name = region_name(code, lang)
    # English names are shaped for sentences ("down in the UK"); a table cell wants the bare name.
    if lang == "en":
        name = name.removeprefix("the ")
    return code if name == code else f"{code} {name}"


def _region_cells(row: RegionRow, lang: str) -> tuple[str, ...]:
    probed = row.probe_ok + row.probe_failed
    latency = (
        NONE if row.latency_ms is None else text("render.latency", lang, ms=round(row.latency_ms))
    )
    return (
        _region_label(row.region, lang),
        text(f"state.{row.state.value}", lang),
        f"{row.probe_ok}/{row.probe_failed}" if probed else NONE,
        latency,
        f"{row.reports} ({_number(row.usual)})",
        str(row.works_for_me),
    )


def _number(value: float) -> str:
    """1.0 -> "1", 0.25 -> "0.2": the usual level is an average, one decimal is plenty."""
    return str(round(value)) if float(value).is_integer() else f"{value:.1f}"


def _targets_line(verdict: Verdict, lang: str) -> str | None:
    if not verdict.targets:
        return None
    items = [
        text(
            "render.target",
            lang,
            target=t.target,
            state=Message(f"target.{t.state.value}", regions=RegionList(t.failing_regions)),
        )
        for t in verdict.targets
    ]
    return text("render.targets", lang, items=SEP.join(items))


def _problems_line(verdict: Verdict, lang: str) -> str | None:
    if not verdict.problems:
        return None
    items = [
        text(
            "render.share",
            lang,
            problem=Message(f"problem.{p.kind.value}"),
            share=round(p.share * 100),
        )
        for p in verdict.problems
    ]
    return text("render.problems", lang, items=SEP.join(items))


def _freshness(verdict: Verdict, lang: str) -> str:
    ages = {kind: _age(verdict.at, seen, lang) for kind, seen in evidence_age(verdict).items()}
    return text("freshness", lang, at=verdict.at.strftime("%Y-%m-%d %H:%M %Z").strip(), **ages)


def _age(now: datetime, seen: datetime | None, lang: str) -> str:
    if seen is None:
        return text("age.never", lang)
    # Evidence stamped after ``now`` (clock skew between probe agents) reads as "0s ago".
    seconds = max(0, int((now - seen).total_seconds()))
    if seconds < 60:
        return text("age.seconds", lang, n=seconds)
    if seconds < 3600:
        return text("age.minutes", lang, n=seconds // 60)
    if seconds < 86_400:
        return text("age.hours", lang, n=seconds // 3600)
    return text("age.days", lang, n=seconds // 86_400)


def chart_line(chart: ChartData | None, lang: str) -> str | None:
    if chart is None or not chart.reports:
        return None
    minutes = round(chart.step.total_seconds() / 60)
    return text(
        "render.chart",
        lang,
        spark=sparkline(chart.reports),
        peak=max(chart.reports),
        minutes=minutes,
    )


def next_line(buttons: Sequence[Button], lang: str) -> str | None:
    """Buttons as the commands they dispatch: typing one does exactly what clicking would."""
    if not buttons:
        return None
    items = [f"/{b.action} {_quoted(b.value)}" for b in buttons]
    return text("render.next", lang, items=SEP.join(items))


def _quoted(value: str) -> str:
    # Quote values with spaces so the hint parses back into one argument (bot/parse.py).
    return f'"{value}"' if " " in value else value


def plain_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    numeric = [is_number for _, is_number in COLUMNS]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]

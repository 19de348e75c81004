"""A Reply as text: plain lines for the CLI and fallbacks, rich renderables for the console.

Both renderers are pure (no I/O) and share one view of a verdict, so the console and the plain
fallback always say the same thing; only the styling differs. Everything a user reads comes from
the message catalog (bot/i18n.py). User-supplied text (service names, notes, usages with
``[optional]`` parameters) is always wrapped in ``rich.text.Text``, never passed as a markup
string, so "[red]" in a note is shown as typed instead of being interpreted by rich.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bot.charts import ChartData, sparkline
from bot.i18n import Message, RegionList, render, text
from bot.model import Category, RegionState
from bot.regions import region_name
from bot.reply import Button, Reply, ReplyKind
from bot.verdict import RegionRow, Verdict, evidence_age

__all__ = ["render_plain", "render_rich"]

# Shown in a table cell that has no value (no probes, no latency): a blank cell reads as a bug.
_NONE = "–"
_SEP = " · "

CATEGORY_STYLES: dict[Category, str] = {
    Category.DOWN: "bold red",
    Category.REGIONAL: "bold dark_orange",
    Category.USER_REPORTS: "bold yellow",
    Category.DEGRADED: "bold yellow",
    Category.MAINTENANCE: "bold blue",
    Category.UP: "bold green",
    Category.UNKNOWN: "dim",
}

_STATE_STYLES: dict[RegionState, str] = {
    RegionState.DOWN: "red",
    RegionState.PARTIAL: "dark_orange",
    RegionState.USER_REPORTS: "yellow",
    RegionState.SLOW: "yellow",
    RegionState.OK: "green",
    RegionState.NO_DATA: "dim",
}

# Column catalog keys and whether the column holds numbers (right-aligned so digits line up).
_COLUMNS: tuple[tuple[str, bool], ...] = (
    ("col.region", False),
    ("col.state", False),
    ("col.probes", True),
    ("col.latency", True),
    ("col.reports", True),
    ("col.works_for_me", True),
)


@dataclass(frozen=True, slots=True)
class _Row:
    cells: tuple[str, ...]
    state: RegionState


@dataclass(frozen=True, slots=True)
class _VerdictView:
    """A verdict reduced to finished strings in reading order; the renderers only lay it out."""

    category: Category
    headline: str
    notes: tuple[str, ...]
    header: tuple[str, ...]
    rows: tuple[_Row, ...]
    targets: str | None
    problems: str | None
    status: str | None
    freshness: str


# ---- the shared view ------------------------------------------------------------------------


def _verdict_view(verdict: Verdict, lang: str) -> _VerdictView:
    notes, status = _split_status_note(verdict)
    headline = text(
        "render.verdict",
        lang,
        category=Message(f"category.{verdict.category.value}"),
        headline=verdict.headline,
    )
    return _VerdictView(
        category=verdict.category,
        headline=headline,
        notes=tuple(render(n, lang) for n in notes),
        header=tuple(text(key, lang) for key, _ in _COLUMNS),
        rows=tuple(_Row(_region_cells(r, lang), r.state) for r in verdict.regions),
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
        _NONE if row.latency_ms is None else text("render.latency", lang, ms=round(row.latency_ms))
    )
    return (
        _region_label(row.region, lang),
        text(f"state.{row.state.value}", lang),
        f"{row.probe_ok}/{row.probe_failed}" if probed else _NONE,
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
    return text("render.targets", lang, items=_SEP.join(items))


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
    return text("render.problems", lang, items=_SEP.join(items))


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


def _chart_line(chart: ChartData | None, lang: str) -> str | None:
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


def _next_line(buttons: Sequence[Button], lang: str) -> str | None:
    """Buttons as the commands they dispatch: typing one does exactly what clicking would."""
    if not buttons:
        return None
    items = [f"/{b.action} {_quoted(b.value)}" for b in buttons]
    return text("render.next", lang, items=_SEP.join(items))


def _quoted(value: str) -> str:
    # Quote values with spaces so the hint parses back into one argument (bot/parse.py).
    return f'"{value}"' if " " in value else value


# ---- plain text ------------------------------------------------------------------------------


def render_plain(reply: Reply, lang: str = "en") -> str:
    """``reply`` as plain text (no colour), one block with lines separated by newlines."""
    lines: list[str] = []
    if reply.title is not None:
        lines.append(render(reply.title, lang))
    if reply.verdict is not None:
        lines += _plain_verdict(_verdict_view(reply.verdict, lang), _chart_line(reply.chart, lang))
    else:
        chart = _chart_line(reply.chart, lang)
        lines += [chart] if chart else []
    if reply.text is not None:
        lines.append(render(reply.text, lang))
    lines += [render(m, lang) for m in reply.lines]
    hint = _next_line(reply.buttons, lang)
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def _plain_verdict(view: _VerdictView, chart: str | None) -> list[str]:
    lines = [view.headline, *view.notes]
    if view.rows:
        lines += ["", *_plain_table(view.header, [r.cells for r in view.rows]), ""]
    optional = (view.targets, view.problems, view.status, chart)
    lines += [line for line in optional if line]
    lines.append(view.freshness)
    return lines


def _plain_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    numeric = [is_number for _, is_number in _COLUMNS]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


# ---- rich (console) ----------------------------------------------------------------------------


def render_rich(reply: Reply, lang: str = "en") -> RenderableType:
    """``reply`` as a rich renderable: the plain content, coloured by category; errors in red."""
    is_error = reply.kind is ReplyKind.ERROR
    parts: list[RenderableType] = []
    if reply.title is not None:
        parts.append(Text(render(reply.title, lang), style="bold red" if is_error else "bold"))
    chart = _chart_line(reply.chart, lang)
    if reply.verdict is not None:
        parts += _rich_verdict(_verdict_view(reply.verdict, lang), chart)
    elif chart:
        parts.append(Text(chart))
    if reply.text is not None:
        parts.append(Text(render(reply.text, lang), style="red" if is_error else ""))
    # Every line, however many: a terminal scrolls, unlike a chat message with a size limit.
    parts += [Text(render(m, lang)) for m in reply.lines]
    hint = _next_line(reply.buttons, lang)
    if hint:
        parts.append(Text(hint, style="dim"))
    return Group(*parts)


def _rich_verdict(view: _VerdictView, chart: str | None) -> list[RenderableType]:
    style = CATEGORY_STYLES[view.category]
    parts: list[RenderableType] = [Text(view.headline, style=style)]
    parts += [Text(note) for note in view.notes]
    if view.rows:
        parts.append(_rich_table(view))
    parts += [Text(line) for line in (view.targets, view.problems, view.status) if line]
    if chart:
        parts.append(Text(chart, style=style.removeprefix("bold ")))
    parts.append(Text(view.freshness, style="dim"))
    return parts


def _rich_table(view: _VerdictView) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for heading, (_, is_number) in zip(view.header, _COLUMNS, strict=True):
        table.add_column(Text(heading), justify="right" if is_number else "left", no_wrap=True)
    for row in view.rows:
        cells = [Text(cell) for cell in row.cells]
        cells[1].stylize(_STATE_STYLES[row.state])
        table.add_row(*cells)
    return table

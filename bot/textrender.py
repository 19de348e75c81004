"""A Reply as text: plain lines for the CLI and fallbacks, rich renderables for the console.

Both renderers are pure (no I/O) and share one view of a verdict, so the console and the plain
fallback always say the same thing; only the styling differs. Everything a user reads comes from
the message catalog (bot/i18n.py). User-supplied text (service names, notes, usages with
``[optional]`` parameters) is always wrapped in ``rich.text.Text``, never passed as a markup
string, so "[red]" in a note is shown as typed instead of being interpreted by rich.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from bot.i18n import render
from bot.model import Category, RegionState
from bot.reply import Reply, ReplyKind
from bot.replyview import COLUMNS, VerdictView, chart_line, next_line, plain_table, verdict_view

__all__ = ["render_plain", "render_rich"]

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


# ---- plain text ------------------------------------------------------------------------------


def render_plain(reply: Reply, lang: str = "en") -> str:
    """``reply`` as plain text (no colour), one block with lines separated by newlines."""
    lines: list[str] = []
    if reply.title is not None:
        lines.append(render(reply.title, lang))
    if reply.verdict is not None:
        lines += _plain_verdict(verdict_view(reply.verdict, lang), chart_line(reply.chart, lang))
    else:
        chart = chart_line(reply.chart, lang)
        lines += [chart] if chart else []
    if reply.text is not None:
        lines.append(render(reply.text, lang))
    lines += [render(m, lang) for m in reply.lines]
    hint = next_line(reply.buttons, lang)
    if hint:
        lines.append(hint)
    return "\n".join(lines)


def _plain_verdict(view: VerdictView, chart: str | None) -> list[str]:
    lines = [view.headline, *view.notes]
    if view.rows:
        lines += ["", *plain_table(view.header, [r.cells for r in view.rows]), ""]
    optional = (view.targets, view.problems, view.status, chart)
    lines += [line for line in optional if line]
    lines.append(view.freshness)
    return lines


# ---- rich (console) ----------------------------------------------------------------------------


def render_rich(reply: Reply, lang: str = "en") -> RenderableType:
    """``reply`` as a rich renderable: the plain content, coloured by category; errors in red."""
    is_error = reply.kind is ReplyKind.ERROR
    parts: list[RenderableType] = []
    if reply.title is not None:
        parts.append(Text(render(reply.title, lang), style="bold red" if is_error else "bold"))
    chart = chart_line(reply.chart, lang)
    if reply.verdict is not None:
        parts += _rich_verdict(verdict_view(reply.verdict, lang), chart)
    elif chart:
        parts.append(Text(chart))
    if reply.text is not None:
        parts.append(Text(render(reply.text, lang), style="red" if is_error else ""))
    # Every line, however many: a terminal scrolls, unlike a chat message with a size limit.
    parts += [Text(render(m, lang)) for m in reply.lines]
    hint = next_line(reply.buttons, lang)
    if hint:
        parts.append(Text(hint, style="dim"))
    return Group(*parts)


def _rich_verdict(view: VerdictView, chart: str | None) -> list[RenderableType]:
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


def _rich_table(view: VerdictView) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for heading, (_, is_number) in zip(view.header, COLUMNS, strict=True):
        table.add_column(Text(heading), justify="right" if is_number else "left", no_wrap=True)
    for row in view.rows:
        cells = [Text(cell) for cell in row.cells]
        cells[1].stylize(_STATE_STYLES[row.state])
        table.add_row(*cells)
    return table

"""Reply -> Discord message payload: a pure function that golden tests pin.

The payload is Discord's own wire JSON for the embed and the component rows (what the REST API
receives), plus the chart to attach and whether the message is ephemeral. The adapter turns it into
discord.py objects; nothing here does I/O. Every platform limit is applied here, cutting lists with
"+N more" rather than letting Discord refuse the whole message (limits: discord.com/developers/docs,
"Embed Limits", "Message Components"; summarised in shared/PROTOCOLS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.charts import ChartData
from bot.i18n import render, text
from bot.model import Category
from bot.reply import Button, Reply, ReplyKind
from bot.replyview import VerdictView, plain_table, verdict_view

__all__ = [
    "CHART_FILE",
    "ButtonSpec",
    "Payload",
    "button_custom_id",
    "components_json",
    "render_reply",
    "select_custom_id",
]

# Discord limits, by field.
CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FOOTER_MAX = 1024  # Discord allows 2,048; 1,024 keeps title + description + footer under 6,000
EMBED_TOTAL_MAX = 6000
CUSTOM_ID_MAX = 100
LABEL_MAX = 80
BUTTONS_PER_ROW = 5
ROWS_MAX = 5

CHART_FILE = "chart.png"

# Colours by verdict category (Discord takes an RGB integer); info replies are "blurple".
COLOURS: dict[Category, int] = {
    Category.DOWN: 0xE03131,
    Category.REGIONAL: 0xF76707,
    Category.USER_REPORTS: 0xF59F00,
    Category.DEGRADED: 0xFAB005,
    Category.MAINTENANCE: 0x1C7ED6,
    Category.UP: 0x2F9E44,
    Category.UNKNOWN: 0x868E96,
}
INFO_COLOUR = 0x5865F2

# Button styles (Discord component style numbers): a problem report stands out in red, a
# confirmation that it works in green, the rest neutral.
PRIMARY, SECONDARY, SUCCESS, DANGER = 1, 2, 3, 4
_STYLES = {"report": DANGER, "worksforme": SUCCESS, "subscribe": PRIMARY}

# custom_id shapes. The prefix keeps our ids apart from any other app's; DynamicItem templates in
# components.py parse them back, so a button works after a restart with no stored state.
BUTTON_PREFIX = "ob"
SELECT_PREFIX = "obs"


@dataclass(frozen=True, slots=True)
class ButtonSpec:
    custom_id: str
    label: str
    style: int
    action: str
    value: str


@dataclass(frozen=True, slots=True)
class Payload:
    """One Discord message: text content and/or an embed, buttons in rows, a chart to attach."""

    content: str | None
    embed: dict[str, Any] | None
    rows: tuple[tuple[ButtonSpec, ...], ...]
    chart: ChartData | None
    ephemeral: bool


def render_reply(reply: Reply, lang: str = "en") -> Payload:
    """``reply`` as a Discord payload in ``lang``: errors as plain text, the rest as embeds."""
    chart = reply.chart if reply.verdict is not None else None
    if reply.verdict is not None:
        verdict = _verdict_embed(verdict_view(reply.verdict, lang), lang)
        if chart is not None:
            verdict["image"] = {"url": f"attachment://{CHART_FILE}"}
        embed: dict[str, Any] | None = verdict
        content = None
    elif reply.kind is ReplyKind.ERROR or (reply.title is None and not reply.lines):
        embed = None
        content = _cut(render(reply.text, lang), CONTENT_MAX) if reply.text is not None else None
    else:
        embed = _info_embed(reply, lang)
        content = None
    return Payload(
        content=content,
        embed=embed,
        rows=_rows(reply.buttons, lang),
        chart=chart,
        ephemeral=reply.ephemeral or reply.kind is ReplyKind.ERROR,
    )


def components_json(payload: Payload) -> list[dict[str, Any]]:
    """The action rows exactly as Discord receives them."""
    return [
        {
            "type": 1,
            "components": [
                {
                    "type": 2,
                    "style": b.style,
                    "disabled": False,
                    "label": b.label,
                    "custom_id": b.custom_id,
                }
                for b in row
            ],
        }
        for row in payload.rows
    ]


def button_custom_id(action: str, value: str) -> str | None:
    """``ob:<action>:<value>``, or None when it would pass Discord's 100-character limit."""
    custom_id = f"{BUTTON_PREFIX}:{action}:{value}"
    return custom_id if len(custom_id) <= CUSTOM_ID_MAX and action and value else None


def select_custom_id(action: str, value: str) -> str | None:
    custom_id = f"{SELECT_PREFIX}:{action}:{value}"
    return custom_id if len(custom_id) <= CUSTOM_ID_MAX and action and value else None


# ---- embeds ------------------------------------------------------------------------------------


def _verdict_embed(view: VerdictView, lang: str) -> dict[str, Any]:
    head = list(view.notes)
    tail = [line for line in (view.targets, view.problems, view.status) if line]
    budget = DESCRIPTION_MAX - _length(head) - _length(tail) - 16  # fences and blank lines
    table = _table_block(view, budget, lang) if view.rows else ""
    parts = [*head, table, *tail]
    description = _cut("\n".join(p for p in parts if p), DESCRIPTION_MAX)
    embed: dict[str, Any] = {
        "title": _cut(view.headline, TITLE_MAX),
        "description": description,
        "color": COLOURS[view.category],
        "footer": {"text": _cut(view.freshness, FOOTER_MAX)},
    }
    return embed


def _table_block(view: VerdictView, budget: int, lang: str) -> str:
    """The per-region table in a code block (monospace keeps the columns); rows cut to fit."""
    lines = plain_table(view.header, [r.cells for r in view.rows])
    head, rows = lines[:2], lines[2:]
    kept = list(rows)
    while kept and _length([*head, *kept, _more(len(rows) - len(kept), lang)]) > budget:
        kept.pop()
    dropped = len(rows) - len(kept)
    body = [*head, *kept] + ([_more(dropped, lang)] if dropped else [])
    return "```\n" + "\n".join(body) + "\n```"


def _info_embed(reply: Reply, lang: str) -> dict[str, Any]:
    first = [render(reply.text, lang)] if reply.text is not None else []
    lines = [render(m, lang) for m in reply.lines]
    kept = list(lines)
    # Keep whole lines and say how many were left out: a line cut in half reads as a bug.
    while kept and _length([*first, *kept, _more(len(lines) - len(kept), lang)]) > DESCRIPTION_MAX:
        kept.pop()
    dropped = len(lines) - len(kept)
    body = [*first, *kept] + ([_more(dropped, lang)] if dropped else [])
    embed: dict[str, Any] = {"color": 0xE03131 if reply.kind is ReplyKind.ERROR else INFO_COLOUR}
    if reply.title is not None:
        embed["title"] = _cut(render(reply.title, lang), TITLE_MAX)
    if body:
        embed["description"] = _cut("\n".join(body), DESCRIPTION_MAX)
    return embed


# ---- buttons -----------------------------------------------------------------------------------


def _rows(buttons: Sequence[Button], lang: str) -> tuple[tuple[ButtonSpec, ...], ...]:
    specs: list[ButtonSpec] = []
    for button in buttons:
        custom_id = button_custom_id(button.action, button.value)
        if custom_id is None:  # a value too long to round-trip: no button beats a broken one
            continue
        label = _cut(render(button.label, lang), LABEL_MAX)
        specs.append(
            ButtonSpec(
                custom_id, label, _STYLES.get(button.action, SECONDARY), button.action, button.value
            )
        )
    specs = specs[: BUTTONS_PER_ROW * ROWS_MAX]
    return tuple(
        tuple(specs[i : i + BUTTONS_PER_ROW]) for i in range(0, len(specs), BUTTONS_PER_ROW)
    )


# ---- limits ------------------------------------------------------------------------------------


def _more(n: int, lang: str) -> str:
    return text("discord.more", lang, n=n)


def _length(lines: Sequence[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def _cut(value: str, limit: int) -> str:
    """``value`` within ``limit`` characters, ending in "…" when it had to be cut."""
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"

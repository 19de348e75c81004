"""A Reply as a Slack message: Block Kit blocks plus the plain-text fallback, within Slack's limits.

Pure functions (golden tests pin them). The words come from the shared verdict view
(bot/replyview.py) and the plain renderer (bot/textrender.py), so Slack says exactly what the
console says; this module only lays them out. Every string that reaches ``mrkdwn`` is escaped
(``&``, ``<``, ``>``) so a service name or a note can never ping ``<!channel>`` or fake a link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.adapters.slack.parse import encode_value
from bot.i18n import Message, render, text
from bot.model import Problem
from bot.reply import Button, Reply, ReplyKind
from bot.replyview import VerdictView, chart_line, plain_table, verdict_view
from bot.textrender import render_plain

__all__ = [
    "ACTION_PREFIX",
    "Block",
    "SlackMessage",
    "action_value",
    "chunk_lines",
    "escape",
    "render_reply",
    "truncate",
]

Block = dict[str, Any]

# Slack's limits (https://docs.slack.dev/reference/block-kit/blocks): a header's text is 150
# characters, a section's 3,000, a message holds 50 blocks, a button label 75 characters and
# its value 2,000, a select option's value 150.
HEADER_MAX = 150
SECTION_MAX = 3000
BLOCKS_MAX = 50
LABEL_MAX = 75
BUTTON_VALUE_MAX = 2000
OPTION_VALUE_MAX = 150
# Slack cuts ``text`` at 40,000 characters, but it is only the notification and screen-reader
# line when blocks are present; a long list there reads worse than the blocks, so it is short.
FALLBACK_MAX = 3000

ACTION_PREFIX = "outagebot."
_FENCE = "```"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """``text`` is the notification fallback; ``blocks`` what Slack shows."""

    text: str
    blocks: tuple[Block, ...]
    ephemeral: bool = False

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": list(self.blocks)}


# ---- text helpers ------------------------------------------------------------------------------


def escape(value: str) -> str:
    """Slack's three control characters as entities, so user text never becomes markup."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def chunk_lines(lines: Iterable[str], limit: int = SECTION_MAX) -> list[str]:
    """Lines joined into as few texts of at most ``limit`` characters as possible."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = truncate(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            candidate = line
        current = candidate
    if current:
        chunks.append(current)
    return chunks


def _section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_MAX)}}


def _context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, 3000)}]}


def _plain(value: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(value, limit), "emoji": True}


# ---- the message -------------------------------------------------------------------------------


def render_reply(
    reply: Reply, lang: str = "en", *, chart_file_id: str | None = None
) -> SlackMessage:
    """``reply`` as Block Kit; ``chart_file_id`` is the uploaded chart (files_upload_v2), if any.

    Without a file id a chart is shown as its one-line sparkline, so a failed upload still
    shows the shape of the reports.
    """
    body: list[Block] = []
    if reply.verdict is not None:
        view = verdict_view(reply.verdict, lang)
        header = text(
            "slack.header",
            lang,
            name=reply.verdict.name,
            category=Message(f"category.{reply.verdict.category.value}"),
        )
        body.append({"type": "header", "text": _plain(header, HEADER_MAX)})
        body += _verdict_blocks(view, reply, lang, chart_file_id)
        # The notification line: what the verdict says, without the table (the blocks have it).
        fallback = "\n".join((view.headline, *view.notes, *(x for x in (view.status,) if x)))
    else:
        if reply.title is not None:
            body.append({"type": "header", "text": _plain(render(reply.title, lang), HEADER_MAX)})
        body += _info_blocks(reply, lang, chart_file_id)
        fallback = render_plain(reply, lang)
    blocks = _fit(body, _actions(reply.buttons, lang), lang)
    return SlackMessage(
        truncate(escape(fallback), FALLBACK_MAX), tuple(blocks), ephemeral=reply.ephemeral
    )


def _verdict_blocks(
    view: VerdictView, reply: Reply, lang: str, chart_file_id: str | None
) -> list[Block]:
    blocks = [_section("\n".join(escape(line) for line in (f"*{view.headline}*", *view.notes)))]
    if view.rows:
        blocks.append(_table(view))
    details = [line for line in (view.targets, view.problems) if line]
    if details:
        blocks.append(_section("\n".join(escape(line) for line in details)))
    if view.status:
        blocks.append(_section(escape(view.status)))
    blocks += _chart(reply, lang, chart_file_id)
    blocks.append(_context(escape(view.freshness)))
    return blocks


def _table(view: VerdictView) -> Block:
    """The per-region table as a preformatted section, rows dropped from the end to fit."""
    rows = [r.cells for r in view.rows]
    while True:
        lines = plain_table(view.header, rows)
        dropped = len(view.rows) - len(rows)
        if dropped:
            lines.append(f"+{dropped}")
        body = escape("\n".join(lines))
        if len(body) + 2 * len(_FENCE) + 2 <= SECTION_MAX or not rows:
            return _section(f"{_FENCE}\n{body}\n{_FENCE}")
        rows = rows[:-1]


def _chart(reply: Reply, lang: str, chart_file_id: str | None) -> list[Block]:
    if reply.chart is None:
        return []
    if chart_file_id is not None:
        return [
            {
                "type": "image",
                "slack_file": {"id": chart_file_id},
                "alt_text": truncate(reply.chart.title or "chart", 2000),
            }
        ]
    line = chart_line(reply.chart, lang)
    return [_context(escape(line))] if line else []


def _info_blocks(reply: Reply, lang: str, chart_file_id: str | None) -> list[Block]:
    blocks = _chart(reply, lang, chart_file_id)
    if reply.text is not None:
        blocks.append(_section(escape(render(reply.text, lang))))
    lines = [escape(render(m, lang)) for m in reply.lines]
    blocks += [_section(chunk) for chunk in chunk_lines(lines)]
    if reply.kind is ReplyKind.ERROR and not blocks:
        blocks.append(_section(escape(text("error.internal", lang))))
    return blocks


def _fit(body: list[Block], actions: Block | None, lang: str) -> list[Block]:
    """At most 50 blocks: the tail of the body gives way to a "+N more" line, never the buttons."""
    room = BLOCKS_MAX - (1 if actions else 0)
    if len(body) > room:
        kept = body[: room - 1]
        body = [*kept, _context(escape(text("slack.more", lang, n=len(body) - len(kept))))]
    return [*body, actions] if actions else body


# ---- buttons -----------------------------------------------------------------------------------


def _actions(buttons: Sequence[Button], lang: str) -> Block | None:
    elements: list[Block] = []
    for i, button in enumerate(buttons[:25]):  # an actions block holds 25 elements
        element = _report_select(button, lang, i) if button.action == "report" else None
        element = element or _button(button, lang, i)
        if element is not None:
            elements.append(element)
    return {"type": "actions", "elements": elements} if elements else None


def _action_id(index: int, button: Button) -> str:
    # Unique within the block (Slack rejects duplicates); the prefix routes every click to us.
    return f"{ACTION_PREFIX}{index}.{button.action}"[:255]


def _button(button: Button, lang: str, index: int) -> Block | None:
    value = encode_value(button.action, button.value)
    if len(value) > BUTTON_VALUE_MAX:
        return None  # the fallback text still names the command to type
    return {
        "type": "button",
        "action_id": _action_id(index, button),
        "text": _plain(render(button.label, lang), LABEL_MAX),
        "value": value,
    }


def _report_select(button: Button, lang: str, index: int) -> Block | None:
    """ "I have a problem" as a menu of problem types: one click files the right report."""
    options = []
    for problem in Problem:
        value = encode_value(button.action, button.value, {"problem": problem.value})
        if len(value) > OPTION_VALUE_MAX:
            return None
        options.append(
            {"text": _plain(text(f"problem.{problem.value}", lang), LABEL_MAX), "value": value}
        )
    return {
        "type": "static_select",
        "action_id": _action_id(index, button),
        "placeholder": _plain(render(button.label, lang), 150),
        "options": options,
    }


def action_value(action: Mapping[str, Any]) -> str | None:
    """The value a clicked element carried: a button's ``value`` or the chosen option's."""
    selected = action.get("selected_option")
    value = selected.get("value") if isinstance(selected, Mapping) else action.get("value")
    return value if isinstance(value, str) else None

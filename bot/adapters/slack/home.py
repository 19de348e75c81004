"""The App Home tab: what this workspace follows and what the bot knows, refreshed on each visit.

The content comes from dispatching ordinary, read-only commands as the visiting user (the same
answers they would get by typing them), never from the store: the adapter only lays the replies
out: /subscriptions (this workspace's), /incidents (open incidents and the most-reported services
this hour) and /services. Commands not in the registry are skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.adapters.slack.render import Block, chunk_lines, escape, truncate
from bot.i18n import render, text
from bot.reply import Reply
from bot.spec import CommandSpec

__all__ = ["HOME_COMMANDS", "home_commands", "render_home"]

# In display order; each must take no required argument.
HOME_COMMANDS = ("subscriptions", "incidents", "services")
# A Home tab view holds at most 100 blocks.
VIEW_BLOCKS_MAX = 100


def home_commands(specs: Mapping[str, CommandSpec]) -> list[str]:
    """The home sections this build can fill: registered commands with no required argument."""
    return [
        name
        for name in HOME_COMMANDS
        if name in specs and not any(p.required for p in specs[name].params)
    ]


def render_home(replies: Sequence[Reply], lang: str = "en") -> dict[str, Any]:
    """The ``views.publish`` view for the replies of ``home_commands``, in that order."""
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": text("slack.home.title", lang)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": escape(text("slack.home.intro", lang))},
        },
    ]
    for reply in replies:
        blocks.append({"type": "divider"})
        if reply.title is not None:
            title = truncate(render(reply.title, lang), 150)
            blocks.append({"type": "header", "text": {"type": "plain_text", "text": title}})
        lines = [render(reply.text, lang)] if reply.text is not None else []
        lines += [render(m, lang) for m in reply.lines]
        for chunk in chunk_lines(escape(line) for line in lines):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": chunk}})
    if len(blocks) > VIEW_BLOCKS_MAX:
        more = len(blocks) - (VIEW_BLOCKS_MAX - 1)
        blocks = blocks[: VIEW_BLOCKS_MAX - 1]
        note = escape(text("slack.more", lang, n=more))
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"type": "home", "blocks": blocks}

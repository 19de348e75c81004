"""What a command hands back: platform-neutral data that each adapter renders natively.

A Reply never holds platform JSON. Buttons are commands: each carries the ``(action, value)`` that,
when clicked, dispatches the same Invocation as typing the command.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.charts import ChartData
from bot.i18n import Message
from bot.verdict import Verdict


class ReplyKind(enum.StrEnum):
    VERDICT = "verdict"
    INFO = "info"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Button:
    action: str  # the command name it dispatches, e.g. "report"
    value: str  # its first argument, e.g. the service key
    label: Message


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    text: Message | None = None
    title: Message | None = None
    lines: tuple[Message, ...] = ()
    verdict: Verdict | None = None
    chart: ChartData | None = None
    buttons: tuple[Button, ...] = ()
    ephemeral: bool = False


def error(key: str, /, **params: object) -> Reply:
    """An error reply: shown only to the user who typed the command."""
    return Reply(ReplyKind.ERROR, text=Message(key, **params), ephemeral=True)


def info(key: str, /, *, ephemeral: bool = False, **params: object) -> Reply:
    return Reply(ReplyKind.INFO, text=Message(key, **params), ephemeral=ephemeral)

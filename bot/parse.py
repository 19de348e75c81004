"""Parsing a typed command line ("/report twitter website UK it's slow") into an Invocation's args.

Used by the console adapter and by Slack, where arguments arrive as one string. Quotes group words
("/isitdown \"Microsoft 365\""), ``name=value`` sets a parameter by name, and the last free-text
parameter takes the rest of the line.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection
from dataclasses import dataclass

from bot.spec import CommandSpec, ParamKind


class ParseError(Exception):
    """The line cannot be split into arguments; ``key`` is the message catalog entry saying why."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True, slots=True)
class ParsedLine:
    command: str
    rest: str


def split_command(line: str, known: Collection[str] = ()) -> ParsedLine:
    """``"/isitdown twitter"`` -> command "isitdown", rest "twitter".

    A subcommand (``"/service add intranet ..."``) is one command when ``known`` names it.
    """
    stripped = line.strip()
    if stripped.startswith("/"):
        stripped = stripped[1:]
    command, _, rest = stripped.partition(" ")
    command, rest = command.strip().lower(), rest.strip()
    sub, _, after = rest.partition(" ")
    if sub and f"{command} {sub.lower()}" in known:
        return ParsedLine(f"{command} {sub.lower()}", after.strip())
    return ParsedLine(command, rest)


def parse_args(spec: CommandSpec, text: str) -> dict[str, str]:
    """Map ``text`` onto ``spec``'s parameters; raise ParseError on unbalanced quotes or extras."""
    try:
        lexer = shlex.shlex(text, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        words = list(lexer)
    except ValueError:
        raise ParseError("error.unbalanced_quotes") from None
    names = {p.name for p in spec.params}
    args: dict[str, str] = {}
    positional: list[str] = []
    for word in words:
        key, eq, value = word.partition("=")
        if eq and key.lower() in names:
            args[key.lower()] = value
        else:
            positional.append(word)
    free = [p for p in spec.params if p.name not in args]
    for i, param in enumerate(free):
        if not positional:
            break
        is_last = i == len(free) - 1
        if param.kind is ParamKind.TEXT and is_last:
            args[param.name] = " ".join(positional)
            positional = []
        else:
            args[param.name] = positional.pop(0)
    if positional:
        raise ParseError("error.too_many_args")
    return args

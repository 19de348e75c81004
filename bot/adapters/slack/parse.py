"""Slack's slash-command text and button values, turned into a command name and its arguments.

Slack sends one string per slash command, so the typed-line parser (bot/parse.py) does the real
work; this module only undoes what Slack did to the text (HTML entities, ``<url|label>`` links,
smart quotes from macOS autocorrect) and picks the subcommand for grouped specs such as
``/service add``. Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.parse import ParseError, parse_args
from bot.spec import CommandSpec

__all__ = [
    "ButtonValue",
    "CommandGroup",
    "Parsed",
    "decode_value",
    "encode_value",
    "group_specs",
    "parse_command",
    "slack_unescape",
]

# Slack escapes exactly these three in message and command text.
_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
# <https://x.com|x.com>, <mailto:a@b|a@b>, <#C123|general>, <@U123|bob>: keep the target.
_LINK = re.compile(r"<([^<>|]+)(?:\|[^<>]*)?>")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True, slots=True)
class CommandGroup:
    """One Slack slash command: a spec of that name and/or subcommands ("service add")."""

    name: str
    spec: CommandSpec | None
    subcommands: Mapping[str, CommandSpec]

    def specs(self) -> tuple[CommandSpec, ...]:
        own = (self.spec,) if self.spec is not None else ()
        return (*own, *self.subcommands.values())

    def usage(self) -> str:
        return " | ".join(s.usage() for s in self.specs())


def group_specs(specs: Mapping[str, CommandSpec]) -> dict[str, CommandGroup]:
    """Specs by Slack slash command: "service add" and "service remove" share ``/service``."""
    own: dict[str, CommandSpec] = {}
    subs: dict[str, dict[str, CommandSpec]] = {}
    for name, spec in specs.items():
        head, _, sub = name.partition(" ")
        if sub:
            subs.setdefault(head, {})[sub] = spec
        else:
            own[head] = spec
    return {
        head: CommandGroup(head, own.get(head), subs.get(head, {}))
        for head in sorted(own.keys() | subs.keys())
    }


@dataclass(frozen=True, slots=True)
class Parsed:
    """What to dispatch, or why not: ``error_key`` is a catalog key shown with ``usage``."""

    command: str
    args: Mapping[str, str]
    error_key: str | None = None
    usage: str = ""


def slack_unescape(text: str) -> str:
    """Slack's wire text as the user typed it: links unwrapped, entities and quotes undone."""
    text = _LINK.sub(lambda m: m.group(1), text)
    for entity, char in _ENTITIES:
        text = text.replace(entity, char)
    return text.translate(_SMART_QUOTES).strip()


def parse_command(group: CommandGroup, text: str) -> Parsed:
    """``/service add "Acme Mail" web=https://...`` -> command "service add" and its arguments."""
    text = slack_unescape(text)
    first, _, rest = text.partition(" ")
    sub = group.subcommands.get(first.lower())
    if sub is not None:
        spec, text = sub, rest.strip()
    elif group.spec is not None:
        spec = group.spec
    else:
        # "/service" alone or "/service fly": the subcommands are the usage.
        return Parsed(group.name, {}, "slack.error.subcommand", group.usage())
    try:
        return Parsed(spec.name, parse_args(spec, text))
    except ParseError as exc:
        return Parsed(spec.name, {}, exc.key, spec.usage())


@dataclass(frozen=True, slots=True)
class ButtonValue:
    """What a button or select option carries: a command, its first argument, named extras."""

    command: str
    value: str
    extra: Mapping[str, str]

    def args(self, spec: CommandSpec | None) -> dict[str, str]:
        """The arguments typing the command would give: the value fills the first parameter."""
        args: dict[str, str] = {}
        if spec is not None and spec.params and self.value:
            args[spec.params[0].name] = self.value
        names = {p.name for p in spec.params} if spec is not None else set()
        args.update({k: v for k, v in self.extra.items() if k in names})
        return args


def encode_value(command: str, value: str, extra: Mapping[str, str] | None = None) -> str:
    """JSON, compact: Slack caps a button value at 2,000 characters and an option's at 150."""
    data: dict[str, object] = {"c": command, "v": value}
    if extra:
        data["a"] = dict(extra)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def decode_value(raw: str) -> ButtonValue | None:
    """The command behind a click, or None for a value this bot did not write."""
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    command, value, extra = data.get("c"), data.get("v"), data.get("a", {})
    if not isinstance(command, str) or not isinstance(value, str) or not isinstance(extra, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        return None
    return ButtonValue(command, value, extra)

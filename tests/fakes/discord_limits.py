"""Discord's payload limits, checked the way Discord checks them: a refusal lists every problem.

The fake answers a message or command list that breaks a limit with 400 and code 50035
("Invalid Form Body"), as Discord does, so a renderer that overflows fails its tests instead
of failing in production. Limits from discord.com/developers/docs (messages, embeds, message
components, application commands, autocomplete); summarised in shared/PROTOCOLS.md.
"""

from __future__ import annotations

import re
from typing import Any

_NAME = re.compile(r"^[-_\w]{1,32}$")


def message_problems(body: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    content = body.get("content") or ""
    if len(content) > 2000:
        problems.append(f"content: {len(content)} > 2000")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        problems.append("embeds: more than 10")
    total = 0
    for n, embed in enumerate(embeds):
        for key, limit in (("title", 256), ("description", 4096)):
            size = len(embed.get(key) or "")
            total += size
            if size > limit:
                problems.append(f"embeds[{n}].{key}: {size} > {limit}")
        footer = len((embed.get("footer") or {}).get("text") or "")
        total += footer
        if footer > 2048:
            problems.append(f"embeds[{n}].footer.text: {footer} > 2048")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            problems.append(f"embeds[{n}].fields: more than 25")
        for field in fields:
            total += len(field.get("name") or "") + len(field.get("value") or "")
            if len(field.get("value") or "") > 1024:
                problems.append(f"embeds[{n}].fields.value: longer than 1024")
    if total > 6000:
        problems.append(f"embeds: {total} characters in all > 6000")
    problems += _component_problems(body.get("components") or [])
    return problems


def _component_problems(rows: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if len(rows) > 5:
        problems.append("components: more than 5 rows")
    for r, row in enumerate(rows):
        items = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(items) <= 5:
            problems.append(f"components[{r}]: an action row holds 1 to 5 items")
        for item in items:
            custom_id = item.get("custom_id") or ""
            if not 1 <= len(custom_id) <= 100:
                problems.append(f"components[{r}].custom_id: {len(custom_id)} not in 1..100")
            if len(item.get("label") or "") > 80:
                problems.append(f"components[{r}].label: longer than 80")
            if item.get("type") == 3 and not 1 <= len(item.get("options") or []) <= 25:
                problems.append(f"components[{r}].options: 1 to 25")
    return problems


def command_problems(commands: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if len(commands) > 100:
        problems.append("more than 100 commands")
    for command in commands:
        problems += _command_problems(command, command.get("name", "?"))
    return problems


def _command_problems(command: dict[str, Any], where: str) -> list[str]:
    problems: list[str] = []
    name = command.get("name") or ""
    if not _NAME.match(name) or name != name.lower():
        problems.append(f"{where}: bad name {name!r}")
    if not 1 <= len(command.get("description") or "") <= 100:
        problems.append(f"{where}: description must be 1 to 100 characters")
    for lang, text in (command.get("description_localizations") or {}).items():
        if not 1 <= len(text) <= 100:
            problems.append(f"{where}: {lang} description must be 1 to 100 characters")
    options = command.get("options") or []
    if len(options) > 25:
        problems.append(f"{where}: more than 25 options")
    seen_optional = False
    for option in options:
        if option.get("type") in (1, 2):  # subcommand (group)
            problems += _command_problems(option, f"{where} {option.get('name')}")
            continue
        if option.get("required"):
            if seen_optional:
                problems.append(f"{where}: required option after an optional one")
        else:
            seen_optional = True
        problems += _command_problems({**option, "options": []}, f"{where}.{option.get('name')}")
        choices = option.get("choices") or []
        if len(choices) > 25 or any(len(c.get("name", "")) > 100 for c in choices):
            problems.append(f"{where}.{option.get('name')}: at most 25 choices of 100 characters")
        if choices and option.get("autocomplete"):
            problems.append(f"{where}.{option.get('name')}: choices and autocomplete together")
    return problems


def autocomplete_problems(data: dict[str, Any]) -> list[str]:
    choices = data.get("choices") or []
    problems = ["more than 25 choices"] if len(choices) > 25 else []
    for choice in choices:
        if not 1 <= len(str(choice.get("name", ""))) <= 100:
            problems.append("a choice name must be 1 to 100 characters")
        if len(str(choice.get("value", ""))) > 100:
            problems.append("a choice value must be at most 100 characters")
    return problems

"""The application-command tree, built from the command specs (COMMANDS), never by hand.

Each ``CommandSpec`` becomes one discord.py ``app_commands.Command`` whose callback signature is
generated from the spec's parameters, so discord.py derives the exact option schema it syncs
(names, types, required flags, max lengths, choices, autocomplete). A spec named "service add"
becomes the subcommand "add" of a group "service". Descriptions are ``locale_str``s carrying
their catalog key, and ``CatalogTranslator`` fills Discord's French localizations from bot.i18n.

Admin specs set ``default_permissions`` to Manage Server, but only as a hint: a server admin can
change it, and Discord ignores it on subcommands. The adapter decides ``is_admin`` at run time.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import discord
from discord import app_commands
from discord.app_commands import locale_str

from bot.i18n import CATALOGS, text
from bot.model import Problem
from bot.spec import CommandSpec, Param, ParamKind

__all__ = [
    "AutocompleteHandler",
    "CatalogTranslator",
    "CommandHandler",
    "add_commands",
    "discord_lang",
]

# Discord's limits for command and option descriptions and choice names.
DESCRIPTION_MAX = 100
CHOICE_NAME_MAX = 100
CHOICES_MAX = 25
# Discord caps a string option's max_length at 6,000.
STRING_MAX = 6000

CommandHandler = Callable[[discord.Interaction[Any], CommandSpec, dict[str, str]], Awaitable[None]]
"""Called for every slash command with its spec and the options the user gave, as text."""

AutocompleteHandler = Callable[
    [discord.Interaction[Any], CommandSpec, Param, str], Awaitable[list[app_commands.Choice[str]]]
]


def discord_lang(locale: discord.Locale | str | None) -> str:
    """Our language for a Discord locale: "fr" for every French locale, else English."""
    value = locale.value if isinstance(locale, discord.Locale) else (locale or "")
    return "fr" if value.lower().startswith("fr") else "en"


class CatalogTranslator(app_commands.Translator):
    """Discord localizations from the message catalog: French where translated, else none."""

    async def translate(
        self,
        string: locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        key = string.extras.get("key")
        lang = discord_lang(locale)
        if not isinstance(key, str) or lang == "en" or key not in CATALOGS[lang]:
            return None  # Discord then shows the English default
        params = {k: v for k, v in string.extras.items() if k != "key"}
        return _fit(text(key, lang, **params), DESCRIPTION_MAX)


def add_commands(
    tree: app_commands.CommandTree[Any],
    specs: Mapping[str, CommandSpec],
    *,
    on_command: CommandHandler,
    on_autocomplete: AutocompleteHandler,
) -> None:
    """Add one app command per spec (subcommands under their group) to ``tree``, globally."""
    groups: dict[str, app_commands.Group] = {}
    for spec in specs.values():
        group_name, _, sub_name = spec.name.partition(" ")
        parent = None
        if sub_name:
            parent = groups.get(group_name)
            if parent is None:
                parent = groups[group_name] = _group(group_name, specs)
                tree.add_command(parent)
        command = _command(
            spec,
            sub_name or spec.name,
            parent,
            on_command=on_command,
            on_autocomplete=on_autocomplete,
        )
        if parent is not None:
            parent.add_command(command)
        else:
            tree.add_command(command)


def _group(name: str, specs: Mapping[str, CommandSpec]) -> app_commands.Group:
    members = [s for s in specs.values() if s.name.partition(" ")[0] == name and " " in s.name]
    admin_only = bool(members) and all(s.admin for s in members)
    return app_commands.Group(
        name=name,
        description=_described("discord.group", name=name),
        # Discord reads default_permissions on the top-level command only, so a group whose
        # subcommands are all admin ones carries the hint for them.
        default_permissions=discord.Permissions(manage_guild=True) if admin_only else None,
    )


def _command(
    spec: CommandSpec,
    name: str,
    parent: app_commands.Group | None,
    *,
    on_command: CommandHandler,
    on_autocomplete: AutocompleteHandler,
) -> app_commands.Command[Any, ..., None]:
    async def callback(interaction: discord.Interaction[Any], **options: Any) -> None:
        given = {k: str(v) for k, v in options.items() if v is not None}
        await on_command(interaction, spec, given)

    # The generated signature is the option schema discord.py reads (see the module docstring).
    parameters = [
        inspect.Parameter(
            "interaction",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=discord.Interaction,
        )
    ]
    described: dict[str, locale_str] = {}
    choices: dict[str, list[app_commands.Choice[str]]] = {}
    completers: dict[str, Any] = {}
    for param in spec.params:
        parameters.append(
            inspect.Parameter(
                param.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=_annotation(param),
                default=inspect.Parameter.empty if param.required else None,
            )
        )
        described[param.name] = _described(param.description)
        if param.kind is ParamKind.PROBLEM:
            choices[param.name] = _problem_choices()
        elif param.kind in (ParamKind.SERVICE, ParamKind.SERVICE_OR_URL, ParamKind.REGION):
            completers[param.name] = _completer(spec, param, on_autocomplete)
    callback.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    callback.__name__ = callback.__qualname__ = f"discord_{spec.name.replace(' ', '_')}"
    decorated = app_commands.describe(**described)(callback)
    if choices:
        decorated = app_commands.choices(**choices)(decorated)
    if completers:
        decorated = app_commands.autocomplete(**completers)(decorated)
    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=name,
        description=_described(spec.description),
        callback=decorated,
        parent=parent,
    )
    if spec.admin and parent is None:
        command.default_permissions = discord.Permissions(manage_guild=True)
    return command


def _annotation(param: Param) -> Any:
    if param.kind is ParamKind.PROBLEM:
        return str  # a fixed list of choices; a length limit would add nothing
    return app_commands.Range[str, None, min(param.max_length, STRING_MAX)]


def _completer(spec: CommandSpec, param: Param, handler: AutocompleteHandler) -> Any:
    async def complete(
        interaction: discord.Interaction[Any], current: str
    ) -> list[app_commands.Choice[str]]:
        return await handler(interaction, spec, param, current)

    return complete


def _problem_choices() -> list[app_commands.Choice[str]]:
    return [
        app_commands.Choice(name=_described(f"problem.{p.value}"), value=p.value) for p in Problem
    ][:CHOICES_MAX]


def _described(key: str, **params: Any) -> locale_str:
    """The English text of ``key`` (Discord's default) carrying the key for the translator."""
    return locale_str(_fit(text(key, "en", **params), DESCRIPTION_MAX), key=key, **params)


def _fit(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"

"""Persistent buttons and the problem picker: all their state lives in the custom_id.

discord.py's ``DynamicItem`` matches a click's ``custom_id`` against a template and rebuilds the
item from it, so a button under a verdict posted last week still works after any number of
restarts, with nothing stored (the pattern of discord.py's examples/views/dynamic_counter.py).
custom_ids can only be up to 100 characters long; render.py drops a button that would not fit.

- ``ob:<action>:<value>``: a verdict button; clicking it runs ``/<action> <value>``.
- ``obs:<action>:<value>``: the select that a "report" button opens; picking a problem runs
  ``/<action> <value> <problem>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, Self, runtime_checkable

import discord
from discord import ui

from bot.adapters.discord.render import ButtonSpec, button_custom_id, select_custom_id
from bot.i18n import text
from bot.model import Problem

__all__ = ["ComponentHandler", "ProblemSelect", "VerdictButton", "problem_select"]


@runtime_checkable
class ComponentHandler(Protocol):
    """What a click is handed to: the adapter (reached through the client, see ``_handler``)."""

    async def on_button(
        self, interaction: discord.Interaction[Any], action: str, value: str
    ) -> None:
        """A verdict button was clicked."""
        ...

    async def on_pick(
        self, interaction: discord.Interaction[Any], action: str, value: str, picked: str
    ) -> None:
        """An option of the problem select was picked."""
        ...


class VerdictButton(
    ui.DynamicItem[ui.Button[ui.View]],
    template=r"ob:(?P<action>[a-z][a-z0-9_-]*):(?P<value>.+)",
):
    def __init__(self, spec: ButtonSpec) -> None:
        super().__init__(
            ui.Button(
                label=spec.label, style=discord.ButtonStyle(spec.style), custom_id=spec.custom_id
            )
        )
        self.action = spec.action
        self.value = spec.value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        label = getattr(item, "label", None) or match["action"]
        style = getattr(item, "style", discord.ButtonStyle.secondary)
        spec = ButtonSpec(match.string, label, style.value, match["action"], match["value"])
        return cls(spec)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _handler(interaction).on_button(interaction, self.action, self.value)


class ProblemSelect(
    ui.DynamicItem[ui.Select[ui.View]],
    template=r"obs:(?P<action>[a-z][a-z0-9_-]*):(?P<value>.+)",
):
    def __init__(self, action: str, value: str, *, lang: str = "en") -> None:
        custom_id = select_custom_id(action, value)
        if custom_id is None:
            raise ValueError(f"custom_id for {action} {value!r} is longer than 100 characters")
        options = [
            discord.SelectOption(label=text(f"problem.{p.value}", lang), value=p.value)
            for p in Problem
        ]
        super().__init__(
            ui.Select(
                custom_id=custom_id,
                placeholder=text("discord.pick_problem", lang),
                min_values=1,
                max_values=1,
                options=options,
            )
        )
        self.action = action
        self.value = value

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["action"], match["value"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        data: Mapping[str, Any] = interaction.data or {}
        values = data.get("values") or []
        picked = str(values[0]) if values else ""
        await _handler(interaction).on_pick(interaction, self.action, self.value, picked)


def problem_select(action: str, value: str, lang: str) -> ui.View | None:
    """A view holding the problem select for ``/<action> <value>``; None if it cannot fit."""
    if select_custom_id(action, value) is None:
        return None
    view = ui.View(timeout=None)
    view.add_item(ProblemSelect(action, value, lang=lang))
    return view


def button_view(rows: tuple[tuple[ButtonSpec, ...], ...]) -> ui.View | None:
    """The verdict buttons as a view of dynamic items (so clicks reach them after a restart)."""
    if not rows:
        return None
    view = ui.View(timeout=None)
    for index, row in enumerate(rows):
        for spec in row:
            assert button_custom_id(spec.action, spec.value) == spec.custom_id
            item = VerdictButton(spec)
            item.row = index
            view.add_item(item)
    return view


def _handler(interaction: discord.Interaction[Any]) -> ComponentHandler:
    handler = getattr(interaction.client, "handler", None)
    if not isinstance(handler, ComponentHandler):
        raise TypeError("the Discord client has no outagebot handler attached")
    return handler

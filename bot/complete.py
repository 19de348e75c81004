"""Autocomplete: choices for a command parameter as the user types, from the catalog and enums.

Platform-neutral so every adapter with typing-time suggestions (Discord autocomplete) offers the
same choices; the adapter only maps them to its wire format and limits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.i18n import text
from bot.model import Problem
from bot.regions import ISO_CODES, normalize_region, region_name
from bot.resolve import Resolver
from bot.spec import CommandSpec, ParamKind
from bot.text import fold

__all__ = ["Choice", "Completer"]

# Discord's ceiling for autocomplete and choices; other platforms take fewer.
MAX_CHOICES = 25
# Offered first when nothing is typed: the regions people and agents come from most.
_COMMON_REGIONS = ("US", "GB", "JP", "FR", "DE", "CA", "AU", "BR", "IN", "ES", "IT", "NL")


@dataclass(frozen=True, slots=True)
class Choice:
    name: str  # what the user reads
    value: str  # what the command receives, exactly as if typed


class Completer:
    """``complete(command, param, partial)`` -> at most 25 choices, best first; never raises."""

    def __init__(
        self,
        resolver: Resolver,
        specs: Mapping[str, CommandSpec],
        resolver_for: Callable[[str, str], Resolver] | None = None,
    ) -> None:
        self._resolver = resolver
        self._specs = dict(specs)
        self._resolver_for = resolver_for  # (platform, tenant) -> that server's catalog

    def complete(
        self,
        command: str,
        param: str,
        partial: str,
        lang: str = "en",
        *,
        platform: str = "",
        tenant: str = "",
        region: str | None = None,
        limit: int = MAX_CHOICES,
    ) -> list[Choice]:
        """``region``: the user's own (from their locale), offered first when nothing is typed."""
        spec = self._specs.get(command)
        found = next((p for p in spec.params if p.name == param), None) if spec else None
        if found is None:
            return []
        partial = partial.strip()[:100]
        kind = found.kind
        if kind in (ParamKind.SERVICE, ParamKind.SERVICE_OR_URL):
            resolver = self._resolver
            if self._resolver_for is not None and tenant:
                resolver = self._resolver_for(platform, tenant)
            # A server's own service is offered by the key its admin typed (its first alias).
            return [
                Choice(s.name, s.aliases[0] if "/" in s.key and s.aliases else s.key)
                for s in resolver.complete(partial, limit)
            ]
        if kind is ParamKind.PROBLEM:
            folded = fold(partial)
            return [
                Choice(text(f"problem.{p.value}", lang), p.value)
                for p in Problem
                if folded in fold(p.value) or folded in fold(text(f"problem.{p.value}", lang))
            ][:limit]
        if kind is ParamKind.REGION:
            return _regions(partial, lang, limit, region)
        return []


def _regions(partial: str, lang: str, limit: int, mine: str | None) -> list[Choice]:
    exact = normalize_region(partial) if partial else None
    folded = fold(partial)
    codes = [exact] if exact else []
    if not partial and mine and mine in ISO_CODES:
        codes.append(mine)  # the region the command would pick by default, first
    pool = _COMMON_REGIONS + tuple(sorted(ISO_CODES - set(_COMMON_REGIONS)))
    for code in pool:
        if code in codes:
            continue
        if not folded or fold(code).startswith(folded) or folded in fold(region_name(code, lang)):
            codes.append(code)
    return [Choice(_label(c, lang), c) for c in codes[:limit]]


def _label(code: str, lang: str) -> str:
    name = region_name(code, lang)
    name = name.removeprefix("the ") if lang == "en" else name
    return code if name == code else f"{name} ({code})"

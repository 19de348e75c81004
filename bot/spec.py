"""Command schemas: the one description of each slash command that every adapter registers from.

A parameter's kind decides how its raw text is checked and converted before the handler runs, so
handlers never see bad input.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ParamKind(enum.StrEnum):
    SERVICE = "service"  # a catalog service by key, name or alias
    SERVICE_OR_URL = "service_or_url"
    PROBLEM = "problem"
    REGION = "region"
    TEXT = "text"  # free text; the last TEXT parameter takes the rest of the line


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: ParamKind
    description: str  # message catalog key
    required: bool = False
    max_length: int = 100


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    description: str  # message catalog key
    params: tuple[Param, ...] = ()
    admin: bool = False

    def usage(self) -> str:
        parts = [f"/{self.name}"]
        for p in self.params:
            parts.append(f"<{p.name}>" if p.required else f"[{p.name}]")
        return " ".join(parts)

"""An Invocation: one use of a command, from any platform, in neutral form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Invocation:
    command: str
    args: Mapping[str, str] = field(default_factory=dict)  # raw text by parameter name
    platform: str = "console"
    tenant: str = ""  # guild or workspace id; "" in direct messages
    channel: str = ""
    user: str = ""
    locale: str | None = None  # e.g. "en-GB"; language and default region come from it
    is_admin: bool = False  # decided by the adapter at run time, never trusted from input

    @property
    def lang(self) -> str:
        return "fr" if (self.locale or "").lower().startswith("fr") else "en"

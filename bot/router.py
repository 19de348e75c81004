"""dispatch(invocation) -> Reply: checks every argument against the command's spec, then runs it.

Bad input never reaches a handler: each parameter is cleaned (invisible characters dropped),
checked (length, control characters) and converted (service, problem, region) here, and any
problem becomes an ephemeral reply that says what to type. Failures inside a handler become a
generic apology (and a log line), never a stack trace in chat; a storage failure says so and is
never mistaken for a service outage.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bot.context import CommandContext
from bot.invocation import Invocation
from bot.model import Problem, Service, problem_from_word
from bot.regions import normalize_region
from bot.reply import Reply, error
from bot.resolve import looks_like_url
from bot.spec import CommandSpec, Param, ParamKind
from bot.text import clean_note, has_control, strip_invisible

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Args:
    """Checked and converted arguments, by parameter name."""

    values: Mapping[str, object]

    def service(self, name: str = "service") -> Service | None:
        value = self.values.get(name)
        return value if isinstance(value, Service) else None

    def url(self, name: str = "service") -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def problem(self, name: str = "problem") -> Problem | None:
        value = self.values.get(name)
        return value if isinstance(value, Problem) else None

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if isinstance(value, str) else None


class CommandModule(Protocol):
    """A module in commands/: its SPEC and its handler."""

    SPEC: CommandSpec

    def run(self, ctx: CommandContext, inv: Invocation, args: Args) -> Awaitable[Reply]: ...


class Router:
    def __init__(self, ctx: CommandContext, commands: Mapping[str, CommandModule]) -> None:
        self.ctx = ctx
        self.commands = dict(commands)

    def spec(self, name: str) -> CommandSpec | None:
        module = self.commands.get(name)
        return module.SPEC if module else None

    async def dispatch(self, inv: Invocation) -> Reply:
        module = self.commands.get(inv.command)
        if module is None:
            return error("error.unknown_command", command=strip_invisible(inv.command)[:32])
        spec = module.SPEC
        if spec.admin and not inv.is_admin:
            return error("error.admin_only", command=spec.name)
        problem, args = self._check(spec, inv)
        if problem is not None:
            return problem
        try:
            return await module.run(self.ctx, inv, args)
        except sqlite3.Error:
            log.exception("storage error command=%s platform=%s", spec.name, inv.platform)
            return error("error.storage")
        except Exception:
            log.exception("command failed command=%s platform=%s", spec.name, inv.platform)
            return error("error.internal")

    def _check(self, spec: CommandSpec, inv: Invocation) -> tuple[Reply | None, Args]:
        values: dict[str, object] = {}
        usage = spec.usage()
        for param in spec.params:
            raw = strip_invisible(inv.args.get(param.name, "")).strip()
            if not raw:
                if param.required:
                    return error("error.missing", param=param.name, usage=usage), Args(values)
                continue
            if len(raw) > param.max_length:
                return error(
                    "error.too_long", param=param.name, limit=param.max_length, usage=usage
                ), Args(values)
            if has_control(raw) and param.kind is not ParamKind.TEXT:
                return error("error.control", param=param.name, usage=usage), Args(values)
            converted = self._convert(param, raw, inv)
            if isinstance(converted, Reply):
                return converted, Args(values)
            values[param.name] = converted
        return None, Args(values)

    def _convert(self, param: Param, raw: str, inv: Invocation) -> object:
        kind = param.kind
        if kind in (ParamKind.SERVICE, ParamKind.SERVICE_OR_URL):
            resolver = self.ctx.resolver_for(inv)
            service = resolver.resolve(raw)
            if service is not None:
                return service
            if kind is ParamKind.SERVICE_OR_URL and looks_like_url(raw):
                return raw
            suggestions = resolver.suggest(raw)
            if suggestions:
                return error(
                    "error.unknown_service",
                    query=raw,
                    suggestions=" / ".join(f"{s.name} ({s.key})" for s in suggestions),
                )
            return error("error.unknown_service_nosuggest", query=raw)
        if kind is ParamKind.PROBLEM:
            problem = problem_from_word(raw)
            if problem is None:
                return error(
                    "error.unknown_problem", value=raw, choices=", ".join(p.value for p in Problem)
                )
            return problem
        if kind is ParamKind.REGION:
            region = normalize_region(raw)
            if region is None:
                return error("error.unknown_region", value=raw)
            return region
        return clean_note(raw, param.max_length)

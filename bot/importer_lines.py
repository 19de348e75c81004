"""Checking import lines: JSON Lines events into rows, or a line-numbered reason why not.

Used by ``outagebot import`` in-process for small files and in a child process for large ones
(bot.import_check), so this module imports nothing that writes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bot.model import Indicator, Problem, Service, parse_time, problem_from_word, utcnow
from bot.regions import normalize_region
from bot.resolve import Resolver
from bot.store import ImportBatch, ProbeRow, ReportRow, StatusRow, WorksForMeRow
from bot.text import clean_note, has_control, strip_invisible

MAX_LINE_BYTES = 65_536
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_ERRORS_SHOWN = 20
BATCH_SIZE = 20_000  # events per batch, each written in one transaction

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # type: (required keys, optional keys)
    "report": (
        frozenset({"type", "at", "service", "region", "user"}),
        frozenset({"problem", "note"}),
    ),
    "works_for_me": (frozenset({"type", "at", "service", "region", "user"}), frozenset()),
    "probe": (
        frozenset({"type", "at", "service", "target", "region", "ok"}),
        frozenset({"status", "latency_ms", "error"}),
    ),
    "status_page": (
        frozenset({"type", "at", "service", "indicator", "description"}),
        frozenset(),
    ),
}
_ALLOWED = {kind: req | opt for kind, (req, opt) in _FIELDS.items()}


class BadLine(ValueError):
    """One line is wrong; the message says what and how to fix it."""


@dataclass(slots=True)
class ImportErrors(Exception):
    """The file was not imported; ``problems`` are (line number, message) pairs."""

    problems: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0

    def __str__(self) -> str:
        lines = [f"line {n}: {msg}" for n, msg in self.problems[:MAX_ERRORS_SHOWN]]
        if self.total > MAX_ERRORS_SHOWN:
            lines.append(f"... and {self.total - MAX_ERRORS_SHOWN} more problems")
        lines.append("Nothing was imported. Fix these lines and run the import again.")
        return "\n".join(lines)


Progress = Callable[[str, int, int], None]  # (phase, bytes done, bytes total)


def iter_batches(
    path: Path,
    parser: LineParser,
    errors: ImportErrors,
    progress: Progress | None,
    *,
    phase: str,
    batch_size: int = BATCH_SIZE,
) -> Iterator[ImportBatch]:
    """Full batches of valid events in file order (the last one may be short)."""
    size = path.stat().st_size
    batch = ImportBatch()
    done = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            done += len(raw)
            if not raw.strip():
                continue
            try:
                parser.add(raw, batch)
            except BadLine as exc:
                errors.total += 1
                if len(errors.problems) < MAX_ERRORS_SHOWN:
                    errors.problems.append((number, str(exc)))
                continue
            if len(batch) >= batch_size:
                if progress:
                    progress(phase, done, size)
                yield batch
                batch = ImportBatch()
    if len(batch):
        yield batch
    if progress:
        progress(phase, size, size)


class LineParser:
    """Turns one JSON line into a row, or raises BadLine saying what is wrong."""

    def __init__(self, resolver: Resolver, ids: dict[str, int]) -> None:
        self._resolver = resolver
        self._ids = ids
        self._services: dict[str, Service] = {}  # raw name -> service, cached: names repeat
        self._latest = utcnow() + timedelta(days=1)
        self.events = 0  # valid events seen
        self._regions: dict[str, str] = {}
        self._problems: dict[str, str] = {}

    def add(self, raw: bytes, batch: ImportBatch) -> None:
        if len(raw) > MAX_LINE_BYTES:
            raise BadLine(f"line longer than {MAX_LINE_BYTES} bytes; one event per line")
        try:
            # orjson: ~6x faster than json here, and strict (no NaN, valid UTF-8 only).
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            reason = "not UTF-8 text" if "utf-8" in str(exc).lower() else f"not valid JSON ({exc})"
            raise BadLine(reason) from None
        if not isinstance(obj, dict):
            raise BadLine('expected a JSON object like {"type": "report", ...}')
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in _FIELDS:
            raise BadLine(f'"type" must be one of {", ".join(sorted(_FIELDS))}, not {kind!r}')
        required = _FIELDS[kind][0]
        keys = obj.keys()
        # Set comparisons on dict keys run in C; the messages are built only on failure.
        if not required <= keys:
            raise BadLine(f"{kind} is missing {', '.join(sorted(required - keys))}")
        if not keys <= _ALLOWED[kind]:
            extra = ", ".join(sorted(keys - _ALLOWED[kind]))
            allowed = ", ".join(sorted(_ALLOWED[kind]))
            raise BadLine(f"unknown key {extra} (a {kind} has: {allowed})")
        service = self._service(obj["service"])
        sid = self._ids[service.key]
        at = _time(obj["at"], self._latest)
        if kind == "report":
            batch.reports.append(
                ReportRow(
                    sid,
                    int(at),
                    self._region(obj["region"]),
                    self._problem(obj.get("problem")),
                    "import",
                    "",
                    _string(obj, "user", 128),
                    _note(obj.get("note")),
                )
            )
        elif kind == "works_for_me":
            batch.works_for_me.append(
                WorksForMeRow(
                    sid,
                    int(at),
                    self._region(obj["region"]),
                    "import",
                    "",
                    _string(obj, "user", 128),
                )
            )
        elif kind == "probe":
            batch.probes.append(self._probe(obj, service, sid, at))
        else:
            batch.status.append(
                StatusRow(
                    sid, int(at), _indicator(obj["indicator"]), _string(obj, "description", 500)
                )
            )
        self.events += 1

    def _region(self, value: object) -> str:
        # Cached: a file holds a handful of distinct regions and problems in millions of lines.
        if isinstance(value, str):
            code = self._regions.get(value)
            if code is None:
                code = self._regions[value] = _region(value)
            return code
        return _region(value)

    def _problem(self, value: object) -> str:
        if isinstance(value, str):
            problem = self._problems.get(value)
            if problem is None:
                problem = self._problems[value] = _problem(value)
            return problem
        return _problem(value)

    def _service(self, name: object) -> Service:
        if not isinstance(name, str) or not name.strip():
            raise BadLine('"service" must be a service key, name or alias')
        cached = self._services.get(name)
        if cached is not None:
            return cached
        service = self._resolver.resolve(name)
        if service is None or service.key not in self._ids:
            raise BadLine(f"unknown service {name!r}; see /services or [[services]] in the config")
        self._services[name] = service
        return service

    def _probe(self, obj: dict[str, Any], service: Service, sid: int, at: float) -> ProbeRow:
        target = obj["target"]
        if not isinstance(target, str) or service.target(target) is None:
            known = ", ".join(t.kind for t in service.targets) or "none"
            raise BadLine(f"unknown target {target!r} for {service.key} (known: {known})")
        ok = obj["ok"]
        if not isinstance(ok, bool):
            raise BadLine('"ok" must be true or false')
        status = obj.get("status")
        if status is not None and (
            not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599
        ):
            raise BadLine('"status" must be an HTTP status from 100 to 599, or null')
        latency = obj.get("latency_ms")
        if latency is not None and (
            isinstance(latency, bool)
            or not isinstance(latency, int | float)
            or not math.isfinite(latency)
            or latency < 0
        ):
            raise BadLine('"latency_ms" must be a number of milliseconds >= 0, or null')
        error = obj.get("error")
        if error is not None and (not isinstance(error, str) or len(error) > 200):
            raise BadLine('"error" must be a string of at most 200 characters, or null')
        return ProbeRow(
            sid,
            target,
            _region(obj["region"]),
            int(at * 1000),
            ok,
            status,
            None if latency is None else float(latency),
            error,
        )


def _time(value: object, latest: datetime) -> float:
    if not isinstance(value, str):
        raise BadLine('"at" must be an ISO 8601 time string like 2022-12-28T21:30:00Z')
    at = parse_time(value)
    if at is None:
        if parse_time(value + "Z") is not None:
            raise BadLine(f'"at" {value!r} has no timezone; add Z for UTC')
        raise BadLine(f'"at" {value!r} is not an ISO 8601 time like 2022-12-28T21:30:00Z')
    # Out-of-range times are typos (a year 0001, a future date) that would skew baselines.
    if at < EARLIEST or at > latest:
        raise BadLine(f'"at" {value!r} is outside 2000-01-01 .. tomorrow; check the date')
    return at.timestamp()


def _region(value: object) -> str:
    code = normalize_region(value) if isinstance(value, str) else None
    if code is None:
        raise BadLine(f'"region" {value!r} is not a country code such as US, GB or JP')
    return code


def _problem(value: object) -> str:
    if value is None:
        return Problem.OTHER.value
    problem = problem_from_word(value) if isinstance(value, str) else None
    if problem is None:
        choices = ", ".join(p.value for p in Problem)
        raise BadLine(f'"problem" {value!r} is not one of {choices}')
    return problem.value


def _indicator(value: object) -> str:
    if not isinstance(value, str) or value not in {i.value for i in Indicator}:
        choices = ", ".join(i.value for i in Indicator)
        raise BadLine(f'"indicator" {value!r} is not one of {choices}')
    return str(value)


def _string(obj: dict[str, Any], key: str, limit: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise BadLine(f'"{key}" must be a non-empty string of at most {limit} characters')
    if has_control(value):
        raise BadLine(f'"{key}" contains control characters; use plain text')
    return strip_invisible(value)


def _note(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 500:
        raise BadLine('"note" must be a string of at most 500 characters')
    # Stored like a chat note: control and invisible characters removed, so an imported
    # escape sequence never reaches a terminal or a chat message.
    return clean_note(value, 500)

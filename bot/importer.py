"""``outagebot import FILE.jsonl``: bulk-load reports, confirmations, probes and status history.

The whole file is read and checked before anything is written, so a malformed line or an unknown
service changes nothing: every problem is reported with its line number. A valid file is then
written in batches, each in its own transaction (a running bot's writes interleave instead of
timing out). Writes are idempotent, so an import interrupted by a crash is finished by running it
again. The parsed file is held in memory (roughly 150 bytes per event): split files of tens of
millions of events.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.model import Indicator, Problem, Service, parse_time, utcnow
from bot.regions import normalize_region
from bot.resolve import Resolver
from bot.router import problem_from_word
from bot.store import (
    ImportBatch,
    ImportCounts,
    ProbeRow,
    ReportRow,
    StatusRow,
    Store,
    WorksForMeRow,
)
from bot.text import clean_note, has_control, strip_invisible

MAX_LINE_BYTES = 65_536
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_ERRORS_SHOWN = 20
BATCH_SIZE = 20_000

_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # type: (required keys, optional keys)
    "report": ({"type", "at", "service", "region", "user"}, {"problem", "note"}),
    "works_for_me": ({"type", "at", "service", "region", "user"}, set()),
    "probe": (
        {"type", "at", "service", "target", "region", "ok"},
        {"status", "latency_ms", "error"},
    ),
    "status_page": ({"type", "at", "service", "indicator", "description"}, set()),
}


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


Progress = Callable[[str, int, int], None]  # (phase, done, total)


async def import_file(
    path: Path,
    store: Store,
    resolver: Resolver,
    *,
    dedupe_seconds: int,
    progress: Progress | None = None,
) -> ImportCounts:
    """Check then write ``path``; raise ImportErrors (writing nothing) if any line is bad."""
    batch = parse_file(path, resolver, store.service_ids(), progress=progress)
    return await write_batch(store, batch, dedupe_seconds=dedupe_seconds, progress=progress)


def parse_file(
    path: Path,
    resolver: Resolver,
    ids: dict[str, int],
    *,
    progress: Progress | None = None,
) -> ImportBatch:
    size = path.stat().st_size
    batch = ImportBatch()
    errors = ImportErrors()
    parser = _LineParser(resolver, ids)
    done = 0
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            done += len(raw)
            if progress and number % 50_000 == 0:
                progress("check", done, size)
            if not raw.strip():
                continue
            try:
                parser.add(raw, batch)
            except BadLine as exc:
                errors.total += 1
                if len(errors.problems) < MAX_ERRORS_SHOWN:
                    errors.problems.append((number, str(exc)))
    if progress:
        progress("check", size, size)
    if errors.total:
        raise errors
    return batch


async def write_batch(
    store: Store, batch: ImportBatch, *, dedupe_seconds: int, progress: Progress | None = None
) -> ImportCounts:
    total = len(batch)
    done = 0
    sums = dict.fromkeys(("reports", "counted", "works_for_me", "probes", "status"), 0)
    for part in _chunks(batch, BATCH_SIZE):
        counts = await store.import_batch(part, dedupe_seconds)
        for name in sums:
            sums[name] += getattr(counts, name)
        done += len(part)
        if progress:
            progress("write", done, total)
    return ImportCounts(**sums)


def _chunks(batch: ImportBatch, size: int) -> Iterator[ImportBatch]:
    # Status and probes go first so that a verdict over a half-written import never shows
    # reports without the status line that came with them.
    for name in ("status", "probes", "works_for_me", "reports"):
        rows: list[Any] = getattr(batch, name)
        for start in range(0, len(rows), size):
            part = ImportBatch()
            getattr(part, name).extend(rows[start : start + size])
            yield part


class _LineParser:
    """Turns one JSON line into a row, or raises BadLine saying what is wrong."""

    def __init__(self, resolver: Resolver, ids: dict[str, int]) -> None:
        self._resolver = resolver
        self._ids = ids
        self._services: dict[str, Service] = {}  # raw name -> service, cached: names repeat
        self._latest = utcnow() + timedelta(days=1)

    def add(self, raw: bytes, batch: ImportBatch) -> None:
        if len(raw) > MAX_LINE_BYTES:
            raise BadLine(f"line longer than {MAX_LINE_BYTES} bytes; one event per line")
        try:
            obj = json.loads(raw)
        except UnicodeDecodeError:
            raise BadLine("not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise BadLine(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise BadLine('expected a JSON object like {"type": "report", ...}')
        kind = obj.get("type")
        if not isinstance(kind, str) or kind not in _FIELDS:
            raise BadLine(f'"type" must be one of {", ".join(sorted(_FIELDS))}, not {kind!r}')
        required, optional = _FIELDS[kind]
        missing = required - obj.keys()
        if missing:
            raise BadLine(f"{kind} is missing {', '.join(sorted(missing))}")
        extra = obj.keys() - required - optional
        if extra:
            allowed = ", ".join(sorted(required | optional))
            raise BadLine(f"unknown key {', '.join(sorted(extra))} (a {kind} has: {allowed})")
        service = self._service(obj["service"])
        sid = self._ids[service.key]
        at = _time(obj["at"], self._latest)
        if kind == "report":
            batch.reports.append(
                ReportRow(
                    sid,
                    int(at),
                    _region(obj["region"]),
                    _problem(obj.get("problem")),
                    "import",
                    "",
                    _string(obj, "user", 128),
                    _note(obj.get("note")),
                )
            )
        elif kind == "works_for_me":
            batch.works_for_me.append(
                WorksForMeRow(
                    sid, int(at), _region(obj["region"]), "import", "", _string(obj, "user", 128)
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

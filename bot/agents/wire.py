"""JSON bodies of the agent protocol: encoding, and validation that names the bad field.

Everything an agent sends is untrusted until checked here: every field's type and range is checked
and the first problem is reported as ``results[3].at_ms: ...`` (a 400, never a 500). The agent
checks what the core sends the same way, so a newer or broken core cannot crash an agent.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.agents.protocol import MAX_RESULTS, TOKEN, WINDOW_SECONDS
from bot.model import Target
from bot.probes.base import Outcome, Reason
from bot.probing.tasks import ProbeRecord, ProbeTask

_MAX_TEXT: Final = 500  # longest free text (error detail) we keep from an agent
_MAX_URL: Final = 2048
_MAX_LATENCY_MS: Final = 3_600_000.0  # a probe longer than an hour is a bug, not a measurement
_REASONS: Final = {r.value: r for r in Reason}


class BadInput(Exception):
    """A request the core refuses: ``status`` is the HTTP status, the message says what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def loads(body: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity; any failure is a BadInput 400."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body, parse_constant=refuse_constant)
    except RecursionError:
        # A deeply nested array overflows the parser's stack: bad input, not a server error.
        raise BadInput(400, "body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadInput(400, f"body is not valid JSON: {str(exc)[:120]}") from None


def dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


# ---- field checks ------------------------------------------------------------------------------


def _obj(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(400, f"{path}: expected a JSON object")
    return value


def _get(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise BadInput(400, f"{path}{key}: missing")
    return obj[key]


def _str(value: object, path: str, *, limit: int = 64) -> str:
    if not isinstance(value, str):
        raise BadInput(400, f"{path}: expected a string")
    if len(value) > limit:
        raise BadInput(400, f"{path}: longer than {limit} characters")
    return value


def _opt_str(value: object, path: str, *, limit: int) -> str | None:
    return None if value is None else _str(value, path, limit=limit)


def _token(value: object, path: str) -> str:
    text = _str(value, path)
    if TOKEN.fullmatch(text) is None:
        raise BadInput(400, f"{path}: expected 1-64 characters of A-Z, a-z, 0-9, _ or -")
    return text


def _int(value: object, path: str, lo: int, hi: int) -> int:
    # bool is an int in Python; true is not a status code.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(400, f"{path}: expected an integer")
    if not lo <= value <= hi:
        raise BadInput(400, f"{path}: {value} is outside {lo}..{hi}")
    return value


def _opt_int(value: object, path: str, lo: int, hi: int) -> int | None:
    return None if value is None else _int(value, path, lo, hi)


def _opt_number(value: object, path: str, hi: float) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadInput(400, f"{path}: expected a number")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= hi:
        raise BadInput(400, f"{path}: {value} is outside 0..{hi:g}")
    return number


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise BadInput(400, f"{path}: expected true or false")
    return value


def _reason(value: object, path: str) -> Reason | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in _REASONS:
        shown = repr(value)[:40]
        raise BadInput(400, f"{path}: {shown} is not one of {', '.join(sorted(_REASONS))}")
    return _REASONS[value]


def _list(value: object, path: str, limit: int) -> list[Any]:
    if not isinstance(value, list):
        raise BadInput(400, f"{path}: expected a list")
    if len(value) > limit:
        raise BadInput(400, f"{path}: {len(value)} items, at most {limit} allowed")
    return value


# ---- results -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """A checked results batch; ``records`` carry the batch's region."""

    batch_id: str
    region: str
    records: tuple[ProbeRecord, ...]


def record_json(record: ProbeRecord) -> dict[str, Any]:
    o = record.outcome
    return {
        "service": record.service,
        "target": record.target,
        "at_ms": record.at_ms,
        "ok": o.ok,
        "status": o.status,
        "latency_ms": o.latency_ms,
        "error": None if o.error is None else o.error.value,
    }


def batch_body(batch_id: str, region: str, records: Sequence[ProbeRecord]) -> bytes:
    return dumps(
        {"batch": batch_id, "region": region, "results": [record_json(r) for r in records]}
    )


def parse_batch_head(doc: object) -> tuple[str, str, list[Any]]:
    """The batch id, region and raw results list, checked only as far as the region check needs."""
    obj = _obj(doc, "body")
    batch_id = _token(_get(obj, "batch", ""), "batch")
    region = _str(_get(obj, "region", ""), "region", limit=8)
    results = _list(_get(obj, "results", ""), "results", MAX_RESULTS)
    if not results:
        raise BadInput(400, "results: empty; a batch carries at least one result")
    return batch_id, region, results


def parse_results(results: Sequence[Any], region: str, *, now_ms: int) -> tuple[ProbeRecord, ...]:
    # A result stamped later than the signature window allows is a broken clock or a forgery.
    latest = now_ms + WINDOW_SECONDS * 1000
    records = []
    for i, item in enumerate(results):
        path = f"results[{i}]."
        obj = _obj(item, f"results[{i}]")
        service = _str(_get(obj, "service", path), path + "service")
        target = _str(_get(obj, "target", path), path + "target")
        at_ms = _int(_get(obj, "at_ms", path), path + "at_ms", 1, latest)
        outcome = Outcome(
            ok=_bool(_get(obj, "ok", path), path + "ok"),
            status=_opt_int(obj.get("status"), path + "status", 100, 599),
            latency_ms=_opt_number(obj.get("latency_ms"), path + "latency_ms", _MAX_LATENCY_MS),
            error=_reason(obj.get("error"), path + "error"),
        )
        records.append(ProbeRecord(service, target, region, at_ms, outcome))
    return tuple(records)


# ---- on-demand outcomes ------------------------------------------------------------------------


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "ok": outcome.ok,
        "status": outcome.status,
        "latency_ms": outcome.latency_ms,
        "error": None if outcome.error is None else outcome.error.value,
        "detail": None if outcome.detail is None else outcome.detail[:_MAX_TEXT],
        "warning": None if outcome.warning is None else outcome.warning[:_MAX_TEXT],
    }


def parse_outcome(doc: object, path: str = "outcome") -> Outcome:
    obj = _obj(doc, path)
    p = path + "."
    return Outcome(
        ok=_bool(_get(obj, "ok", p), p + "ok"),
        status=_opt_int(obj.get("status"), p + "status", 100, 599),
        latency_ms=_opt_number(obj.get("latency_ms"), p + "latency_ms", _MAX_LATENCY_MS),
        error=_reason(obj.get("error"), p + "error"),
        detail=_opt_str(obj.get("detail"), p + "detail", limit=_MAX_TEXT),
        warning=_opt_str(obj.get("warning"), p + "warning", limit=_MAX_TEXT),
    )


def parse_answer(doc: object) -> tuple[str, Outcome]:
    """POST /ondemand: ``{"request": id, "outcome": {...}}``."""
    obj = _obj(doc, "body")
    return _token(_get(obj, "request", ""), "request"), parse_outcome(_get(obj, "outcome", ""))


# ---- assignment --------------------------------------------------------------------------------


def task_json(task: ProbeTask) -> dict[str, Any]:
    t = task.target
    return {
        "service": task.service,
        "target": t.kind,
        "url": t.url,
        "method": t.method,
        "expect_status": list(t.expect_status),
        "keyword": t.keyword,
        "keyword_absent": t.keyword_absent,
        "max_latency_ms": t.max_latency_ms,
        "expect_records": list(t.expect_records),
        "interval_seconds": task.interval_seconds,
        "public_only": task.public_only,
    }


def tasks_version(tasks: Sequence[dict[str, Any]]) -> str:
    """A short hash of the task list: agents re-fetch the assignment when it changes."""
    return hashlib.sha256(json.dumps(tasks, sort_keys=True).encode()).hexdigest()[:16]


def parse_task(doc: object, path: str) -> ProbeTask:
    obj = _obj(doc, path)
    p = path + "."
    status = _list(obj.get("expect_status", []), p + "expect_status", 100)
    records = _list(obj.get("expect_records", []), p + "expect_records", 100)
    interval = _int(_get(obj, "interval_seconds", p), p + "interval_seconds", 1, 86_400)
    target = Target(
        kind=_str(_get(obj, "target", p), p + "target"),
        url=_str(_get(obj, "url", p), p + "url", limit=_MAX_URL),
        method=_str(obj.get("method", "GET"), p + "method", limit=8),
        expect_status=tuple(
            _int(s, f"{p}expect_status[{j}]", 100, 599) for j, s in enumerate(status)
        ),
        keyword=_opt_str(obj.get("keyword"), p + "keyword", limit=_MAX_TEXT),
        keyword_absent=_opt_str(obj.get("keyword_absent"), p + "keyword_absent", limit=_MAX_TEXT),
        max_latency_ms=_opt_number(
            obj.get("max_latency_ms"), p + "max_latency_ms", _MAX_LATENCY_MS
        ),
        interval_seconds=interval,
        expect_records=tuple(
            _str(r, f"{p}expect_records[{j}]", limit=256) for j, r in enumerate(records)
        ),
    )
    public_only = _bool(obj.get("public_only", False), p + "public_only")
    return ProbeTask(_str(_get(obj, "service", p), p + "service"), target, interval, public_only)


@dataclass(frozen=True, slots=True)
class Assignment:
    agent: str
    region: str
    tasks: tuple[ProbeTask, ...]
    version: str


def parse_assignment(doc: object) -> Assignment:
    obj = _obj(doc, "assignment")
    tasks = _list(_get(obj, "tasks", ""), "tasks", 100_000)
    return Assignment(
        agent=_str(_get(obj, "agent", ""), "agent"),
        region=_str(_get(obj, "region", ""), "region", limit=8),
        tasks=tuple(parse_task(t, f"tasks[{i}]") for i, t in enumerate(tasks)),
        version=_str(_get(obj, "version", ""), "version"),
    )


# ---- commands ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    request: str
    url: str


@dataclass(frozen=True, slots=True)
class Commands:
    recheck: tuple[str, ...] = ()
    probe: tuple[ProbeRequest, ...] = ()
    version: str | None = None  # the current assignment's version, to notice changes quickly


def commands_json(commands: Commands) -> dict[str, Any]:
    return {
        "recheck": list(commands.recheck),
        "probe": [{"request": p.request, "url": p.url} for p in commands.probe],
        "version": commands.version,
    }


def parse_commands(doc: object) -> Commands:
    obj = _obj(doc, "commands")
    recheck = _list(obj.get("recheck", []), "recheck", 100_000)
    probes = _list(obj.get("probe", []), "probe", 1_000)
    parsed = []
    for i, item in enumerate(probes):
        p = _obj(item, f"probe[{i}]")
        parsed.append(
            ProbeRequest(
                request=_token(_get(p, "request", f"probe[{i}]."), f"probe[{i}].request"),
                url=_str(_get(p, "url", f"probe[{i}]."), f"probe[{i}].url", limit=_MAX_URL),
            )
        )
    return Commands(
        recheck=tuple(_str(r, f"recheck[{i}]", limit=200) for i, r in enumerate(recheck)),
        probe=tuple(parsed),
        version=_opt_str(obj.get("version"), "version", limit=64),
    )

"""The agent's link to a remote core: signed HTTP requests, statuses mapped to the link errors.

Every request gets a fresh request id, timestamp and signature (``protocol.signed_headers``), so a
resend is never mistaken for a replay; the batch id inside the body is what makes a resend
idempotent. The key is held here and nowhere else, and never appears in a log line or an error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Final, TypeVar

import aiohttp

from bot.agents.link import BatchRejected, CoreUnavailable
from bot.agents.protocol import (
    ASSIGNMENT_PATH,
    COMMANDS_PATH,
    ONDEMAND_PATH,
    RESULTS_PATH,
    signed_headers,
)
from bot.agents.wire import (
    Assignment,
    BadInput,
    Commands,
    dumps,
    outcome_json,
    parse_assignment,
    parse_commands,
)
from bot.probes.base import Outcome

log = logging.getLogger(__name__)
T = TypeVar("T")

# Statuses that mean "this batch, as written, will never be accepted": set it aside.
# 401 (key or clock) and 404 (wrong URL, older core) are the operator's to fix, not the batch's.
REJECTING: Final = frozenset({400, 403, 413, 422})
_MAX_REPLY: Final = 32 * 1024 * 1024  # an assignment of many thousand tasks still fits
_REQUEST_SECONDS: Final = 30.0


class HttpLink:
    def __init__(
        self,
        *,
        core_url: str,
        agent_id: str,
        key: bytes,
        request_seconds: float = _REQUEST_SECONDS,
    ) -> None:
        self._base = core_url.rstrip("/")
        self._agent_id = agent_id
        self._key = key
        self._seconds = request_seconds
        # Plain session: the core's URL is operator config, not a user-supplied probe target.
        self._session = aiohttp.ClientSession(trust_env=False)

    async def close(self) -> None:
        await self._session.close()

    async def assignment(self) -> Assignment:
        status, reply = await self._call("GET", ASSIGNMENT_PATH)
        _expect_ok(status, reply, "assignment")
        return _parse(parse_assignment, reply, "assignment")

    async def send(self, body: bytes) -> bool:
        status, reply = await self._call("POST", RESULTS_PATH, body)
        if status == 409:
            # Our request id collided with one the core saw: not the batch's fault, so try
            # once more with a fresh id before calling the core unavailable.
            status, reply = await self._call("POST", RESULTS_PATH, body)
        if status in REJECTING:
            raise BatchRejected(f"{status}: {_error_text(reply)}")
        _expect_ok(status, reply, "results")
        doc: object = _parse(lambda d: d, reply, "results")
        return isinstance(doc, dict) and doc.get("duplicate") is True

    async def commands(self, wait: float) -> Commands:
        status, reply = await self._call(
            "GET", COMMANDS_PATH, params={"wait": f"{wait:g}"}, seconds=wait + self._seconds
        )
        _expect_ok(status, reply, "commands")
        return _parse(parse_commands, reply, "commands")

    async def answer(self, request_id: str, outcome: Outcome) -> None:
        body = dumps({"request": request_id, "outcome": outcome_json(outcome)})
        status, reply = await self._call("POST", ONDEMAND_PATH, body)
        _expect_ok(status, reply, "ondemand")

    async def _call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        *,
        params: dict[str, str] | None = None,
        seconds: float | None = None,
    ) -> tuple[int, bytes]:
        headers = signed_headers(agent_id=self._agent_id, key=self._key, body=body)
        if body:
            headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=seconds or self._seconds, sock_connect=5)
        try:
            async with self._session.request(
                method,
                self._base + path,
                data=body,
                headers=headers,
                params=params,
                timeout=timeout,
            ) as resp:
                return resp.status, await _read_capped(resp, _MAX_REPLY)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # The type name is enough to diagnose; the message may carry the URL, never the key.
            raise CoreUnavailable(f"cannot reach the core ({type(exc).__name__}: {exc})") from exc


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    data = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        data += chunk
        if len(data) > cap:
            raise CoreUnavailable(f"the core's reply is larger than {cap} bytes")
    return bytes(data)


def _expect_ok(status: int, reply: bytes, what: str) -> None:
    if status == 200:
        return
    if status == 401:
        log.error(
            "the core refused our signature on %s: %s (check the key variable and the clock)",
            what,
            _error_text(reply),
        )
    raise CoreUnavailable(f"{what}: the core answered {status}: {_error_text(reply)}")


def _error_text(reply: bytes) -> str:
    try:
        doc = json.loads(reply)
    except ValueError:
        return reply[:200].decode("utf-8", "replace")
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return str(doc["error"])[:300]
    return reply[:200].decode("utf-8", "replace")


def _parse(parse: Callable[[Any], T], reply: bytes, what: str) -> T:
    # A 200 we cannot read is a core (or proxy) problem: retry later, like a 5xx.
    try:
        return parse(json.loads(reply))
    except (ValueError, RecursionError, BadInput) as exc:
        raise CoreUnavailable(f"{what}: unreadable reply from the core: {exc}") from exc

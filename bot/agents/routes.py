"""The agent endpoints on the core's aiohttp server; ``add_agent_routes`` mounts them.

Each signed handler does the same four steps in the same order: cap the body before reading it
(413), check the signature, timestamp and request id (401/409), parse and check the JSON (400,
403 for another region's results), then call the hub. Input problems are 4xx JSON
``{"error": ...}``; a storage failure is 503; nothing is written on any refusal.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.agents.auth import Credential
from bot.agents.hub import AgentHub
from bot.agents.protocol import (
    AGENTS_PATH,
    ASSIGNMENT_PATH,
    COMMANDS_PATH,
    MAX_BODY_BYTES,
    MAX_WAIT_SECONDS,
    ONDEMAND_PATH,
    RESULTS_PATH,
)
from bot.agents.wire import BadInput, commands_json

log = logging.getLogger(__name__)

_HUB_KEY = web.AppKey("agent_hub", AgentHub)
Handler = Callable[[web.Request, Credential, bytes], Awaitable[web.StreamResponse]]


def add_agent_routes(app: web.Application, hub: AgentHub) -> None:
    """Mount the agent API on ``app`` and release long polls when the app shuts down.

    The handlers read the body themselves with their own cap (``MAX_BODY_BYTES``), so the app's
    ``client_max_size`` (kept small for the rest of the API) does not apply to them.
    """
    app[_HUB_KEY] = hub
    app.router.add_get(ASSIGNMENT_PATH, _signed(_assignment))
    app.router.add_post(RESULTS_PATH, _signed(_results))
    app.router.add_get(COMMANDS_PATH, _signed(_commands))
    app.router.add_post(ONDEMAND_PATH, _signed(_ondemand))
    app.router.add_get(AGENTS_PATH, _agents)

    async def release(_app: web.Application) -> None:
        hub.close()

    # on_shutdown runs before aiohttp waits for open requests; a 25 s poll would delay stopping.
    app.on_shutdown.append(release)


def _signed(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        hub = request.app[_HUB_KEY]
        try:
            body = await _read_body(request, MAX_BODY_BYTES)
            cred = hub.verifier.verify(request.headers, body)
            return await handler(request, cred, body)
        except BadInput as exc:
            if exc.status in (401, 409):
                # Worth an operator's attention (a wrong key, a skewed clock, a replay), but
                # never with the headers: the signature is derived from the key.
                log.warning(
                    "agent request refused status=%d path=%s: %s",
                    exc.status,
                    request.path,
                    exc.message,
                )
            return _error(exc.status, exc.message)
        except sqlite3.Error:
            log.exception("agent request failed on storage path=%s", request.path)
            return _error(503, "the database is unavailable; retry later")

    return wrapped


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise BadInput(413, f"body is {request.content_length} bytes; at most {limit} allowed")
    data = bytearray()
    while chunk := await request.content.read(64 * 1024):
        data += chunk
        if len(data) > limit:  # chunked bodies carry no length up front
            raise BadInput(413, f"body exceeds {limit} bytes")
    return bytes(data)


async def _assignment(request: web.Request, cred: Credential, body: bytes) -> web.Response:
    return web.json_response(await request.app[_HUB_KEY].assignment(cred))


async def _results(request: web.Request, cred: Credential, body: bytes) -> web.Response:
    return web.json_response(await request.app[_HUB_KEY].accept(cred, body))


async def _commands(request: web.Request, cred: Credential, body: bytes) -> web.Response:
    raw = request.query.get("wait", "0")
    try:
        wait = float(raw)
    except ValueError:
        wait = math.nan
    if not math.isfinite(wait) or wait < 0:
        raise BadInput(400, f"wait={raw[:32]!r}: expected seconds from 0 to {MAX_WAIT_SECONDS:g}")
    commands = await request.app[_HUB_KEY].commands(cred, min(wait, MAX_WAIT_SECONDS))
    return web.json_response(commands_json(commands))


async def _ondemand(request: web.Request, cred: Credential, body: bytes) -> web.Response:
    return web.json_response({"accepted": request.app[_HUB_KEY].answer(cred, body)})


async def _agents(request: web.Request) -> web.Response:
    try:
        statuses = await request.app[_HUB_KEY].status()
    except sqlite3.Error:
        log.exception("listing agents failed")
        return _error(503, "the database is unavailable; retry later")
    return web.json_response([s.json() for s in statuses])


def _error(status: int, message: str) -> web.Response:
    body: dict[str, Any] = {"error": message}
    return web.json_response(body, status=status)

"""The HTTP API (aiohttp): the catalog, the verdict as JSON, and a health check.

GET /api/v1/services, GET /api/v1/services/{key}/verdict[?at=ISO-TIME], GET /healthz. Errors are
JSON ``{"error": ..., "hint": ...}`` with a 4xx status that says whose mistake it was; a storage
failure is a 503, never a verdict.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from aiohttp import web

from bot.model import Catalog, Service, parse_time
from bot.resolve import Resolver
from bot.store import Store
from bot.verdict_json import verdict_to_json
from bot.verdicts import VerdictService

log = logging.getLogger(__name__)

# The agent routes read their own bodies with their own cap; nothing else takes a body.
MAX_BODY = 64 * 1024


class ApiServer:
    def __init__(
        self,
        *,
        catalog: Catalog,
        resolver: Resolver,
        store: Store,
        verdicts: VerdictService,
        host: str,
        port: int,
    ) -> None:
        self._catalog = catalog
        self._resolver = resolver
        self._store = store
        self._verdicts = verdicts
        self._host = host
        self._port = port
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/api/v1/services", self._services)
        self.app.router.add_get("/api/v1/services/{key}/verdict", self._verdict)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("api listening host=%s port=%s", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        ok = await self._store.ping()
        return web.json_response({"ok": ok, "database": ok}, status=200 if ok else 503)

    async def _services(self, request: web.Request) -> web.Response:
        return web.json_response({"services": [_service_json(s) for s in self._catalog.services]})

    async def _verdict(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        service = self._resolver.resolve(key)
        if service is None:
            suggestions = [s.key for s in self._resolver.suggest(key)]
            return _error(
                404,
                f"unknown service {key[:64]!r}",
                "GET /api/v1/services lists the keys"
                + (f"; did you mean {', '.join(suggestions)}?" if suggestions else ""),
            )
        at = None
        raw_at = request.query.get("at")
        if raw_at is not None:
            at = parse_time(raw_at)
            if at is None:
                return _error(
                    400,
                    f"at={raw_at[:64]!r} is not an ISO 8601 time with a timezone",
                    "use e.g. at=2022-12-28T21:30:00Z",
                )
        try:
            verdict = await self._verdicts.verdict(service, at)
        except sqlite3.Error:
            log.exception("verdict failed service=%s", service.key)
            return _error(503, "the database is unavailable", "try again shortly")
        return web.json_response(verdict_to_json(verdict))


def _service_json(s: Service) -> dict[str, Any]:
    return {
        "key": s.key,
        "name": s.name,
        "aliases": list(s.aliases),
        "targets": {t.kind: t.url for t in s.targets},
        "status_page": s.status_page,
        "tags": list(s.tags),
    }


def _error(status: int, message: str, hint: str) -> web.Response:
    return web.json_response({"error": message, "hint": hint}, status=status)

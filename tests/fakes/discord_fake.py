"""A local, protocol-faithful Discord: REST under /api/v10 and the gateway websocket, on loopback.

Built with aiohttp on 127.0.0.1 port 0 for driving the real discord.py client end to end. It
keeps what the tests assert on: every request, the synced commands, messages, interaction
responses, gateway IDENTIFY/RESUME frames and rate-limit violations. It enforces what Discord
enforces (shared/PROTOCOLS.md): the bot token, the 3 s first-response deadline (10062), a second
callback (40060), expired followup tokens (50027), the global 50 requests/s (counted in
``global_429s``), per-channel buckets announced in ``X-RateLimit-*`` headers, and every payload
limit (400, code 50035; see discord_limits.py, refusals kept in ``invalid``). Threads started
from a message take the message's id; a second start is 160004, a DM refuses threads (50003),
and ``threadless_channels`` refuse them as a channel without the permission does (50013).

Synchronise on state, never on time: ``await fake.wait_for(lambda: ...)`` wakes on every change.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from fakes import discord_payloads as p
from fakes.discord_limits import autocomplete_problems, command_problems, message_problems

JSON = "application/json"  # exactly: discord.py treats "...; charset=utf-8" as text
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    files: list[tuple[str, bytes]]
    at: float
    authorized: bool
    status: int = 0


ENTRY = web.RequestKey("entry", Request)


@dataclass
class Interaction:
    id: str
    token: str
    payload: dict[str, Any]
    created: float
    followup_deadline: float
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)  # messages, in order
    original: dict[str, Any] | None = None
    original_deleted: bool = False
    refusals: list[int] = field(default_factory=list)  # Discord error codes we answered

    @property
    def callback_types(self) -> list[int]:
        return [c["type"] for c in self.callbacks]


@dataclass
class Session:
    id: str
    shard: tuple[int, int]
    seq: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None


@dataclass
class Injected:
    method: str
    path_prefix: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int
    created: bool = False  # served first: only the answer is the failure


class FakeDiscord:
    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        global_limit: int = 50,
        global_window: float = 1.0,
        channel_limit: int = 5,
        channel_window: float = 5.0,
        shards: int = 1,
    ) -> None:
        self.token = token
        self.app_id = p.snowflake()
        self.bot = p.user(p.snowflake(), "outagebot", bot=True)
        self.owner = p.user(p.snowflake(), "owner")
        self.person = p.user(p.snowflake(), "alice")
        self.guild_id = p.snowflake()
        self.channel_id = p.snowflake()
        self.dm_channel_id = p.snowflake()
        self.global_limit = global_limit
        self.global_window = global_window
        self.channel_limit = channel_limit
        self.channel_window = channel_window
        self.shards = shards
        self.ack_deadline = 3.0
        self.followup_ttl = 15 * 60.0
        # what happened
        self.requests: list[Request] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or a guild id
        self.messages: dict[str, dict[str, Any]] = {}
        self.channel_messages: dict[str, list[str]] = {}
        self.interactions: dict[str, Interaction] = {}
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.sessions: dict[str, Session] = {}
        self.global_429s = 0
        self.route_429s = 0
        self.invalid: list[list[str]] = []  # bodies refused with 50035, by problem list
        self.forbidden_channels: set[str] = set()
        self.unknown_channels: set[str] = set()
        self.threadless_channels: set[str] = set()  # no Create Public Threads permission
        self.threads: dict[str, dict[str, Any]] = {}  # thread id (= its first message's id)
        self._injected: list[Injected] = []
        self._global_times: deque[float] = deque()
        self._max_in_window = 0
        self._buckets: dict[str, deque[float]] = {}
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}  # -> (message id, when)
        self.nonce_ttl = 300.0  # seconds a nonce is remembered ("the past few minutes")
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._sockets: set[web.WebSocketResponse] = set()
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/gateway", self._gateway)
        r = app.router
        base = "/api/v10"
        r.add_get(f"{base}/users/@me", self._me)
        r.add_get(f"{base}/oauth2/applications/@me", self._application)
        r.add_get(f"{base}/gateway", self._gateway_url)
        r.add_get(f"{base}/gateway/bot", self._gateway_bot)
        r.add_put(f"{base}/applications/{{app}}/commands", self._put_commands)
        r.add_put(f"{base}/applications/{{app}}/guilds/{{guild}}/commands", self._put_commands)
        r.add_post(f"{base}/interactions/{{id}}/{{token}}/callback", self._callback)
        r.add_post(f"{base}/webhooks/{{app}}/{{token}}", self._followup)
        r.add_patch(f"{base}/webhooks/{{app}}/{{token}}/messages/@original", self._edit_original)
        r.add_delete(f"{base}/webhooks/{{app}}/{{token}}/messages/@original", self._del_original)
        r.add_post(f"{base}/channels/{{channel}}/messages", self._create_message)
        r.add_patch(f"{base}/channels/{{channel}}/messages/{{message}}", self._edit_message)
        r.add_post(f"{base}/channels/{{channel}}/messages/{{message}}/threads", self._start_thread)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ---- waiting ---------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every change); return its value."""

        async def check() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        return await asyncio.wait_for(check(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ---- test controls ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int = 429,
        retry_after: float = 1.0,
        times: int = 1,
        body: dict[str, Any] | None = None,
        created: bool = False,
        cloudflare: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` (a route 429 by default).

        ``created``: the request is served (the message exists) and only its answer is the
        failure, as when Discord's edge gives up after the write (a 502 from Cloudflare).
        ``cloudflare``: a 429 from Cloudflare rather than from Discord's API, without the
        ``Via`` header; discord.py does not wait and retry those itself.
        """
        headers: dict[str, str] = {}
        if status == 429:
            body = body or {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
            }
            headers = {"Retry-After": f"{retry_after}"}
            if not cloudflare:
                headers |= {"X-RateLimit-Scope": "user", "Via": "1.1 google"}
        self._injected.append(
            Injected(method, path_prefix, status, body or {}, headers, times, created)
        )

    async def drop_gateway(self, code: int = 4000) -> None:
        """Close every gateway connection as Discord does before asking for a RESUME."""
        for session in self.sessions.values():
            if session.ws is not None:
                ws, session.ws = session.ws, None
                await ws.close(code=code)
        await self._notify()

    def max_requests_in_window(self) -> int:
        """The most authorized REST requests that reached us within one global window."""
        return self._max_in_window

    async def slash(
        self,
        name: str,
        options: dict[str, str] | None = None,
        *,
        dm: bool = False,
        permissions: int = p.MEMBER,
        locale: str = "en-US",
        age: float = 0.0,
        followup_ttl: float | None = None,
        subcommand: str | None = None,
    ) -> Interaction:
        """A user types ``/name`` with ``options``: INTERACTION_CREATE type 2 on the gateway."""
        command, scope = self._find_command(name, dm=dm)
        opts = self._options(command, subcommand, options or {})
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": opts}
        if scope != "global":
            data["guild_id"] = scope
        return await self._interact(
            2,
            data,
            dm=dm,
            permissions=permissions,
            locale=locale,
            age=age,
            followup_ttl=followup_ttl,
        )

    async def autocomplete(
        self, name: str, focused: str, partial: str, *, locale: str = "en-US", dm: bool = False
    ) -> Interaction:
        command, scope = self._find_command(name, dm=dm)
        option = next(o for o in command.get("options", []) if o["name"] == focused)
        assert option.get("autocomplete"), f"/{name} {focused} has no autocomplete"
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": [{"name": focused, "type": 3, "value": partial, "focused": True}],
        }
        if scope != "global":
            data["guild_id"] = scope
        return await self._interact(4, data, dm=dm, permissions=p.MEMBER, locale=locale)

    async def click(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        values: list[str] | None = None,
        locale: str = "en-US",
        permissions: int = p.MEMBER,
        dm: bool = False,
    ) -> Interaction:
        """A user clicks a button (or picks from a select) on ``message``."""
        component = next(
            (
                c
                for row in message.get("components", [])
                for c in row["components"]
                if c.get("custom_id") == custom_id
            ),
            None,
        )
        assert component is not None, f"{custom_id} is not on message {message['id']}"
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = values
        return await self._interact(
            3, data, dm=dm, permissions=permissions, locale=locale, message=message
        )

    def all_messages(self) -> list[dict[str, Any]]:
        return list(self.messages.values())

    # ---- gateway ---------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any], shard: int = 0) -> None:
        """Send a DISPATCH to the shard's session (kept for replay if it is disconnected).

        After a restart (a new IDENTIFY) the newest connected session gets it, as on Discord.
        """
        mine = [s for s in self.sessions.values() if s.shard[0] == shard]
        live = [s for s in mine if s.ws is not None and not s.ws.closed]
        session = (live or mine)[-1]
        await self._send_event(session, event, data)

    async def _send_event(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.history.append(frame)
        if session.ws is not None and not session.ws.closed:
            await session.ws.send_str(json.dumps(frame))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
            async for msg in ws:
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    await self._identify(ws, frame["d"])
                elif op == 6:
                    await self._resume(ws, frame["d"])
        finally:
            self._sockets.discard(ws)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        self.identifies.append(d)
        if d.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, count = d.get("shard") or [0, 1]
        session = Session(id=p.snowflake(), shard=(shard_id, count), ws=ws)
        self.sessions[session.id] = session
        guilds = [g for g in (self.guild_id,) if (int(g) >> 22) % count == shard_id]
        ready: dict[str, Any] = {
            "v": 10,
            "user": self.bot,
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "guilds": [{"id": g, "unavailable": True} for g in guilds],
            "application": {"id": self.app_id, "flags": 0},
        }
        if d.get("shard") is not None:
            ready["shard"] = [shard_id, count]
        await self._send_event(session, "READY", ready)
        for g in guilds:
            channel = p.text_channel(self.channel_id, g)
            await self._send_event(session, "GUILD_CREATE", p.guild_create(g, "Test", [channel]))
        await self._notify()

    async def _resume(self, ws: web.WebSocketResponse, d: dict[str, Any]) -> None:
        self.resumes.append(d)
        session = self.sessions.get(d.get("session_id", ""))
        if session is None or d.get("token") != self.token:
            await ws.send_str(json.dumps({"op": 9, "d": False}))  # INVALID_SESSION
            return
        session.ws = ws
        for frame in session.history:
            if frame["s"] > (d.get("seq") or 0):
                await ws.send_str(json.dumps(frame))
        await self._send_event(session, "RESUMED", {})
        await self._notify()

    # ---- REST: login, gateway, commands ----------------------------------------------------

    async def _me(self, request: web.Request) -> web.Response:
        return self._json(self.bot)

    async def _application(self, request: web.Request) -> web.Response:
        return self._json(
            {
                "id": self.app_id,
                "name": "outagebot",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.owner,
                "verify_key": "0" * 64,
                "flags": 0,
                "bot": self.bot,
                "summary": "",
            }
        )

    async def _gateway_url(self, request: web.Request) -> web.Response:
        return self._json({"url": self.gateway_url})

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return self._json(
            {
                "url": self.gateway_url,
                "shards": self.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 1000,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _put_commands(self, request: web.Request) -> web.Response:
        if request.match_info["app"] != self.app_id:
            return self._json(p.error(10002, "Unknown Application"), status=404)
        body, _ = await _body(request)
        if refused := self._invalid(command_problems(body)):
            return refused
        scope = request.match_info.get("guild", "global")
        stored = []
        for command in body:
            echoed = {
                **command,
                "id": p.snowflake(),
                "application_id": self.app_id,
                "version": p.snowflake(),
                "default_member_permissions": command.get("default_member_permissions"),
                "type": command.get("type", 1),
            }
            if scope != "global":
                echoed["guild_id"] = scope
            stored.append(echoed)
        self.commands[scope] = stored
        await self._notify()
        return self._json(stored)

    # ---- REST: interactions ----------------------------------------------------------------

    async def _callback(self, request: web.Request) -> web.Response:
        found = self.interactions.get(request.match_info["id"])
        body, files = await _body(request)
        if found is None or found.token != request.match_info["token"]:
            return self._json(p.error(10062, "Unknown interaction"), status=404)
        if time.monotonic() - found.created > self.ack_deadline:
            found.refusals.append(10062)
            await self._notify()
            return self._json(p.error(10062, "Unknown interaction"), status=404)
        if found.callbacks:
            found.refusals.append(40060)
            await self._notify()
            return self._json(
                p.error(40060, "Interaction has already been acknowledged."), status=400
            )
        kind = body["type"]
        data = body.get("data") or {}
        check = autocomplete_problems if kind == 8 else message_problems
        if refused := self._invalid(check(data)):
            return refused
        found.callbacks.append(body)
        flags = int(data.get("flags") or 0)
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):
            if kind == 5:
                flags |= p.LOADING
            msg = self._new_message(
                self._interaction_channel(found),
                self.bot,
                data,
                flags=flags,
                files=files,
                kind=20,
            )
            found.original = msg
            resource["message"] = msg
        elif kind == 7 and found.payload.get("message"):
            message = self.messages[found.payload["message"]["id"]]
            message.update(
                {k: v for k, v in data.items() if k in ("content", "embeds", "components")}
            )
            resource["message"] = message
        await self._notify()
        return self._json(
            {
                "interaction": {
                    "id": found.id,
                    "type": found.payload["type"],
                    "response_message_id": found.original["id"] if found.original else None,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool(flags & p.EPHEMERAL),
                },
                "resource": resource,
            }
        )

    async def _followup(self, request: web.Request) -> web.Response:
        found = self._by_token(request.match_info["token"])
        body, files = await _body(request)
        if found is None:
            return self._json(p.error(10015, "Unknown Webhook"), status=404)
        if time.monotonic() > found.followup_deadline:
            found.refusals.append(50027)
            await self._notify()
            return self._json(p.error(50027, "Invalid Webhook Token"), status=401)
        if not found.callbacks:
            return self._json(p.error(10015, "Unknown Webhook"), status=404)
        if refused := self._invalid(message_problems(body)):
            return refused
        original = found.original
        if original is not None and original["flags"] & p.LOADING and not found.original_deleted:
            # The first followup after a deferral replaces the "thinking..." placeholder,
            # which keeps the ephemerality chosen when deferring.
            flags = original["flags"] & ~p.LOADING
            msg = self._replace(original, body, files, flags=flags)
        else:
            flags = int(body.get("flags") or 0)
            msg = self._new_message(
                self._interaction_channel(found), self.bot, body, flags=flags, files=files
            )
        found.followups.append(msg)
        await self._notify()
        return self._json(msg)

    async def _edit_original(self, request: web.Request) -> web.Response:
        found = self._by_token(request.match_info["token"])
        body, files = await _body(request)
        if found is None or found.original is None or found.original_deleted:
            return self._json(p.error(10008, "Unknown Message"), status=404)
        if refused := self._invalid(message_problems(body)):
            return refused
        msg = self._replace(found.original, body, files, flags=found.original["flags"] & ~p.LOADING)
        await self._notify()
        return self._json(msg)

    async def _del_original(self, request: web.Request) -> web.Response:
        found = self._by_token(request.match_info["token"])
        if found is None or found.original is None or found.original_deleted:
            return self._json(p.error(10008, "Unknown Message"), status=404)
        found.original_deleted = True
        self.messages.pop(found.original["id"], None)
        await self._notify()
        return web.Response(status=204)

    # ---- REST: channel messages ------------------------------------------------------------

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        body, files = await _body(request)
        if channel in self.forbidden_channels:
            return self._json(p.error(50001, "Missing Access"), status=403)
        if channel in self.unknown_channels:
            return self._json(p.error(10003, "Unknown Channel"), status=404)
        if refused := self._invalid(message_problems(body)):
            return refused
        nonce = body.get("nonce")
        now = time.monotonic()
        if nonce and body.get("enforce_nonce"):
            seen = self._nonces.get((channel, str(nonce)))
            # Discord checks a nonce "for uniqueness in the past few minutes" only.
            if seen is not None and seen[0] in self.messages and now - seen[1] <= self.nonce_ttl:
                return self._json(self.messages[seen[0]])  # Discord returns the first message
        msg = self._new_message(channel, self.bot, body, flags=0, files=files)
        if nonce:
            self._nonces[(channel, str(nonce))] = (msg["id"], now)
        await self._notify()
        return self._json(msg)

    async def _edit_message(self, request: web.Request) -> web.Response:
        body, files = await _body(request)
        msg = self.messages.get(request.match_info["message"])
        if msg is None or msg["channel_id"] != request.match_info["channel"]:
            return self._json(p.error(10008, "Unknown Message"), status=404)
        if refused := self._invalid(message_problems(body)):
            return refused
        edited = self._replace(msg, body, files, flags=msg["flags"])
        await self._notify()
        return self._json(edited)

    async def _start_thread(self, request: web.Request) -> web.Response:
        channel, message = request.match_info["channel"], request.match_info["message"]
        body, _ = await _body(request)
        msg = self.messages.get(message)
        if msg is None or msg["channel_id"] != channel:
            return self._json(p.error(10008, "Unknown Message"), status=404)
        if channel == self.dm_channel_id:
            return self._json(p.error(50003, "Cannot execute action on a DM channel"), status=403)
        if channel in self.threadless_channels:
            return self._json(p.error(50013, "Missing Permissions"), status=403)
        if message in self.threads:
            text = "A thread has already been created for this message"
            return self._json(p.error(160004, text), status=400)
        name = str(body.get("name") or "")
        problems = [] if 1 <= len(name) <= 100 else [f"name: {len(name)} characters, not 1-100"]
        if refused := self._invalid(problems):
            return refused
        thread = p.thread(message, channel, self.guild_id, self.bot["id"], name, body)
        self.threads[message] = thread
        msg["thread"] = thread
        await self._notify()
        return self._json(thread, status=201)

    # ---- the middleware: recording, injected failures, rate limits --------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        authorized = request.headers.get("Authorization") == f"Bot {self.token}"
        entry = Request(
            request.method,
            request.path,
            dict(request.query),
            None,
            [],
            time.monotonic(),
            authorized,
        )
        request[ENTRY] = entry  # _body() fills in what was sent
        self.requests.append(entry)
        response = await self._gatekeep(request, entry)
        if response is None:
            response = await handler(request)
            path = request.path.removeprefix("/api/v10")
            if request.method == "POST" and _message_route(path):
                # Every answer on a bucketed route announces the bucket, as Discord does.
                response.headers.update(self._bucket_headers(path.split("/")[2], entry.at))
            if response.status < 300 and (late := self._take_injected(request, created=True)):
                response = self._json(late.body, status=late.status, headers=late.headers)
        entry.status = response.status
        await self._notify()
        return response

    async def _gatekeep(self, request: web.Request, entry: Request) -> web.Response | None:
        injected = self._take_injected(request, created=False)
        if injected is not None:
            return self._json(injected.body, status=injected.status, headers=injected.headers)
        path = request.path.removeprefix("/api/v10")
        public = path.startswith(("/interactions/", "/webhooks/"))
        if not public and not entry.authorized:
            return self._json(p.error(0, "401: Unauthorized"), status=401)
        if not public:
            # Interaction endpoints are exempt from the global limit; everything else counts.
            limited = self._global_check(entry.at)
            if limited is not None:
                return limited
        if request.method == "POST" and _message_route(path):
            return self._bucket_check(path.split("/")[2], entry.at)
        return None

    def _take_injected(self, request: web.Request, *, created: bool) -> Injected | None:
        path = request.path.removeprefix("/api/v10")
        for injected in self._injected:
            if (
                injected.times > 0
                and injected.created == created
                and request.method == injected.method
                and path.startswith(injected.path_prefix)
            ):
                injected.times -= 1
                if injected.status == 429:
                    self.route_429s += 1
                return injected
        return None

    def _global_check(self, at: float) -> web.Response | None:
        window = self._global_times
        while window and window[0] <= at - self.global_window:
            window.popleft()
        if len(window) >= self.global_limit:
            self.global_429s += 1
            retry = round(window[0] + self.global_window - at, 3)
            return self._json(
                {"message": "You are being rate limited.", "retry_after": retry, "global": True},
                status=429,
                headers={
                    "Retry-After": str(retry),
                    "X-RateLimit-Global": "true",
                    "X-RateLimit-Scope": "global",
                    "Via": "1.1 google",
                },
            )
        window.append(at)
        self._max_in_window = max(self._max_in_window, len(window))
        return None

    def _bucket_check(self, channel: str, at: float) -> web.Response | None:
        times = self._buckets.setdefault(channel, deque())
        while times and times[0] <= at - self.channel_window:
            times.popleft()
        if len(times) >= self.channel_limit:
            self.route_429s += 1
            retry = round(times[0] + self.channel_window - at, 3)
            return self._json(
                {"message": "You are being rate limited.", "retry_after": retry, "global": False},
                status=429,
                headers={
                    **self._bucket_headers(channel, at),
                    "Retry-After": str(retry),
                    "X-RateLimit-Scope": "user",
                    "Via": "1.1 google",
                },
            )
        times.append(at)
        return None

    def _bucket_headers(self, channel: str, at: float) -> dict[str, str]:
        times = self._buckets.get(channel, deque())
        remaining = max(0, self.channel_limit - len(times))
        reset_after = (times[0] + self.channel_window - at) if times else self.channel_window
        return {
            "X-RateLimit-Limit": str(self.channel_limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": f"channel-messages-{channel}",
        }

    # ---- helpers ---------------------------------------------------------------------------

    def _invalid(self, problems: list[str]) -> web.Response | None:
        if not problems:
            return None
        self.invalid.append(problems)
        body = p.error(50035, "Invalid Form Body", errors={"_errors": problems})
        return self._json(body, status=400)

    def _json(
        self, body: Any, *, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        all_headers = {"Content-Type": JSON, **(headers or {})}
        return web.Response(body=json.dumps(body).encode(), status=status, headers=all_headers)

    def _find_command(self, name: str, *, dm: bool) -> tuple[dict[str, Any], str]:
        scopes = ["global"] if dm else [self.guild_id, "global"]
        for scope in scopes:
            for command in self.commands.get(scope, []):
                if command["name"] == name:
                    return command, scope
        raise AssertionError(f"/{name} was never synced for {'DMs' if dm else 'the guild'}")

    @staticmethod
    def _options(
        command: dict[str, Any], subcommand: str | None, given: dict[str, str]
    ) -> list[dict[str, Any]]:
        schema = command.get("options", [])
        if subcommand is not None:
            sub = next(o for o in schema if o["name"] == subcommand and o["type"] == 1)
            return [
                {"name": subcommand, "type": 1, "options": FakeDiscord._options(sub, None, given)}
            ]
        names = {o["name"]: o for o in schema}
        for key in given:
            assert key in names, f"/{command['name']} has no option {key}"
        return [{"name": k, "type": names[k]["type"], "value": v} for k, v in given.items()]

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        *,
        dm: bool,
        permissions: int,
        locale: str,
        age: float = 0.0,
        followup_ttl: float | None = None,
        message: dict[str, Any] | None = None,
    ) -> Interaction:
        interaction_id = p.snowflake()
        token = f"itoken-{interaction_id}"
        payload: dict[str, Any] = {
            "id": interaction_id,
            "application_id": self.app_id,
            "type": kind,
            "token": token,
            "version": 1,
            "attachment_size_limit": 10 * 1024 * 1024,
            "data": data,
            "locale": locale,
            "app_permissions": str(p.MEMBER),
            "entitlements": [],
            "authorizing_integration_owners": {},
        }
        if dm:
            payload["user"] = self.person
            payload["channel_id"] = self.dm_channel_id
            payload["channel"] = p.dm_channel(self.dm_channel_id, self.person)
            payload["context"] = 1
        else:
            payload["guild_id"] = self.guild_id
            payload["guild_locale"] = "en-US"
            payload["channel_id"] = self.channel_id
            payload["channel"] = p.text_channel(self.channel_id, self.guild_id)
            payload["member"] = p.member(self.person, permissions)
            payload["context"] = 0
        if message is not None:
            payload["message"] = message
        created = time.monotonic() - age
        ttl = self.followup_ttl if followup_ttl is None else followup_ttl
        found = Interaction(interaction_id, token, payload, created, created + ttl)
        self.interactions[interaction_id] = found
        shard = 0 if dm else (int(self.guild_id) >> 22) % self._shard_count()
        await self.dispatch("INTERACTION_CREATE", payload, shard=shard)
        return found

    def _shard_count(self) -> int:
        return max((s.shard[1] for s in self.sessions.values()), default=1)

    def _by_token(self, token: str) -> Interaction | None:
        return next((i for i in self.interactions.values() if i.token == token), None)

    def _interaction_channel(self, found: Interaction) -> str:
        return str(found.payload["channel_id"])

    def _new_message(
        self,
        channel: str,
        author: dict[str, Any],
        body: dict[str, Any],
        *,
        flags: int,
        files: list[tuple[str, bytes]],
        kind: int = 0,
    ) -> dict[str, Any]:
        msg = p.message(
            p.snowflake(),
            channel,
            author,
            body,
            flags=flags,
            attachments=_attachments(body, files),
            kind=kind,
        )
        msg["allowed_mentions"] = body.get("allowed_mentions")  # kept for the tests, not sent
        msg["files"] = files
        self.messages[msg["id"]] = msg
        self.channel_messages.setdefault(channel, []).append(msg["id"])
        return _public(msg)

    def _replace(
        self,
        msg: dict[str, Any],
        body: dict[str, Any],
        files: list[tuple[str, bytes]],
        *,
        flags: int,
    ) -> dict[str, Any]:
        stored = self.messages.get(msg["id"], msg)
        for key in ("content", "embeds", "components"):
            if key in body:
                stored[key] = (
                    body[key] if body[key] is not None else ([] if key != "content" else "")
                )
        if "attachments" in body or files:
            stored["attachments"] = _attachments(body, files)
            stored["files"] = files
        stored["flags"] = flags
        stored["edited_timestamp"] = p.now_iso()
        stored["allowed_mentions"] = body.get("allowed_mentions", stored.get("allowed_mentions"))
        self.messages[stored["id"]] = stored
        msg.update(stored)
        return _public(stored)


def _public(msg: dict[str, Any]) -> dict[str, Any]:
    """The message as Discord returns it (without what the fake keeps for assertions)."""
    return {k: v for k, v in msg.items() if k not in ("files", "allowed_mentions")}


def _attachments(body: dict[str, Any], files: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.snowflake(),
            "filename": name,
            "size": len(data),
            "url": f"https://cdn.invalid/{name}",
            "proxy_url": f"https://cdn.invalid/{name}",
            "content_type": "image/png" if data.startswith(PNG) else "application/octet-stream",
        }
        for name, data in files
    ]


async def _body(request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """The body as sent, also kept on the recorded request."""
    body, files = await _parse(request)
    entry = request[ENTRY]
    entry.body, entry.files = body, files
    return body, files


async def _parse(request: web.Request) -> tuple[dict[str, Any], list[tuple[str, bytes]]]:
    """A JSON body, or a multipart one (payload_json plus files[n]) as discord.py sends files."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        files: list[tuple[str, bytes]] = []
        body: dict[str, Any] = {}
        for name, value in form.items():
            if name == "payload_json":
                body = json.loads(value if isinstance(value, str) else value.file.read())
            elif hasattr(value, "file"):
                files.append((value.filename, value.file.read()))
        return body, files
    if request.can_read_body:
        text = await request.text()
        return (json.loads(text) if text else {}), []
    return {}, []


def _message_route(path: str) -> bool:
    """``/channels/{id}/messages``: the route with a bucket per channel."""
    parts = path.split("/")
    return len(parts) == 4 and parts[1] == "channels" and parts[3] == "messages"

"""A local Slack for tests and benchmarks: Web API, response_url, file uploads and Socket Mode.

One aiohttp server on 127.0.0.1 and an ephemeral port speaks the parts of Slack's protocol the
adapter uses (PROTOCOLS.md), and records every request so tests assert on what the real
slack-bolt and slack-sdk sent. Nothing here is a test switch in production code: the adapter is
pointed at it with ``[slack] api_base`` like any Slack-compatible server.

Scripting: ``script(method, Scripted(...))`` queues answers (a 429 storm, an error) that are
used before the normal answer. Waiting: ``await wait_for(predicate)`` wakes on every request, so
tests never sleep to synchronise.

History: accepted messages are kept with their metadata, and ``conversations.history`` and
``conversations.replies`` page through them as Slack does (newest first, ``oldest``, ``limit``,
``cursor``; metadata only with ``include_all_metadata``). A bot reads only conversations it is a
member of: public channels (ids starting with "C") after ``conversations.join`` (``joined``),
while posting there needs no membership (chat:write.public). Set ``history_error`` (e.g.
"missing_scope") to refuse every read as Slack does for an app without the scope, and
``join_error`` to refuse joins.

Rate limits, as Slack applies them to chat.postMessage (PROTOCOLS.md): about one message per
second per channel with short bursts (a token bucket of ``channel_burst`` refilled at
``channel_rate`` per second), and optionally ``global_limit`` calls per second of each Web API
method (Slack counts its limits per method and workspace; off by default, the fan-out benchmark
sets it). Beyond either, the answer is 429 with ``Retry-After`` (whole seconds, as Slack sends
it) and the call is counted in ``route_429s`` or ``global_429s``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

__all__ = ["Call", "FakeSlack", "Scripted"]

RESPONSE_URL_USES = 5  # Slack: at most 5 uses within 30 minutes


@dataclass(frozen=True, slots=True)
class Call:
    """One Web API request as the fake saw it."""

    method: str
    args: dict[str, Any]
    token: str | None
    at: float  # time.monotonic() on arrival


@dataclass(frozen=True, slots=True)
class Scripted:
    """A canned answer: HTTP status, JSON body and headers."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=lambda: {"ok": True})
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def rate_limited(cls, retry_after: int) -> Scripted:
        return cls(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})

    @classmethod
    def error(cls, code: str) -> Scripted:
        return cls(200, {"ok": False, "error": code})


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        team: str = "T0001",
        bot_user: str = "UBOT",
        channel_rate: float = 1.0,
        channel_burst: int = 3,
        global_limit: int | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team = team
        self.bot_user = bot_user
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self.global_limit = global_limit
        self.route_429s = 0
        self.global_429s = 0
        self.users: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.channel_messages: dict[str, list[Call]] = {}  # accepted chat.postMessage calls
        self.posted: list[dict[str, Any]] = []  # accepted messages, as history shows them
        self.history_error: str | None = None
        self.join_error: str | None = None
        self.joined: set[str] = set()  # public channels the bot is a member of
        self.responses: dict[str, list[dict[str, Any]]] = {}  # response_url token -> bodies
        self.response_statuses: list[int] = []
        self.arrivals: dict[str, float] = {}  # response_url token -> perf_counter() of 1st use
        self.uploads: dict[str, bytes] = {}
        self.acks: dict[str, dict[str, Any]] = {}  # Socket Mode envelope id -> ack frame
        self.socket_connected = asyncio.Event()
        self.socket_connections = 0
        self._scripts: dict[str, list[Scripted]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, as of)
        self._recent: dict[str, deque[float]] = {}  # method -> arrivals of accepted calls
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{token}", self._response)
        app.router.add_get("/socket", self._socket)
        self._app = app

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base}/api/"

    # ---- helpers for tests -------------------------------------------------------------------

    def add_user(self, user_id: str, **fields: Any) -> None:
        """users.info data for ``user_id``; defaults: a plain member in New York, en-US."""
        self.users[user_id] = {
            "id": user_id,
            "team_id": self.team,
            "name": user_id.lower(),
            "tz": "America/New_York",
            "locale": "en-US",
            "is_admin": False,
            "is_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            **fields,
        }

    def response_url(self) -> str:
        token = f"r{next(self._ids)}"
        self.responses[token] = []
        return f"{self.base}/response/{token}"

    def used(self, url: str) -> list[dict[str, Any]]:
        """The messages posted to ``url`` so far."""
        return self.responses[url.rsplit("/", 1)[1]]

    def exhaust(self, url: str) -> None:
        """Use up ``url`` as five earlier answers would have."""
        self.responses[url.rsplit("/", 1)[1]].extend({} for _ in range(RESPONSE_URL_USES))

    def script(self, method: str, *answers: Scripted) -> None:
        self._scripts.setdefault(method, []).extend(answers)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def send_envelope(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> str:
        """Push a Socket Mode envelope to the connected client; returns its envelope id."""
        await asyncio.wait_for(self.socket_connected.wait(), 10)
        envelope_id = f"env-{next(self._ids)}"
        frame = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(frame))
        return envelope_id

    async def refresh_socket(self) -> None:
        """Ask the client to reconnect, as Slack does every few hours."""
        disconnect = {"type": "disconnect", "reason": "refresh_requested"}
        await self._sockets[-1].send_str(json.dumps(disconnect))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ---- Web API -------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else args.get("token")
        call = Call(method, args, token, time.monotonic())
        self.calls.append(call)
        response = self._answer(method, args, token, call)
        await self._notify()  # after the answer is settled, so waiters see what it recorded
        return response

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None, call: Call
    ) -> web.Response:
        queued = self._scripts.get(method)
        if queued:
            answer = queued.pop(0)
            return _json(answer.body, answer.status, answer.headers)
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != expected:
            return _json({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _json({"ok": False, "error": "unknown_method"})
        limited = self._rate_limit(method, args, call.at)
        if limited is not None:
            return limited
        body: dict[str, Any] = handler(args)
        if method == "chat.postMessage" and body.get("ok"):
            self.channel_messages.setdefault(str(args.get("channel")), []).append(call)
        return _json(body)

    def _rate_limit(self, method: str, args: dict[str, Any], at: float) -> web.Response | None:
        recent = self._recent.setdefault(method, deque())
        if self.global_limit is not None:
            while recent and recent[0] <= at - 1.0:
                recent.popleft()
            if len(recent) >= self.global_limit:
                self.global_429s += 1
                return _limited(recent[0] + 1.0 - at)
        if method == "chat.postMessage":
            channel = str(args.get("channel"))
            tokens, then = self._buckets.get(channel, (float(self.channel_burst), at))
            tokens = min(float(self.channel_burst), tokens + (at - then) * self.channel_rate)
            if tokens < 1.0:
                self.route_429s += 1
                self._buckets[channel] = (tokens, at)
                return _limited((1.0 - tokens) / self.channel_rate)
            self._buckets[channel] = (tokens - 1.0, at)
        if self.global_limit is not None:
            recent.append(at)
        return None

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._ids):06d}"

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.invalid/",
            "team": "Fake",
            "user": "outagebot",
            "team_id": self.team,
            "user_id": self.bot_user,
            "bot_id": "B0001",
            "is_enterprise_install": False,
        }

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user")))
        return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = self._ts()
        metadata = args.get("metadata")
        self.posted.append(
            {
                "type": "message",
                "user": self.bot_user,
                "ts": ts,
                "channel": str(args.get("channel")),
                "thread_ts": args.get("thread_ts") or None,
                "text": args.get("text") or "",
                "metadata": json.loads(metadata) if isinstance(metadata, str) else metadata,
            }
        )
        return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {"ts": ts}}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._ts()}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel"))
        found = [
            m for m in self.posted if m["channel"] == channel and m["thread_ts"] in (None, m["ts"])
        ]
        return self._page(list(reversed(found)), args)  # newest first

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, parent = str(args.get("channel")), str(args.get("ts"))
        found = [
            m
            for m in self.posted
            if m["channel"] == channel and (m["ts"] == parent or m["thread_ts"] == parent)
        ]
        if not found:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(found, args)  # the parent, then its replies, oldest first

    def _m_conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        if self.join_error is not None:
            return {"ok": False, "error": self.join_error}
        channel = str(args.get("channel"))
        self.joined.add(channel)
        return {"ok": True, "channel": {"id": channel, "is_member": True}}

    def _page(self, messages: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        if self.history_error is not None:
            return {"ok": False, "error": self.history_error}
        channel = str(args.get("channel"))
        if channel.startswith("C") and channel not in self.joined:
            return {"ok": False, "error": "not_in_channel"}
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata")).lower() in ("true", "1")
        messages = [m for m in messages if float(m["ts"]) > oldest]
        start = int(args.get("cursor") or 0)
        limit = int(args.get("limit") or 100)
        page = messages[start : start + limit]
        shown = [
            {k: v for k, v in m.items() if k != "channel" and (with_metadata or k != "metadata")}
            for m in page
        ]
        more = start + limit < len(messages)
        return {
            "ok": True,
            "messages": shown,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": {"id": f"V{next(self._ids)}"}}

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):06d}"
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args.get("files")
        listed = json.loads(files) if isinstance(files, str) else files or []
        missing = [f["id"] for f in listed if f["id"] not in self.uploads]
        if missing:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in listed]}

    def _m_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}

    # ---- uploads and response_url --------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.Response:
        data = await request.read()
        self.uploads[request.match_info["file_id"]] = data
        await self._notify()
        return web.Response(text=f"OK - {len(data)}")

    async def _response(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        uses = self.responses.get(token)
        body = await request.json()
        if uses is None or len(uses) >= RESPONSE_URL_USES:
            status = 404  # Slack: used_url / expired_url
        else:
            uses.append(body)
            self.arrivals.setdefault(token, time.perf_counter())
            status = 200
        self.response_statuses.append(status)
        await self._notify()
        return web.Response(status=status, text="ok" if status == 200 else "used_url")

    # ---- Socket Mode ---------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # answers pings itself (autoping)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        self.socket_connections += 1
        self.socket_connected.set()
        await self._notify()
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                frame = json.loads(message.data)
                if "envelope_id" in frame:
                    self.acks[frame["envelope_id"]] = frame
                    await self._notify()
        self._sockets.remove(ws)
        return ws


def _limited(wait: float) -> web.Response:
    # Slack's Retry-After is whole seconds; round up so obeying it is always enough.
    return _json(
        {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(max(1, math.ceil(wait)))}
    )


def _json(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # Slack answers "application/json; charset=utf-8"; slack-sdk accepts either.
    return web.json_response(body, status=status, headers=headers)

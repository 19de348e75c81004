"""The Slack adapter: slack-bolt in Socket Mode or HTTP mode, one slash command per COMMANDS entry.

Every request is acknowledged at once (Slack gives up after 3 s) and answered afterwards in a
task this adapter tracks (answers.py: dispatch, Block Kit with the chart, the response_url or the
Web API). A replayed request (same ``trigger_id`` or ``event_id``) is acknowledged but never run
twice (replay.py). The adapter is also the ``Sender`` for alerts and digests (sender.py).

``build(deps)`` is the registry's entry point; secrets come from the environment variables the
``[slack]`` section names and are never logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.base import Adapter, Dispatch, Sent
from bot.adapters.registry import AdapterDeps
from bot.adapters.slack.answers import Answers
from bot.adapters.slack.client import web_client
from bot.adapters.slack.delivery import Responder
from bot.adapters.slack.http import mount_events
from bot.adapters.slack.render import ACTION_PREFIX
from bot.adapters.slack.replay import ReplayGuard
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.uploads import ChartUploader
from bot.adapters.slack.users import UserDirectory
from bot.config import SlackSettings
from bot.errors import PlatformUnavailable, StartupError
from bot.reply import Reply
from bot.spec import CommandSpec

__all__ = ["SlackAdapter", "build"]

log = logging.getLogger(__name__)

# How long stop() lets answers in flight finish before cancelling them.
_STOP_GRACE = 5.0
# How long start() waits for the Socket Mode websocket before calling Slack unavailable.
_CONNECT_TIMEOUT = 15.0


class SlackAdapter:
    """Serves Slack until ``stop()``; also the ``Sender`` for alerts and digests."""

    name = "slack"

    def __init__(
        self,
        *,
        dispatch: Dispatch,
        specs: Mapping[str, CommandSpec],
        settings: SlackSettings,
        bot_token: str,
        app_token: str | None = None,
        signing_secret: str | None = None,
        web_app: web.Application | None = None,
        default_lang: str = "en",
    ) -> None:
        self._settings = settings
        self._app_token = app_token
        self.client: AsyncWebClient = web_client(bot_token, settings.api_base)
        http = settings.mode == "http"
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "",
            # Socket Mode frames are authenticated by the websocket itself; nothing to sign.
            request_verification_enabled=http,
            # Assistant-thread helpers this bot does not use; skipping them is cheaper per request.
            attaching_conversation_kwargs_enabled=False,
            name="outagebot",
        )
        self.replays = ReplayGuard()
        self.users = UserDirectory(self.client)
        self.uploader = ChartUploader(self.client)
        # Alerts and digests get a client that never resends by itself (bot/adapters/slack/
        # client.py); the same connections (the session is shared once started).
        self._alert_client = web_client(bot_token, settings.api_base, connection_retries=False)
        self.sender = SlackSender(self._alert_client, uploader=self.uploader)
        self._responder = Responder(self.client)
        self.answers = Answers(
            dispatch=dispatch,
            specs=specs,
            client=self.client,
            users=self.users,
            uploader=self.uploader,
            responder=self._responder,
            admins=frozenset(settings.admins),
            default_lang=default_lang,
        )
        self._session: aiohttp.ClientSession | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._register()
        if http:
            if web_app is None:
                raise StartupError(
                    '[slack] mode = "http" needs the HTTP API ([api] enabled = true): Slack posts '
                    "to POST /slack/events on [api] listen"
                )
            mount_events(web_app, self.app)

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the bot token, then (Socket Mode) open the websocket; returns once serving.

        A refused token is a ``StartupError``; Slack unreachable or failing (network errors,
        5xx, rate limits) is ``PlatformUnavailable``, which the app retries in the background.
        """
        self._session = aiohttp.ClientSession()
        self.client.session = self._session
        self._alert_client.session = self._session
        self._responder.session = self._session
        try:
            identity = await self.client.auth_test()
            log.info(
                "slack connected team=%s bot=%s", identity.get("team_id"), identity.get("user_id")
            )
            if self._settings.mode == "socket":
                await self._connect_socket()
        except BaseException as exc:
            await self.stop()
            raise self._startup_problem(exc) from None

    def _startup_problem(self, exc: BaseException) -> BaseException:
        """What a failed start means: fix the config (StartupError) or try again later."""
        if isinstance(exc, SlackApiError):
            status = exc.response.status_code
            code = str(exc.response.get("error", "unknown"))
            if status >= 500 or status == 429 or code in ("ratelimited", "fatal_error"):
                return PlatformUnavailable(f"Slack answered HTTP {status} ({code})")
            socket = exc.response.api_url.endswith("apps.connections.open")
            variable = self._settings.app_token_env if socket else self._settings.bot_token_env
            hint = (
                "Socket Mode needs an xapp- token with connections:write"
                if socket
                else "check the variable and the app's installation"
            )
            return StartupError(f"Slack refused the token in ${variable} ({code}); {hint}")
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            return PlatformUnavailable(
                f"cannot reach Slack at [slack] api_base = {self._settings.api_base} ({exc!r})"
            )
        return exc

    async def _connect_socket(self) -> None:
        handler = AsyncSocketModeHandler(
            self.app, app_token=self._app_token, web_client=self.client
        )
        self._socket = handler
        # Asked once here so that a bad app token stops start-up with a message, instead of the
        # socket client retrying it forever in the background.
        handler.client.wss_uri = await handler.client.issue_new_wss_url()
        try:
            # slack-sdk retries a failing websocket forever inside connect(); bounded here so
            # start() returns and the app can retry later without holding up other platforms.
            await asyncio.wait_for(handler.connect_async(), _CONNECT_TIMEOUT)  # type: ignore[no-untyped-call]
        except TimeoutError:
            raise PlatformUnavailable(
                f"Slack's Socket Mode websocket did not open within {_CONNECT_TIMEOUT:.0f} s"
            ) from None

    async def drain(self) -> None:
        """Wait until every answer in flight has been delivered (or has failed and been logged)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self) -> None:
        """Let answers in flight finish (briefly), close the websocket and connections."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=_STOP_GRACE)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._socket is not None:
            socket, self._socket = self._socket, None
            await socket.close_async()  # type: ignore[no-untyped-call]
        await self.uploader.close()
        if self._session is not None:
            session, self._session = self._session, None
            self.client.session = None
            self._alert_client.session = None
            self._responder.session = None
            await session.close()

    # ---- Sender (alerts, digests) --------------------------------------------------------------

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        return await self.sender.send(channel, reply, key=key, thread_of=thread_of, lang=lang)

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        await self.sender.edit(sent, reply, lang=lang)

    async def find(
        self, channel: str, key: str, *, since: int, thread_of: str | None = None
    ) -> Sent | None:
        """bot.adapters.base.Reconciler: Slack has no idempotency key, so look for the message."""
        return await self.sender.find(channel, key, since=since, thread_of=thread_of)

    # ---- bolt wiring -------------------------------------------------------------------------

    def _register(self) -> None:
        self.app.middleware(self._once)
        # Every slash command, known or not: one the app's manifest still lists but this build
        # lacks gets "I don't know /x" instead of bolt's bare 404.
        self.app.command(re.compile(r"^/"))(self._on_command)
        self.app.action(re.compile(rf"^{re.escape(ACTION_PREFIX)}"))(self._on_action)
        self.app.event("app_home_opened")(self._on_home_opened)

    async def _once(
        self, body: dict[str, Any], resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse:
        """Middleware after bolt's signature check: a request id seen before is not run again."""
        key = body.get("trigger_id") or body.get("event_id")
        if isinstance(key, str) and key and not self.replays.first_time(key):
            log.info("slack replay ignored id=%s", key)
            return BoltResponse(status=200, body="")
        await next()
        return resp

    async def _on_command(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()  # first, whatever follows: Slack shows an error after 3 s
        self._spawn(self.answers.command(body))

    async def _on_action(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self.answers.action(body))

    async def _on_home_opened(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            team = body.get("team_id")
            user = str(event.get("user", ""))
            self._spawn(self.answers.home(user, team if isinstance(team, str) else None))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack answer failed", exc_info=task.exception())


def build(deps: AdapterDeps) -> Adapter:
    """The adapter for ``deps.settings.slack``; a missing secret is a StartupError naming it."""
    settings = deps.settings.slack
    http = settings.mode == "http"
    bot_token = _secret(deps.environ, "bot_token_env", settings.bot_token_env, "xoxb-...")
    app_token = (
        None if http else _secret(deps.environ, "app_token_env", settings.app_token_env, "xapp-...")
    )
    secret = (
        _secret(deps.environ, "signing_secret_env", settings.signing_secret_env, "signing secret")
        if http
        else None
    )
    return SlackAdapter(
        dispatch=deps.dispatch,
        specs=deps.specs,
        settings=settings,
        bot_token=bot_token,
        app_token=app_token,
        signing_secret=secret,
        web_app=deps.web_app,
        default_lang=deps.settings.bot.language,
    )


def _secret(environ: Mapping[str, str], key: str, variable: str, what: str) -> str:
    value = environ.get(variable, "").strip()
    if not value:
        raise StartupError(
            f"[slack] {key}: the environment variable {variable} is not set "
            f"(it must hold the Slack {what})"
        )
    return value

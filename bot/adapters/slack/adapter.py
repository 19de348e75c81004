"""The Slack adapter: slack-bolt in Socket Mode or HTTP mode, one slash command per COMMANDS entry.

Every request is acknowledged at once (Slack gives up after 3 s) and answered afterwards, in a
task this adapter tracks: the command runs through ``dispatch`` like on any platform, the reply is
rendered to Block Kit (render.py) with the chart uploaded as a Slack file, and delivered by the
response_url or, once that is used up, the Web API (delivery.py). A replayed request (same
``trigger_id`` or ``event_id``) is acknowledged but never run twice (replay.py).

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
from bot.adapters.slack.client import web_client
from bot.adapters.slack.delivery import Responder
from bot.adapters.slack.home import home_commands, render_home
from bot.adapters.slack.http import mount_events
from bot.adapters.slack.parse import CommandGroup, decode_value, group_specs, parse_command
from bot.adapters.slack.render import ACTION_PREFIX, action_value, render_reply
from bot.adapters.slack.replay import ReplayGuard
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.uploads import ChartUploader
from bot.adapters.slack.users import SlackUser, UserDirectory, invocation_locale
from bot.config import SlackSettings
from bot.errors import StartupError
from bot.invocation import Invocation
from bot.reply import Reply, error
from bot.spec import CommandSpec

__all__ = ["SlackAdapter", "build"]

log = logging.getLogger(__name__)

# How long stop() lets answers in flight finish before cancelling them.
_STOP_GRACE = 5.0


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
        self._dispatch = dispatch
        self._specs = dict(specs)
        self._groups: dict[str, CommandGroup] = group_specs(self._specs)
        self._settings = settings
        self._admins = frozenset(settings.admins)
        self._app_token = app_token
        self._default_lang = default_lang
        self.client: AsyncWebClient = web_client(bot_token, settings.api_base)
        http = settings.mode == "http"
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret or "",
            # Socket Mode frames are authenticated by the websocket itself; nothing to sign.
            request_verification_enabled=http,
            name="outagebot",
        )
        self.replays = ReplayGuard()
        self.users = UserDirectory(self.client)
        self.uploader = ChartUploader(self.client)
        self.sender = SlackSender(self.client, uploader=self.uploader)
        self._responder = Responder(self.client)
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
        """Check the bot token, then (Socket Mode) open the websocket; returns once serving."""
        self._session = aiohttp.ClientSession()
        self.client.session = self._session
        self._responder.session = self._session
        try:
            identity = await self.client.auth_test()
        except SlackApiError as exc:
            await self.stop()
            raise StartupError(
                f"Slack refused the bot token in ${self._settings.bot_token_env} "
                f"({exc.response.get('error')}); check the variable and the app's installation"
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self.stop()
            raise StartupError(
                f"cannot reach Slack at [slack] api_base = {self._settings.api_base} ({exc!r})"
            ) from None
        log.info("slack connected team=%s bot=%s", identity.get("team_id"), identity.get("user_id"))
        if self._settings.mode == "socket":
            await self._connect_socket()

    async def _connect_socket(self) -> None:
        handler = AsyncSocketModeHandler(
            self.app, app_token=self._app_token, web_client=self.client
        )
        self._socket = handler
        try:
            # Asked once here so that a bad app token stops start-up with a message, instead of
            # the socket client retrying it forever in the background.
            handler.client.wss_uri = await handler.client.issue_new_wss_url()
        except SlackApiError as exc:
            await self.stop()
            raise StartupError(
                f"Slack refused the app token in ${self._settings.app_token_env} "
                f"({exc.response.get('error')}); Socket Mode needs an xapp- token with "
                "connections:write"
            ) from None
        await handler.connect_async()  # type: ignore[no-untyped-call]

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
        if self._session is not None:
            session, self._session = self._session, None
            self.client.session = None
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

    # ---- bolt wiring -------------------------------------------------------------------------

    def _register(self) -> None:
        self.app.middleware(self._once)
        for group in self._groups.values():
            self.app.command(f"/{group.name}")(self._on_command)
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
        self._spawn(self._answer_command(body))

    async def _on_action(self, ack: Callable[[], Awaitable[None]], body: dict[str, Any]) -> None:
        await ack()
        self._spawn(self._answer_action(body))

    async def _on_home_opened(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            self._spawn(self._publish_home(event, body))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack answer failed", exc_info=task.exception())

    # ---- answers -------------------------------------------------------------------------------

    async def _answer_command(self, body: dict[str, Any]) -> None:
        name = str(body.get("command", "")).lstrip("/").lower()
        user = await self.users.get(str(body.get("user_id", "")))
        lang = self._lang(user)
        group = self._groups.get(name)
        if group is None:  # a command the manifest has but this build does not
            reply = error("error.unknown_command", command=name[:32])
        else:
            parsed = parse_command(group, str(body.get("text", "")))
            if parsed.error_key is not None:
                reply = error(parsed.error_key, usage=parsed.usage)
            else:
                reply = await self._run(
                    parsed.command,
                    parsed.args,
                    user,
                    team=body.get("team_id"),
                    channel=body.get("channel_id"),
                )
        await self._deliver(
            reply, lang, user, response_url=body.get("response_url"), channel=body.get("channel_id")
        )

    async def _answer_action(self, body: dict[str, Any]) -> None:
        user = await self.users.get(str(_get(body, "user", "id") or ""))
        lang = self._lang(user)
        channel = _get(body, "channel", "id") or _get(body, "container", "channel_id")
        actions = body.get("actions") or [{}]
        raw = action_value(actions[0]) if isinstance(actions[0], dict) else None
        value = decode_value(raw) if raw is not None else None
        if value is None:
            reply = error("slack.error.button")
        else:
            # A click is the command it names, typed by this user: same Invocation, same checks.
            spec = self._specs.get(value.command)
            team = _get(body, "team", "id") or _get(body, "user", "team_id")
            reply = await self._run(
                value.command, value.args(spec), user, team=team, channel=channel
            )
        await self._deliver(
            reply,
            lang,
            user,
            response_url=body.get("response_url"),
            channel=channel,
            replace_original=False,
        )

    async def _publish_home(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        user = await self.users.get(str(event.get("user", "")))
        team = body.get("team_id")
        replies = [
            await self._run(name, {}, user, team=team, channel=None)
            for name in home_commands(self._specs)
        ]
        view = render_home(replies, self._lang(user))
        try:
            await self.client.views_publish(user_id=user.id, view=view)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("slack home not published user=%s error=%r", user.id, exc)

    async def _run(
        self,
        command: str,
        args: Mapping[str, str],
        user: SlackUser,
        *,
        team: object,
        channel: object,
    ) -> Reply:
        spec = self._specs.get(command)
        if spec is not None and spec.admin and user.is_guest:
            return error("slack.error.guest", command=spec.name)
        invocation = Invocation(
            command=command,
            args=dict(args),
            platform="slack",
            tenant=team if isinstance(team, str) else "",
            channel=channel if isinstance(channel, str) else "",
            user=user.id,
            locale=invocation_locale(user),
            is_admin=self._is_admin(user),
        )
        try:
            return await self._dispatch(invocation)
        except Exception:
            # The router turns handler failures into replies; this is a bug in dispatch itself.
            log.exception("dispatch failed command=%s platform=slack", command)
            return error("error.internal")

    async def _deliver(
        self,
        reply: Reply,
        lang: str,
        user: SlackUser,
        *,
        response_url: object,
        channel: object,
        replace_original: bool | None = None,
    ) -> None:
        file_id = await self.uploader.file_id(reply.chart) if reply.chart is not None else None
        message = render_reply(reply, lang, chart_file_id=file_id)
        await self._responder.answer(
            message,
            response_url=response_url if isinstance(response_url, str) else None,
            channel=channel if isinstance(channel, str) else None,
            user=user.id,
            replace_original=replace_original,
        )

    def _is_admin(self, user: SlackUser) -> bool:
        # Guests never administer, even when listed: a guest account is not a member's.
        return not user.is_guest and (user.is_admin or user.id in self._admins)

    def _lang(self, user: SlackUser) -> str:
        if user.locale is None:
            return self._default_lang
        return "fr" if user.locale.lower().startswith("fr") else "en"


def _get(body: Mapping[str, Any], key: str, field: str) -> str | None:
    inner = body.get(key)
    value = inner.get(field) if isinstance(inner, Mapping) else None
    return value if isinstance(value, str) and value else None


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

"""What the bot does after acknowledging: run the command a request names and answer the user.

A slash command's text is parsed into arguments (parse.py), a click decoded into the command it
names, an App Home visit into the read-only commands it shows; each becomes the same neutral
``Invocation`` (platform "slack", the workspace as tenant, admin rights and locale from
users.info) and goes through ``dispatch``. The reply is rendered to Block Kit with its chart
uploaded (render.py, uploads.py) and delivered (delivery.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.base import Dispatch
from bot.adapters.slack.delivery import Responder
from bot.adapters.slack.home import home_commands, render_home
from bot.adapters.slack.parse import decode_value, group_specs, parse_command
from bot.adapters.slack.render import action_value, render_reply
from bot.adapters.slack.uploads import ChartUploader
from bot.adapters.slack.users import SlackUser, UserDirectory, invocation_locale
from bot.invocation import Invocation
from bot.reply import Reply, error
from bot.spec import CommandSpec

__all__ = ["Answers", "Where"]

log = logging.getLogger(__name__)

# Commands running at once. Every request is acknowledged at once whatever this says; beyond
# it, answers wait their turn parked (not spinning), so a burst of slash commands cannot fill
# the event loop's ready queue and delay the acknowledgements, which have a 3 s deadline. The
# store has one worker thread, so more parallel commands would only queue there instead.
RUNNING_MAX = 8


@dataclass(frozen=True, slots=True)
class Where:
    """Where a request came from and where its answer goes."""

    team: str | None
    channel: str | None
    response_url: str | None


class Answers:
    def __init__(
        self,
        *,
        dispatch: Dispatch,
        specs: Mapping[str, CommandSpec],
        client: AsyncWebClient,
        users: UserDirectory,
        uploader: ChartUploader,
        responder: Responder,
        admins: frozenset[str],
        default_lang: str,
    ) -> None:
        self._dispatch = dispatch
        self._specs = dict(specs)
        self._groups = group_specs(self._specs)
        self._client = client
        self._users = users
        self._uploader = uploader
        self._responder = responder
        self._admins = admins
        self._default_lang = default_lang
        self._running = asyncio.Semaphore(RUNNING_MAX)

    async def command(self, body: Mapping[str, Any]) -> None:
        """A slash command: ``/name text``."""
        name = str(body.get("command", "")).lstrip("/").lower()
        user = await self._users.get(str(body.get("user_id", "")))
        where = Where(
            _str(body.get("team_id")), _str(body.get("channel_id")), _str(body.get("response_url"))
        )
        group = self._groups.get(name)
        if group is None:  # a command the app's manifest has but this build does not
            reply = error("error.unknown_command", command=name[:32])
        else:
            parsed = parse_command(group, str(body.get("text", "")))
            if parsed.error_key is not None:
                reply = error(parsed.error_key, usage=parsed.usage)
            else:
                reply = await self._run(parsed.command, parsed.args, user, where)
        await self._deliver(reply, user, where)

    async def action(self, body: Mapping[str, Any]) -> None:
        """A click on one of our buttons or menus: the command it names, typed by this user."""
        user = await self._users.get(_field(body, "user", "id") or "")
        where = Where(
            _field(body, "team", "id") or _field(body, "user", "team_id"),
            _field(body, "channel", "id") or _field(body, "container", "channel_id"),
            _str(body.get("response_url")),
        )
        actions = body.get("actions") or [{}]
        raw = action_value(actions[0]) if isinstance(actions[0], Mapping) else None
        value = decode_value(raw) if raw is not None else None
        if value is None:
            reply = error("slack.error.button")
        else:
            args = value.args(self._specs.get(value.command))
            reply = await self._run(value.command, args, user, where)
        # A new message, never a replacement: the verdict with its buttons stays in the channel.
        await self._deliver(reply, user, where, replace_original=False)

    async def home(self, user_id: str, team: str | None) -> None:
        """Publish the App Home tab for ``user_id`` (app_home_opened)."""
        if not user_id:
            return
        user = await self._users.get(user_id)
        where = Where(team, None, None)
        replies = [await self._run(name, {}, user, where) for name in home_commands(self._specs)]
        view = render_home(replies, self._lang(user))
        try:
            await self._client.views_publish(user_id=user.id, view=view)
        except (SlackApiError, ClientError, TimeoutError) as exc:
            log.warning("slack home not published user=%s error=%r", user.id, exc)

    async def _run(
        self, command: str, args: Mapping[str, str], user: SlackUser, where: Where
    ) -> Reply:
        spec = self._specs.get(command)
        if spec is not None and spec.admin and user.is_guest:
            return error("slack.error.guest", command=spec.name)
        invocation = Invocation(
            command=command,
            args=dict(args),
            platform="slack",
            tenant=where.team or "",
            channel=where.channel or "",
            user=user.id,
            locale=invocation_locale(user),
            is_admin=self._is_admin(user),
        )
        try:
            async with self._running:
                return await self._dispatch(invocation)
        except Exception:
            # The router turns handler failures into replies; this is a bug in dispatch itself.
            log.exception("dispatch failed command=%s platform=slack", command)
            return error("error.internal")

    async def _deliver(
        self, reply: Reply, user: SlackUser, where: Where, *, replace_original: bool | None = None
    ) -> None:
        file_id = await self._uploader.file_id(reply.chart) if reply.chart is not None else None
        message = render_reply(reply, self._lang(user), chart_file_id=file_id)
        await self._responder.answer(
            message,
            response_url=where.response_url,
            channel=where.channel,
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


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _field(body: Mapping[str, Any], key: str, field: str) -> str | None:
    inner = body.get(key)
    return _str(inner.get(field)) if isinstance(inner, Mapping) else None

"""Answering a slash command or a click: the response_url first, the Web API when it is used up.

A response_url takes at most 5 messages within 30 minutes, and when it is used up Slack answers
404 while slack-sdk returns the status instead of raising (PROTOCOLS.md), so every answer checks
the status. A failed answer falls back to chat.postEphemeral (ephemeral replies) or
chat.postMessage; if that fails too, the log says exactly what the user did not get.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import ClientError, ClientSession
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack.render import SlackMessage

__all__ = ["Responder"]

log = logging.getLogger(__name__)


class Responder:
    """Sends a rendered answer to the person who asked, by the best route still open."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self.session: ClientSession | None = None  # shared connection pool once started

    async def answer(
        self,
        message: SlackMessage,
        *,
        response_url: str | None,
        channel: str | None,
        user: str,
        replace_original: bool | None = None,
    ) -> str:
        """Deliver ``message``; returns the route that worked ("response_url", "ephemeral",
        "message") or "lost" when none did (logged)."""
        if response_url:
            status = await self._respond(response_url, message, replace_original)
            if status == 200:
                return "response_url"
            log.warning(
                "slack response_url refused status=%s user=%s channel=%s; using the Web API",
                status,
                user,
                channel,
            )
        if not channel:
            log.error("slack answer lost user=%s reason=no_response_url_and_no_channel", user)
            return "lost"
        try:
            if message.ephemeral:
                await self._client.chat_postEphemeral(
                    channel=channel, user=user, **message.payload()
                )
                return "ephemeral"
            await self._client.chat_postMessage(channel=channel, **message.payload())
            return "message"
        except (SlackApiError, ClientError, TimeoutError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            log.error(
                "slack answer lost user=%s channel=%s reason=%s (response_url used up or expired, "
                "and the Web API refused)",
                user,
                channel,
                reason,
            )
            return "lost"

    async def _respond(self, url: str, message: SlackMessage, replace_original: bool | None) -> int:
        body: dict[str, Any] = {
            **message.payload(),
            "response_type": "ephemeral" if message.ephemeral else "in_channel",
        }
        if replace_original is not None:
            body["replace_original"] = replace_original
        hook = AsyncWebhookClient(url=url, session=self.session)
        try:
            response = await hook.send_dict(body)
        except (ClientError, TimeoutError) as exc:
            log.warning("slack response_url unreachable error=%r", exc)
            return 0
        return response.status_code

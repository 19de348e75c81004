"""Proactive messages (alerts, digests): chat.postMessage and chat.update within Slack's limits.

Slack allows about one message per second per channel (short bursts pass) and answers 429 with
``Retry-After`` beyond it. A per-channel limiter keeps us under it; slack-sdk's rate-limit retry
handler absorbs short waits; anything longer becomes a ``DeliveryError`` with ``retry_after`` for
the outbox, which owns retries measured in minutes (bot/adapters/base.py). A fan-out to hundreds
of channels also meets the workspace-wide limit of the method, which no header announces before
the 429, so every post and edit also takes a slot of a workspace-wide ``GlobalLimiter``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.base import DeliveryError, Sent
from bot.adapters.ratelimit import GlobalLimiter
from bot.adapters.slack.render import SlackMessage, render_reply
from bot.adapters.slack.uploads import ChartUploader
from bot.reply import Reply

__all__ = ["ChannelLimiter", "SlackSender", "delivery_error"]

log = logging.getLogger(__name__)

# Slack limits each Web API method per workspace. chat.postMessage: about one message a second
# per channel (ChannelLimiter) and an undocumented workspace ceiling, planned at 50/s (the
# figure PROTOCOLS.md and issue 6 give). chat.update is Tier 3: 50+ calls a minute, paced here
# so resolving a large incident is slow rather than a storm of 429s. The lookups after a crash
# (conversations.history, .replies, .join; Tier 3 too) are few and not paced: a 429 on one just
# leaves its alert in doubt, to be looked for again after Retry-After.
WORKSPACE_RATE = 50  # chat.postMessage per second
UPDATES_PER_MINUTE = 50  # chat.update
METADATA_TYPE = "outagebot_delivery"  # the message metadata that carries the outbox key
FIND_MARGIN = 60  # seconds before an attempt that a look for its message starts (clock skew)
FIND_PAGE = 200  # messages per history page (Slack's maximum is 999; 200 is its advice)
FIND_PAGES = 5
# Slack will not let the bot join (a private channel, no channels:join, an archived channel).
_JOIN_REFUSED = frozenset(
    {
        "method_not_supported_for_channel_type",
        "is_archived",
        "channel_not_found",
        "missing_scope",
        "restricted_action",
        "is_private",
        "no_permission",
    }
)
# The look cannot see the channel: it will not by retrying either, so the outbox sends again.
_UNSEEABLE = frozenset(
    {
        "missing_scope",
        "not_in_channel",
        "channel_not_found",
        "thread_not_found",
        "no_permission",
        "restricted_action",
        "team_access_not_granted",
    }
)

# Errors that no retry can fix: the channel, the token or the message itself is wrong.
_PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "restricted_action",
        "msg_too_long",
        "invalid_blocks",
        "invalid_arguments",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "team_access_not_granted",
    }
)


class ChannelLimiter:
    """About ``rate`` messages per second per channel, allowing bursts of ``burst``.

    A generic cell-rate algorithm: each channel keeps the time its next message is due. A send
    that would wait longer than ``max_wait`` is refused with the wait as ``retry_after``, so a
    flood into one channel never holds the outbox for minutes.
    """

    def __init__(
        self,
        *,
        # 10% under Slack's 1/s: we pace by our clock, Slack counts by arrival, and two messages
        # sent exactly a second apart can arrive closer together than that.
        rate: float = 0.9,
        burst: int = 3,
        max_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._due: dict[str, float] = {}

    async def acquire(self, channel: str) -> None:
        now = self._clock()
        due = max(self._due.get(channel, now), now)
        wait = due - self._tolerance - now
        if wait > self._max_wait:
            raise DeliveryError(f"channel {channel} is sending too fast", retry_after=wait)
        self._due[channel] = due + self._interval
        if len(self._due) > 10_000:
            self._due = {c: d for c, d in self._due.items() if d > now}
        if wait > 0:
            await self._sleep(wait)


def delivery_error(exc: Exception, what: str) -> DeliveryError:
    """A Slack failure as the outbox needs it: when to retry, or that retrying cannot help."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        code = str(exc.response.get("error", "unknown"))
        if status == 429 or code == "ratelimited":
            raw = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
            retry_after = _seconds(raw)
            return DeliveryError(f"{what}: rate limited", retry_after=retry_after)
        permanent = code in _PERMANENT or (400 <= status < 500 and status != 408)
        return DeliveryError(f"{what}: {code} (HTTP {status})", permanent=permanent)
    return DeliveryError(f"{what}: {type(exc).__name__}: {exc}")


def _transient(error: DeliveryError) -> DeliveryError:
    """A failed look never dead-letters the alert: it is retried (with Retry-After, if any)."""
    return DeliveryError(str(error), retry_after=error.retry_after)


def _key_of(message: dict[str, Any]) -> str | None:
    """The outbox key a message of ours carries in its metadata (see ``SlackSender.send``)."""
    metadata = message.get("metadata") or {}
    if metadata.get("event_type") != METADATA_TYPE:
        return None
    key = (metadata.get("event_payload") or {}).get("key")
    return key if isinstance(key, str) else None


def _seconds(raw: object) -> float | None:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return float(str(raw)) if raw is not None else None
    except ValueError:
        return None


class SlackSender:
    """Implements ``bot.adapters.base.Sender`` for Slack."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        uploader: ChartUploader,
        limiter: ChannelLimiter | None = None,
        workspace: GlobalLimiter | None = None,
    ) -> None:
        self._client = client
        self._uploader = uploader
        self._limiter = limiter or ChannelLimiter()
        self._workspace = workspace or GlobalLimiter(WORKSPACE_RATE)
        self._updates = GlobalLimiter(UPDATES_PER_MINUTE, per=60.0)

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        message = await self._render(reply, lang)
        await self._limiter.acquire(channel)
        try:
            async with self._workspace:
                response = await self._client.chat_postMessage(
                    channel=channel,
                    thread_ts=thread_of,
                    # Slack has no idempotency key; the key rides along in the message metadata
                    # so a retry after a crash can find this message instead of posting again.
                    metadata={"event_type": METADATA_TYPE, "event_payload": {"key": key}},
                    unfurl_links=False,
                    unfurl_media=False,
                    **message.payload(),
                )
        except (SlackApiError, ClientError, TimeoutError) as exc:
            raise delivery_error(exc, f"chat.postMessage to {channel}") from exc
        ts = response.get("ts")
        if not isinstance(ts, str):
            raise DeliveryError(f"chat.postMessage to {channel}: no ts in the answer")
        return Sent(channel=str(response.get("channel") or channel), message_id=ts)

    async def find(
        self, channel: str, key: str, *, since: int, thread_of: str | None = None
    ) -> Sent | None:
        """Our message carrying ``key`` in its metadata, posted since ``since``, if Slack shows it.

        Reads the channel's history (a thread's replies for ``thread_of``) from a minute before
        ``since`` (clocks differ), a few pages at most. A bot reads only conversations it is a
        member of, and alerts reach public channels without joining (chat:write.public), so on
        ``not_in_channel`` it joins (channels:join) and looks again. None when there is no such
        message or Slack will not show the channel (a missing scope, a private channel we left):
        the outbox then sends again. Anything that may pass (429, 5xx, the network) raises
        ``DeliveryError``, so the row stays in doubt and is looked for again later.
        """
        joined = False
        while True:
            try:
                return await self._look(channel, key, since, thread_of)
            except SlackApiError as exc:
                code = str(exc.response.get("error", ""))
                if code == "not_in_channel" and not joined:
                    joined = await self._join(channel)
                    if joined:
                        continue  # now a member: look again, once
                if code in _UNSEEABLE:
                    log.info("cannot look for an earlier post channel=%s error=%s", channel, code)
                    return None
                raise _transient(delivery_error(exc, f"looking in {channel}")) from exc
            except (ClientError, TimeoutError) as exc:
                raise _transient(delivery_error(exc, f"looking in {channel}")) from exc

    async def _look(self, channel: str, key: str, since: int, thread_of: str | None) -> Sent | None:
        args: dict[str, Any] = {
            "channel": channel,
            "oldest": str(since - FIND_MARGIN),
            "include_all_metadata": True,
            "limit": FIND_PAGE,
        }
        cursor = ""
        for _ in range(FIND_PAGES):
            if thread_of is None:
                page = await self._client.conversations_history(cursor=cursor, **args)
            else:
                page = await self._client.conversations_replies(ts=thread_of, cursor=cursor, **args)
            for message in page.get("messages") or []:
                if _key_of(message) == key and isinstance(message.get("ts"), str):
                    return Sent(channel=channel, message_id=message["ts"])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return None

    async def _join(self, channel: str) -> bool:
        """Join a public channel so its history can be read; False if Slack says no."""
        try:
            await self._client.conversations_join(channel=channel)
        except SlackApiError as exc:
            code = str(exc.response.get("error", ""))
            if code in _JOIN_REFUSED:
                log.info("cannot join to look channel=%s error=%s", channel, code)
                return False
            # A 429 or 5xx says nothing about the message: the alert stays in doubt.
            raise _transient(delivery_error(exc, f"joining {channel}")) from exc
        except (ClientError, TimeoutError) as exc:
            raise _transient(delivery_error(exc, f"joining {channel}")) from exc
        return True

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        message = await self._render(reply, lang)
        try:
            async with self._updates:
                await self._client.chat_update(
                    channel=sent.channel, ts=sent.message_id, **message.payload()
                )
        except (SlackApiError, ClientError, TimeoutError) as exc:
            raise delivery_error(exc, f"chat.update in {sent.channel}") from exc

    async def _render(self, reply: Reply, lang: str) -> SlackMessage:
        file_id = await self._uploader.file_id(reply.chart) if reply.chart is not None else None
        return render_reply(reply, lang, chart_file_id=file_id)

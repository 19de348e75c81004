"""Proactive Discord messages (alerts, digests): send, edit, and an incident's thread.

An incident's first message goes to the channel; its updates go into a thread started from that
message, so a long incident adds one message to the channel instead of one per update (the first
message itself is edited to the latest state). A thread started from a message has the message's
id, so the thread needs no bookkeeping: "already created" (160004) means it is there. Where no
thread can be had (a DM, no Create Public Threads permission, a locked or archived thread the bot
cannot reopen, the first message deleted), an update is a reply to the first message instead.

Every send carries a nonce derived from the outbox key, so a resend after a crash or a timeout
is recognised by Discord and creates nothing new (the nonce check of ``enforce_nonce``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from typing import Any, Final, Literal

import aiohttp
import discord

from bot.adapters.base import DeliveryError, Sent
from bot.adapters.discord.chartcache import ChartCache
from bot.adapters.discord.interactions import message_options
from bot.adapters.discord.render import render_reply
from bot.i18n import render
from bot.reply import Reply

__all__ = ["SEND_TIMEOUT", "DiscordDelivery", "nonce"]

log = logging.getLogger(__name__)

# Discord accepts a message nonce of at most 25 characters.
NONCE_MAX = 25
SEND_TIMEOUT = 35.0  # seconds one proactive send or edit may take, retries included
THREAD_EXISTS = 160004  # "A thread has already been created for this message"
THREAD_NAME_MAX = 100
THREAD_ARCHIVE_MINUTES: Final[Literal[1440]] = 1440  # a quiet day; a new message reopens it
_REMEMBERED = 4096  # first messages whose thread (or lack of one) we remember
# A thread that refuses a message: Unknown Channel, Missing Access, Missing Permissions,
# archived (and we may not reopen it), locked. Anything else is about the message itself.
_NO_THREAD = frozenset({10003, 50001, 50013, 50083, 160005})


class DiscordDelivery:
    """The ``Sender`` half of the Discord adapter; ``client`` returns the connected client."""

    def __init__(self, client: Callable[[], discord.Client], charts: ChartCache) -> None:
        self._client = client
        self._charts = charts
        # first message id -> its thread's id, or None where updates are replies
        self._threads: OrderedDict[int, int | None] = OrderedDict()

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        client = self._client()
        options = await message_options(render_reply(reply, lang), self._charts)
        parent = _snowflake(channel, "channel")
        if thread_of is None:
            return Sent(channel, await _post(client, parent, options, key, f"channel={channel}"))
        first = _snowflake(thread_of, "message")
        name = render(reply.title, lang) if reply.title is not None else ""
        thread = await self._thread(client, parent, first, name or "updates")
        if thread is not None:
            try:
                posted = await _post(client, thread, options, key, f"thread={thread}")
                return Sent(channel, posted)
            except DeliveryError as exc:
                cause = exc.__cause__
                if not isinstance(cause, discord.HTTPException) or cause.code not in _NO_THREAD:
                    raise
                # Locked, archived where we may not reopen it, or gone: reply in the channel.
                log.info("thread refused a message thread=%d error=%s", thread, exc)
                self._remember(first, None)
            # The attempt read the chart's bytes: the reply needs its own copy.
            options = await message_options(render_reply(reply, lang), self._charts)
        options["reference"] = discord.MessageReference(
            message_id=first, channel_id=parent, fail_if_not_exists=False
        )
        return Sent(channel, await _post(client, parent, options, key, f"channel={channel}"))

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        client = self._client()
        options = await message_options(render_reply(reply, lang), self._charts)
        file = options.pop("file", None)
        options["attachments"] = [file] if file is not None else []
        options.setdefault("content", None)
        options.setdefault("embed", None)
        options.setdefault("view", None)
        channel = client.get_partial_messageable(_snowflake(sent.channel, "channel"))
        message = channel.get_partial_message(_snowflake(sent.message_id, "message"))
        async with _delivery(f"edit channel={sent.channel}"):
            await message.edit(**options)

    async def _thread(
        self, client: discord.Client, parent: int, first: int, name: str
    ) -> int | None:
        """The thread under ``first``, started now if need be; None where updates are replies."""
        if first in self._threads:
            return self._threads[first]
        thread: int | None
        async with _delivery(f"thread channel={parent}"):
            try:
                data = await client.http.start_thread_with_message(
                    parent,
                    first,
                    name=name[:THREAD_NAME_MAX],
                    auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                )
                thread = int(data["id"])
            except discord.HTTPException as exc:
                if exc.code == THREAD_EXISTS:
                    thread = first  # started by an earlier update (before a restart)
                elif 400 <= exc.status < 500 and exc.status not in (401, 429):
                    # No threads here (a DM, a missing permission, a deleted message): a reply
                    # still ties the update to the incident.
                    log.info(
                        "no thread for updates channel=%d status=%d code=%d",
                        parent,
                        exc.status,
                        exc.code,
                    )
                    thread = None
                else:
                    raise  # 401, 429, 5xx: the outbox tries again later
        self._remember(first, thread)
        return thread

    def _remember(self, first: int, thread: int | None) -> None:
        self._threads[first] = thread
        self._threads.move_to_end(first)
        while len(self._threads) > _REMEMBERED:
            self._threads.popitem(last=False)


async def _post(
    client: discord.Client, channel: int, options: dict[str, Any], key: str, what: str
) -> str:
    target = client.get_partial_messageable(channel)
    async with _delivery(f"send {what}"):
        message = await target.send(nonce=nonce(key), **options)
    return str(message.id)


def nonce(key: str) -> str:
    """A Discord nonce (at most 25 characters) that is the same for the same idempotency key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:NONCE_MAX]


def _snowflake(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DeliveryError(f"{what} id {value!r} is not a Discord id", permanent=True) from None


@contextlib.asynccontextmanager
async def _delivery(what: str) -> AsyncIterator[None]:
    """Map Discord failures to DeliveryError: retry later (429, 5xx, network) or never (4xx).

    Bounded in time: discord.py retries 429s and 5xx inside one request for minutes, which
    would hold an outbox worker; past SEND_TIMEOUT the outbox retries instead (the nonce makes
    that resend safe).
    """
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            yield
    except discord.RateLimited as exc:
        raise DeliveryError(f"{what}: rate limited", retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise DeliveryError(
                f"{what}: rate limited", retry_after=_seconds(exc.response.headers)
            ) from exc
        if exc.status >= 500:
            raise DeliveryError(f"{what}: Discord error {exc.status}") from exc
        if exc.status == 401:
            # A revoked or rotated token is the bot's problem, not the message's: keep the
            # alerts and try again once the operator fixed it, instead of dead-lettering all.
            log.error("Discord rejects the bot token (401); alerts wait until it is fixed")
            raise DeliveryError(f"{what}: Discord rejects the bot token", retry_after=60) from exc
        # 403 Missing Access/Permissions, 404 Unknown Channel, 400 bad payload: resending the
        # same message to the same place cannot succeed.
        raise DeliveryError(
            f"{what}: Discord refused it ({exc.status}, code {exc.code}): {exc.text}",
            permanent=True,
        ) from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _seconds(headers: Any) -> float | None:
    """Retry-After as seconds; None when missing or malformed (the outbox backs off itself)."""
    try:
        value = float(headers.get("Retry-After", ""))
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None

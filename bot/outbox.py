"""The alert dispatcher: drains the outbox, one independent loop per platform.

RELIABILITY.md, "Delivery of alerts": rows are claimed in queue order; each channel's rows go out
one after another (an update never overtakes its opening message) while different channels go
out concurrently, paced by the adapter's own limiter. Every message is posted with an idempotency
key: a Discord nonce; on Slack, which has none, the key rides in the message metadata, each
attempt is marked before it is made, and a retry whose last attempt may have landed looks for
the key first (``Reconciler``). Later changes edit the first message and add a reply in its thread;
the resolution edits it to "resolved after 1 h 12 min". 429, 5xx and connection failures are
retried with backoff and jitter, honouring Retry-After; a permanent refusal, or a row older than
``max_age``, becomes a dead letter (listed by /subscriptions and the digest). A platform that is
down only delays its own rows. A storage error is logged and retried, never reported as a
service outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.adapters.base import DeliveryError, Reconciler, Sender, Sent
from bot.alerts import alert_reply
from bot.ops import OpsNotifier
from bot.reply import Reply
from bot.store import OutboxRow, Store

__all__ = ["AlertDispatcher", "DeliveryPolicy"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    poll_seconds: float = 5.0  # how often due retries are looked for without a wake-up
    batch: int = 200  # rows claimed per round
    channels_in_flight: int = 25  # channels served at once per platform
    backoff_min: float = 2.0
    backoff_max: float = 300.0
    max_age_seconds: int = 24 * 3600  # then a dead letter
    wait_for_original: float = 5.0  # an update waits this long for its opening message


@dataclass(slots=True)
class _Attempt:
    """What one delivery attempt found out, for deciding what its failure leaves in doubt."""

    looked: bool = False  # an earlier attempt in doubt was looked for, and not found


class AlertDispatcher:
    def __init__(
        self,
        store: Store,
        senders: Mapping[str, Sender],
        *,
        policy: DeliveryPolicy = DeliveryPolicy(),
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._senders = dict(senders)
        self._policy = policy
        self._clock = clock
        self._rng = rng or random.Random()  # backoff jitter, not security
        self._wake = {platform: asyncio.Event() for platform in self._senders}
        self._loops: list[asyncio.Task[None]] = []
        self._started = False
        self.delivered = 0
        self.ops: OpsNotifier | None = None  # told when the store fails and recovers

    @property
    def senders(self) -> dict[str, Sender]:
        """The live platform -> sender map (the ops notices use the same connections)."""
        return self._senders

    def add_sender(self, platform: str, sender: Sender) -> None:
        """Register a platform after start (the console adapter is built last)."""
        self._senders[platform] = sender
        self._wake[platform] = asyncio.Event()
        if self._started:
            self._loops.append(asyncio.create_task(self._loop(platform), name=f"outbox-{platform}"))

    def wake(self) -> None:
        """New rows were queued: look now instead of at the next poll."""
        for event in self._wake.values():
            event.set()

    async def start(self) -> None:
        self._started = True
        for platform in self._senders:
            self._loops.append(asyncio.create_task(self._loop(platform), name=f"outbox-{platform}"))

    async def stop(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        self._started = False

    async def drain_once(self, platform: str) -> int:
        """Deliver what is due now on one platform; return how many rows were attempted."""
        rows = await self._store.due_alerts(platform, int(self._clock()), self._policy.batch)
        by_channel: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        gate = asyncio.Semaphore(self._policy.channels_in_flight)

        async def serve(queue: list[OutboxRow]) -> None:
            async with gate:
                for row in queue:
                    if not await self._deliver(row):
                        break  # keep this channel's order: later rows wait for this one

        await asyncio.gather(*(serve(q) for q in by_channel.values()))
        return len(rows)

    async def _loop(self, platform: str) -> None:
        wake = self._wake[platform]
        while True:
            wake.clear()
            try:
                attempted = await self.drain_once(platform)
            except sqlite3.Error as exc:
                # The store is down: our problem, retried; never an outage alert.
                attempted = 0
                if self.ops is not None:
                    await self.ops.failed("alert delivery", exc)
            except Exception:
                log.exception("outbox round failed platform=%s", platform)
                attempted = 0
            else:
                if self.ops is not None:
                    await self.ops.ok("alert delivery")
            if attempted >= self._policy.batch:
                continue  # more may be due right now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._policy.poll_seconds):
                    await wake.wait()

    async def _deliver(self, row: OutboxRow) -> bool:
        """Try one row; True if it is settled (sent or dead), False if it must wait."""
        sender = self._senders[row.platform]
        reply = alert_reply(row.payload)
        now = int(self._clock())
        attempt = _Attempt()
        try:
            if row.kind == "open":
                sent = await self._post(sender, row, reply, now, attempt)
            else:
                original = None
                if row.incident_id is not None:
                    original = await self._store.original_message(
                        row.incident_id, row.platform, row.channel
                    )
                if await self._store.earlier_pending(row):
                    # Its opening message, or an earlier change of the incident, has not gone
                    # out in this channel yet (it may be backing off): keep their order.
                    await self._store.alert_retry(
                        row.id,
                        now + int(self._policy.wait_for_original),
                        "waiting for an earlier change",
                        in_doubt=True,  # keeps an earlier attempt's mark, if there was one
                    )
                    return False
                first = None
                if original is not None and original[0] == "sent" and original[1]:
                    first = await self._edit_first(
                        sender, row, reply, Sent(row.channel, original[1])
                    )
                if first is None:
                    # Subscribed after the incident opened, or its first message is gone.
                    sent = await self._post(sender, row, reply, now, attempt)
                elif row.kind == "resolve" and not await self._store.had_updates(row):
                    sent = first  # the resolution edits the message; no thread to tell
                else:
                    sent = await self._post(
                        sender, row, reply, now, attempt, thread_of=first.message_id
                    )
            message_id = sent.message_id
        except DeliveryError as exc:
            return await self._failed(row, now, str(exc), exc.retry_after, exc.permanent, attempt)
        except Exception as exc:  # a bug of ours or an unexpected library error: retry later
            log.exception("alert delivery crashed row=%d platform=%s", row.id, row.platform)
            return await self._failed(row, now, type(exc).__name__, None, False, attempt)
        await self._store.alert_sent(row.id, message_id, now)
        self.delivered += 1
        return True

    async def _edit_first(
        self, sender: Sender, row: OutboxRow, reply: Reply, first: Sent
    ) -> Sent | None:
        """Edit the incident's first message to the row's state; None if that message is gone.

        A deleted first message (or one the platform no longer lets us edit) must not
        dead-letter the incident's updates: they are posted as new messages instead.
        """
        try:
            await sender.edit(first, reply)
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            log.warning(
                "first alert message gone row=%d platform=%s error=%s", row.id, row.platform, exc
            )
            return None
        return first

    async def _post(
        self,
        sender: Sender,
        row: OutboxRow,
        reply: Reply,
        now: int,
        attempt: _Attempt,
        thread_of: str | None = None,
    ) -> Sent:
        """Send the row's message once, as far as the platform lets us know.

        Discord drops a resend by its nonce. Slack has no such key, so before a retry whose last
        attempt may have landed (a crash, a timeout) we look for the message by its key, and
        every attempt is marked first so a crash in the middle leaves that trace.
        """
        key = self._store.alert_key(row.id)
        if isinstance(sender, Reconciler):
            if row.sending_at is not None:
                found = await sender.find(
                    row.channel, key, since=row.sending_at, thread_of=thread_of
                )
                if found is not None:
                    log.info("alert already posted row=%d platform=%s", row.id, row.platform)
                    return found
                attempt.looked = True
            await self._store.alert_sending(row.id, now)
        return await sender.send(row.channel, reply, key=key, thread_of=thread_of)

    async def _failed(
        self,
        row: OutboxRow,
        now: int,
        error: str,
        retry_after: float | None,
        permanent: bool,
        attempt: _Attempt,
    ) -> bool:
        if permanent or now - row.created_at >= self._policy.max_age_seconds:
            log.warning("alert dead row=%d platform=%s error=%s", row.id, row.platform, error)
            await self._store.alert_dead(row.id, error)
            return True
        p = self._policy
        backoff = min(p.backoff_max, p.backoff_min * 2 ** min(row.attempts, 16))
        delay = max(retry_after or 0.0, backoff * self._rng.uniform(0.5, 1.0))
        # Counted from the refusal, not from when the attempt began, and rounded up to the next
        # whole second (due_at is in seconds): a retry never comes before Retry-After is over.
        due = max(now + 1, math.ceil(self._clock() + delay))
        # A refusal with Retry-After (a 429, a limiter) means nothing was posted now; anything
        # else (5xx, a timeout, a dropped connection) may have posted it. An earlier attempt in
        # doubt stays in doubt until this attempt looked for it (an edit refused before the
        # look, or the look itself failing, settles nothing).
        in_doubt = retry_after is None or (row.sending_at is not None and not attempt.looked)
        await self._store.alert_retry(row.id, due, error, in_doubt=in_doubt)
        return False

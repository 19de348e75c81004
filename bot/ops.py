"""The operations channel: one "bot degraded" notice when background work hits a storage failure,
one "recovered" notice when it works again.

A storage failure is the bot's problem, never a service outage (RELIABILITY.md), so it is not
turned into incidents or alerts: the notice goes straight to the operator's channel through the
adapter (the outbox lives in the same failing database), once per episode, not once per retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.adapters.base import Sender
from bot.i18n import Message
from bot.reply import Reply, ReplyKind

__all__ = ["OpsNotifier", "parse_ops_channel"]

log = logging.getLogger(__name__)


def parse_ops_channel(value: str) -> tuple[str, str] | None:
    """``"discord:123"`` -> ("discord", "123"); "" -> None (no operations channel)."""
    platform, sep, channel = value.partition(":")
    return (platform, channel) if sep and platform and channel else None


class OpsNotifier:
    def __init__(self, senders: Mapping[str, Sender], target: tuple[str, str] | None) -> None:
        self._senders = senders  # shared with the dispatcher: the console joins later
        self._target = target
        self._failing: set[str] = set()  # background jobs failing now
        self._episode = 0

    @property
    def degraded(self) -> bool:
        return bool(self._failing)

    async def failed(self, what: str, error: BaseException) -> None:
        """Background work ``what`` hit a storage failure: tell the operator once per episode."""
        log.error("bot degraded: %s failed: %s", what, error)
        first = not self._failing
        self._failing.add(what)
        if first:
            self._episode += 1
            await self._post(Message("ops.degraded", what=what, error=str(error)[:200]))

    async def ok(self, what: str) -> None:
        """Background work ``what`` succeeded; when nothing fails any more, say so once."""
        if what not in self._failing:
            return
        self._failing.discard(what)
        if not self._failing:
            log.info("bot recovered: %s works again", what)
            await self._post(Message("ops.recovered", what=what))

    async def _post(self, message: Message) -> None:
        if self._target is None:
            return
        platform, channel = self._target
        sender = self._senders.get(platform)
        if sender is None:
            log.warning("ops channel platform %s is not connected", platform)
            return
        try:
            await sender.send(
                channel,
                Reply(ReplyKind.INFO, text=message),
                key=f"ops-{self._episode}-{message.key}",
            )
        except Exception:
            # The operator's channel failing too must not stop the bot from recovering.
            log.exception("could not post to the ops channel")

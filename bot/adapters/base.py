"""The adapter contract: what every platform adapter (console, Discord, Slack) must and must not do.

An adapter is the thin edge between a chat platform and the bot. Its obligations:

- Platform I/O only. It turns a platform event into an ``Invocation``, awaits ``dispatch``, and
  renders the ``Reply`` with its own pure renderer. It holds no business rules: no verdicts, no
  SQL, no catalog lookups.
- It receives ``dispatch`` and its own settings, nothing else: never the store, the router or the
  app (the mistake of adapters that reach into the core's web server).
- It decides ``Invocation.is_admin`` at run time from what the platform says about the user
  (guild permissions, workspace admins, the person at the terminal), never from user input.
- Button clicks dispatch the same ``Invocation`` as typing the command the button names.
- ``start`` and ``stop`` never call ``sys.exit`` and never block the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.complete import Choice
from bot.invocation import Invocation
from bot.reply import Reply

__all__ = [
    "Adapter",
    "Choice",
    "Complete",
    "DeliveryError",
    "Dispatch",
    "Reconciler",
    "Sender",
    "Sent",
]

Dispatch = Callable[[Invocation], Awaitable[Reply]]
"""Runs one command for one user; the only door from an adapter into the bot."""


class Complete(Protocol):
    """Suggestions as the user types (in memory, fast), as the user's server sees the catalog."""

    def __call__(
        self,
        command: str,
        param: str,
        partial: str,
        lang: str,
        *,
        platform: str = "",
        tenant: str = "",
        region: str | None = None,
    ) -> list[Choice]: ...


@runtime_checkable
class Adapter(Protocol):
    """One platform connection. Build it with ``(dispatch, settings...)``, then start it."""

    name: str
    """Short platform name ("console", "discord", "slack"), used in logs and Invocation.platform."""

    async def start(self) -> None:
        """Connect and begin serving.

        Returns once the adapter runs in the background (chat platforms), or, for the console,
        runs until end of input or ``/quit``. Raises on a configuration or connection error that
        retrying cannot fix, with a message that says what to change.
        """
        ...

    async def stop(self) -> None:
        """Stop serving and release the connection; safe to call more than once or before start."""
        ...


@dataclass(frozen=True, slots=True)
class Sent:
    """Where a proactive message landed, so later updates can edit it and reply in its thread."""

    channel: str
    message_id: str  # Discord message id; Slack message ts


class DeliveryError(Exception):
    """A proactive send failed. The outbox decides what to do from these two facts."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after  # seconds the platform asked us to wait, if it said
        self.permanent = permanent  # retrying cannot help (unknown channel, missing access)


@runtime_checkable
class Sender(Protocol):
    """Proactive messages (alerts, digests): chat adapters implement this beside ``Adapter``.

    Implementations keep the platform's limits themselves (Discord's global 50 requests/s and
    route buckets, Slack's one message per second per channel) and raise ``DeliveryError`` when a
    message cannot go now; they never retry for minutes (that is the outbox's job).
    """

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        """Post ``reply``; ``key`` is an idempotency key (Discord nonce) so a resend is one message.

        With ``thread_of`` (a message id from an earlier ``Sent``) it goes into that thread.
        """
        ...

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        """Replace the message ``sent`` with ``reply`` (an incident's update or resolution)."""
        ...


@runtime_checkable
class Reconciler(Protocol):
    """A sender whose platform has no idempotency key can look for an earlier attempt instead.

    Slack has none: a message Slack accepted just before a crash (or a timeout) would be posted
    again by the retry. The outbox marks each attempt before it is made; when it retries a row
    whose last attempt may have landed, it first asks ``find`` and records what it finds.
    """

    async def find(
        self, channel: str, key: str, *, since: int, thread_of: str | None = None
    ) -> Sent | None:
        """The message posted with ``key`` at or after ``since`` (epoch seconds), if any.

        None when there is none, or when the platform will not say (a missing scope, no access):
        the outbox then sends again, which may repeat that one message.
        """
        ...

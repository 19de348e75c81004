"""Errors that end start-up with a message telling the operator what to change."""

from __future__ import annotations

__all__ = ["PlatformUnavailable", "StartupError"]


class StartupError(Exception):
    """The bot cannot start as configured; the message says what to change."""


class PlatformUnavailable(Exception):
    """A chat platform could not be reached at start; trying again later can fix it.

    The bot starts without that platform and keeps retrying it in the background, so one
    platform being down never keeps the others (or the alerts for them) from working.
    """

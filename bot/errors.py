"""Errors that end start-up with a message telling the operator what to change."""

from __future__ import annotations

__all__ = ["StartupError"]


class StartupError(Exception):
    """The bot cannot start as configured; the message says what to change."""

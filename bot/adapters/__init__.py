"""Platform adapters: each turns platform events into Invocations and renders Replies back.

The contract every adapter follows is ``bot.adapters.base.Adapter``. Adapter modules are imported
by their full path (``bot.adapters.console``) so that using one never imports another platform's
library.
"""

from __future__ import annotations

from bot.adapters.base import Adapter, Dispatch

__all__ = ["Adapter", "Dispatch"]

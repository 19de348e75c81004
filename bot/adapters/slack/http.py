"""HTTP mode: ``POST /slack/events`` on the bot's API server, in front of bolt.

Commands, clicks and events all arrive here. Bolt verifies the signature, but a non-numeric
``X-Slack-Request-Timestamp`` makes it raise and answer 500 (PROTOCOLS.md), which reads as our
outage and invites retries; such requests are refused here with 401 before bolt sees them. A
signed body bolt cannot parse gets 400 for the same reason.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

__all__ = ["EVENTS_PATH", "mount_events", "signature_headers_ok"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# A Unix time in seconds has 10 digits until the year 2286; more is nonsense, not a timestamp.
_MAX_TIMESTAMP_DIGITS = 12


def signature_headers_ok(timestamp: str | None, signature: str | None) -> bool:
    """True when both headers have the shape bolt can check (not whether they are right)."""
    if not timestamp or not signature:
        return False
    # isascii() first: str.isdigit() accepts "²" and Arabic-Indic digits, which int() rejects
    # or reads differently.
    stamp_ok = timestamp.isascii() and timestamp.isdigit()
    return stamp_ok and len(timestamp) <= _MAX_TIMESTAMP_DIGITS and signature.startswith("v0=")


def mount_events(web_app: web.Application, app: AsyncApp) -> None:
    """Route ``POST /slack/events`` on ``web_app`` to ``app``."""

    async def events(request: web.Request) -> web.StreamResponse:
        if not signature_headers_ok(
            request.headers.get("X-Slack-Request-Timestamp"),
            request.headers.get("X-Slack-Signature"),
        ):
            log.info("slack request refused reason=malformed_signature_headers")
            return web.json_response({"error": "invalid signature headers"}, status=401)
        try:
            response = await app.async_dispatch(await to_bolt_request(request))
        except (ValueError, TypeError, AttributeError, KeyError):
            # Correctly signed but not a payload bolt can read (``payload={not json``, a JSON
            # list): whoever holds the secret sent nonsense, which is a 400, not our 500.
            log.warning("slack request refused reason=unreadable_body", exc_info=True)
            return web.json_response({"error": "unreadable request body"}, status=400)
        return await to_aiohttp_response(response)

    web_app.router.add_post(EVENTS_PATH, events)

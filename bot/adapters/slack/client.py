"""The Slack Web API client: one base URL for every call, and short rate-limit retries only.

slack-sdk does not retry a 429 unless a retry handler is installed (PROTOCOLS.md). Ours retries a
couple of times when Slack asks for a short wait and gives up at once when it asks for a long
one: minutes of waiting belong to the outbox, not to a request a user is waiting on.
"""

from __future__ import annotations

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

__all__ = ["MAX_RETRY_WAIT", "ShortRateLimitRetry", "web_client"]

MAX_RETRIES = 2
MAX_RETRY_WAIT = 3.0  # seconds; a longer Retry-After fails fast with retry_after set


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack-sdk's 429 handler (it sleeps Retry-After plus jitter), for short waits only."""

    def __init__(self, max_retry_count: int = MAX_RETRIES, max_wait: float = MAX_RETRY_WAIT):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        raw = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), None)
        try:
            wait = float(raw[0] if isinstance(raw, list) else str(raw)) if raw else 1.0
        except ValueError:
            wait = 1.0
        return wait <= self.max_wait


def web_client(token: str, base_url: str, *, connection_retries: bool = True) -> AsyncWebClient:
    """A client for ``base_url`` (it must end with "/api/": slack-sdk appends method names).

    ``connection_retries=False`` for alerts: slack-sdk would resend a post whose connection
    dropped after Slack accepted it (a duplicate nobody sees); the outbox retries instead,
    after looking for the message.
    """
    handlers: list[AsyncRetryHandler] = [ShortRateLimitRetry()]
    if connection_retries:
        handlers.insert(0, AsyncConnectionErrorRetryHandler())
    base = base_url if base_url.endswith("/") else f"{base_url}/"
    return AsyncWebClient(token=token, base_url=base, retry_handlers=handlers)

"""Charts as Slack files: drawn in a helper process, uploaded with files_upload_v2, reused.

Slack shows an image only from a public URL or an uploaded Slack file (PROTOCOLS.md), so each
chart is uploaded and referenced by file id from an image block.

Drawing costs ~100 ms of CPU while holding the GIL. On a thread it starves the event loop (every
socket call then waits for the GIL: loop lag of 100+ ms under load), so drawing happens in one
helper process, started on the first chart. And during an outage every new report changes the
series, so a chart of the same service and 24-hour window is reused for a minute after its
upload rather than redrawn for every ``/isitdown``: a chart a minute old still tells the story.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chartprocess import ChartProcess
from bot.charts import ChartData

__all__ = ["REUSE_SECONDS", "ChartUploader"]

log = logging.getLogger(__name__)

REUSE_SECONDS = 60.0
_UNSAFE = re.compile(r"[^a-z0-9_-]+")

# Which picture a chart is: the same title (service), window and zone is the same picture,
# give or take the newest reports.
_Key = tuple[str, datetime | None, datetime | None, str]


@dataclass(frozen=True, slots=True)
class _Uploaded:
    chart: ChartData
    file_id: str
    at: float


class ChartUploader:
    """``await file_id(chart)``: the Slack file showing ``chart``, or None if it cannot be had."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        max_cached: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._max = max_cached
        self._clock = clock
        self._files: OrderedDict[_Key, _Uploaded] = OrderedDict()
        self._pending: dict[_Key, asyncio.Future[str | None]] = {}
        self._process = ChartProcess()
        self.uploads = 0  # files uploaded so far (for logs, tests and benchmarks)

    async def file_id(self, chart: ChartData) -> str | None:
        key = _key(chart)
        known = self._files.get(key)
        if known is not None and (known.chart == chart or self._clock() - known.at < REUSE_SECONDS):
            self._files.move_to_end(key)
            return known.file_id
        pending = self._pending.get(key)
        if pending is not None:  # the same picture is on its way: wait for it, once
            return await asyncio.shield(pending)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            file_id = await self._upload(chart)
            future.set_result(file_id)
        finally:
            del self._pending[key]
            if not future.done():
                future.cancel()
        if file_id is not None:
            self._files[key] = _Uploaded(chart, file_id, self._clock())
            self._files.move_to_end(key)
            while len(self._files) > self._max:
                self._files.popitem(last=False)
        return file_id

    async def close(self) -> None:
        """Stop the drawing process (safe to call more than once, or when none started)."""
        await self._process.close()

    async def _upload(self, chart: ChartData) -> str | None:
        try:
            png = await self._process.png(chart)
        except BrokenProcessPool:
            # The drawing process died (killed, out of memory): the next chart starts another.
            return None
        except Exception:
            # A chart that cannot be drawn must not cost the user the answer: no picture, the
            # sparkline instead (render.py).
            log.exception("chart drawing failed title=%s", chart.title)
            return None
        name = _UNSAFE.sub("-", chart.title.lower()).strip("-")[:60] or "chart"
        try:
            response = await self._client.files_upload_v2(
                file=png, filename=f"{name}.png", title=chart.title, alt_txt=chart.title
            )
        except (SlackApiError, SlackRequestError, ClientError, TimeoutError) as exc:
            log.warning("chart upload failed title=%s error=%s", chart.title, exc)
            return None
        self.uploads += 1
        file = response.get("file") or {}
        file_id = file.get("id") if isinstance(file, dict) else None
        return file_id if isinstance(file_id, str) else None


def _key(chart: ChartData) -> _Key:
    first = chart.buckets[0] if chart.buckets else None
    last = chart.buckets[-1] if chart.buckets else None
    return (chart.title, first, last, chart.timezone)

"""The console adapter: type slash commands in a terminal, read the answers rendered with rich.

The person at the terminal owns the bot, so every console invocation is an admin one. Lines are
read on a daemon thread so the event loop keeps serving probes and the API while nobody types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from bot.adapters.base import Dispatch, Sent
from bot.charts import ChartData, render_png
from bot.i18n import text
from bot.invocation import Invocation
from bot.parse import ParseError, parse_args, split_command
from bot.reply import Reply, error
from bot.spec import CommandSpec
from bot.textrender import render_rich

__all__ = ["ConsoleAdapter"]

log = logging.getLogger(__name__)

PROMPT = "outagebot> "
_QUIT = "quit"
# Chart file names come from service keys; anything else is replaced so a name cannot leave the
# chart directory ("../x") or produce an unusable file name.
_UNSAFE_FILE_CHARS = re.compile(r"[^a-z0-9_-]+")


class ConsoleAdapter:
    """Reads commands from ``stdin`` until end of input or ``/quit``; prints each reply."""

    name = "console"

    def __init__(
        self,
        dispatch: Dispatch,
        specs: Mapping[str, CommandSpec],
        *,
        lang: str = "en",
        locale: str | None = None,
        user: str = "console",
        stdin: TextIO | None = None,
        console: Console | None = None,
        chart_dir: Path | None = None,
    ) -> None:
        self._dispatch = dispatch
        self._specs = dict(specs)
        self._lang = lang
        self._locale = locale
        self._user = user
        self._stdin = stdin if stdin is not None else sys.stdin
        self._console = console if console is not None else Console()
        self._chart_dir = chart_dir
        self._stopping = asyncio.Event()
        self._sent: dict[str, str] = {}  # idempotency key -> message id (a resend is one message)

    async def start(self) -> None:
        """Serve lines until end of input, ``/quit`` or ``stop()``."""
        self._stopping.clear()
        interactive = _is_tty(self._stdin)
        while not self._stopping.is_set():
            if interactive:
                self._console.print(PROMPT, end="", markup=False, highlight=False)
            line = await self._next_line()
            if line is None:
                break
            if not await self._handle(line):
                break

    async def stop(self) -> None:
        """Make ``start`` return now, even while it waits for a line."""
        self._stopping.set()

    # ---- one line --------------------------------------------------------------------------

    async def _handle(self, line: str) -> bool:
        """Answer one line; False when the user asked to quit."""
        stripped = line.strip()
        if not stripped:
            return True
        if not stripped.startswith("/"):
            self._console.print(Text(text("console.hint", self._lang), style="yellow"))
            return True
        parsed = split_command(stripped, self._specs)
        if parsed.command == _QUIT:
            return False
        spec = self._specs.get(parsed.command)
        args: dict[str, str] = {}
        if spec is not None:
            try:
                args = parse_args(spec, parsed.rest)
            except ParseError as exc:
                self._show(error(exc.key, usage=spec.usage()))
                return True
        # An unknown command is dispatched anyway: the router owns the "unknown command" answer.
        reply = await self._run(self._invocation(parsed.command, args))
        self._show(reply)
        if reply.chart is not None and self._chart_dir is not None:
            await self._save_chart(reply.chart, self._chart_dir / f"{_chart_name(reply)}.png")
        return True

    def _invocation(self, command: str, args: Mapping[str, str]) -> Invocation:
        return Invocation(
            command=command,
            args=args,
            platform=self.name,
            # One local "server": the operator can try per-server commands (/service add).
            tenant="local",
            channel="console",
            user=self._user,
            locale=self._locale,
            is_admin=True,  # the person at the terminal runs the bot, so owns it
        )

    async def _run(self, invocation: Invocation) -> Reply:
        try:
            return await self._dispatch(invocation)
        except Exception:
            # The router already turns handler failures into replies; this is a bug in dispatch
            # itself. Say so and keep the console alive rather than dropping the operator's shell.
            log.exception("dispatch failed command=%s platform=console", invocation.command)
            return error("error.internal")

    def _show(self, reply: Reply) -> None:
        self._console.print(render_rich(reply, self._lang))

    # ---- proactive messages (alerts and digests subscribed from the console) ------------------

    async def send(
        self,
        channel: str,
        reply: Reply,
        *,
        key: str,
        thread_of: str | None = None,
        lang: str = "en",
    ) -> Sent:
        """Print an alert; the terminal is the channel. A key seen before prints nothing."""
        if key in self._sent:
            return Sent(channel, self._sent[key])
        message_id = f"console-{len(self._sent) + 1}"
        self._sent[key] = message_id
        label = f"[{channel} {message_id}]" if thread_of is None else f"[{channel} ↳ {thread_of}]"
        self._console.print(Text(label, style="dim"))
        self._show(reply)
        return Sent(channel, message_id)

    async def edit(self, sent: Sent, reply: Reply, *, lang: str = "en") -> None:
        """A terminal cannot change what it printed: say which message the new text replaces."""
        self._console.print(Text(f"[{sent.channel} {sent.message_id} edited]", style="dim"))
        self._show(reply)

    async def _save_chart(self, chart: ChartData, path: Path) -> None:
        # Drawing takes ~100 ms of CPU: off the event loop, like the file write.
        png = await asyncio.to_thread(render_png, chart)
        try:
            await asyncio.to_thread(_write_file, path, png)
        except OSError as exc:
            log.warning("chart not saved path=%s error=%s", path, exc)
            message = text(
                "console.chart_failed", self._lang, path=str(path), reason=exc.strerror or str(exc)
            )
            self._console.print(Text(message, style="red"))
            return
        self._console.print(Text(text("console.chart_saved", self._lang, path=str(path))))

    # ---- reading ---------------------------------------------------------------------------

    async def _next_line(self) -> str | None:
        """The next line, or None at end of input or once ``stop()`` was called."""
        read = self._read_line()
        stopped = asyncio.ensure_future(self._stopping.wait())
        waiting: set[asyncio.Future[Any]] = {read, stopped}
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if read not in done:
            read.cancel()
            return None
        line = read.result()
        return line or None  # readline() returns "" only at end of input

    def _read_line(self) -> asyncio.Future[str]:
        """Read one line on a daemon thread.

        Not asyncio.to_thread: its executor threads are joined when the loop shuts down, so a
        Ctrl-C (or stop()) while readline() waits for the keyboard would hang the exit until the
        user pressed Enter. A daemon thread is simply abandoned.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[str] = loop.create_future()
        stdin = self._stdin

        def work() -> None:
            try:
                line = stdin.readline()
            except (OSError, ValueError) as exc:  # ValueError: the stream was closed
                _resolve(loop, future, exc)
            else:
                _resolve(loop, future, line)

        threading.Thread(target=work, name="console-stdin", daemon=True).start()
        return future


def _resolve(
    loop: asyncio.AbstractEventLoop, future: asyncio.Future[str], outcome: str | BaseException
) -> None:
    """Hand a reader thread's outcome to the loop; dropped if the loop or the wait is gone."""

    def settle() -> None:
        if future.done():  # cancelled by stop()
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    # RuntimeError: the loop closed while this thread waited for input.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except ValueError:  # closed stream
        return False


def _chart_name(reply: Reply) -> str:
    if reply.verdict is not None:
        raw = reply.verdict.service
    else:
        raw = reply.chart.title if reply.chart is not None else ""
    return _UNSAFE_FILE_CHARS.sub("-", raw.lower()).strip("-") or "chart"


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)

"""Checking an import file in a child process, so checking and writing use both cores.

Both halves of an import are Python-bound (parsing and validating lines; building rows and
rollups before SQLite runs), so on threads the interpreter lock serialises them: measured, the
overlap gained nothing. A child process checks the lines, decides which reports count and sums
their rollups (``ReportDedupe``), and streams each full batch back through a pipe as plain tuples
(about 4x cheaper to pickle than named tuples); the parent only hands batch k to SQLite while
the child works on batch k+1. The parent's all-or-nothing and resume rules are unchanged.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.importer_lines import ImportErrors, Progress, iter_batches
from bot.model import Catalog
from bot.resolve import Resolver
from bot.store import (
    ImportBatch,
    PreparedReports,
    ProbeRow,
    ReportDedupe,
    StatusRow,
    WorksForMeRow,
)


class CheckerCrashed(Exception):
    """The checking process ended without finishing; nothing it sent after the crash counts."""


@dataclass(slots=True)
class ChildChecker:
    """Runs the check in a child; ``batches()`` yields them, then ``events``/``errors`` are set."""

    path: Path
    catalog: Catalog
    ids: dict[str, int]
    batch_size: int
    dedupe_seconds: int
    progress: Progress | None = None
    events: int = 0
    errors: ImportErrors = field(default_factory=ImportErrors)

    async def batches(self) -> AsyncIterator[ImportBatch]:
        # spawn, not fork: the parent has threads (the store's), and forking them is unsafe.
        ctx = multiprocessing.get_context("spawn")
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(
            target=_check,
            args=(
                str(self.path),
                self.catalog,
                self.ids,
                self.batch_size,
                self.dedupe_seconds,
                sender,
            ),
            daemon=True,
        )
        child.start()
        sender.close()
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    message = await loop.run_in_executor(None, receiver.recv)
                except EOFError:
                    raise CheckerCrashed("the checking process stopped unexpectedly") from None
                kind = message[0]
                if kind == "batch":
                    yield _unpack(message[1])
                elif kind == "progress" and self.progress is not None:
                    self.progress("import", message[1], message[2])
                elif kind == "done":
                    self.events, problems, total = message[1], message[2], message[3]
                    self.errors.problems.extend(problems)
                    self.errors.total = total
                    return
                elif kind == "crash":
                    raise CheckerCrashed(f"the checking process failed: {message[1]}")
        finally:
            receiver.close()
            if child.is_alive():
                child.terminate()
            await loop.run_in_executor(None, child.join)


def _check(
    path: str,
    catalog: Catalog,
    ids: dict[str, int],
    size: int,
    dedupe_seconds: int,
    out: Connection,
) -> None:
    """The child's whole life: check every line, send batches while all is well, then totals."""
    from bot.importer_lines import LineParser  # the child imports only what it needs

    try:
        parser = LineParser(Resolver(catalog), ids)
        dedupe = ReportDedupe(dedupe_seconds)
        errors = ImportErrors()

        def progress(phase: str, done: int, total: int) -> None:
            out.send(("progress", done, total))

        for batch in iter_batches(
            Path(path), parser, errors, progress, phase="import", batch_size=size
        ):
            # Numbering stays the parent's: it counts batches, so send them even after an
            # error (empty then), which keeps resume numbers identical to a clean run.
            packed = _pack(batch, dedupe) if not errors.total else (([], [], []), [], [], [])
            out.send(("batch", packed))
        out.send(("done", parser.events, errors.problems, errors.total))
    except BaseException as exc:  # report, don't hang the parent on a silent pipe
        out.send(("crash", repr(exc)))
    finally:
        out.close()


def _pack(batch: ImportBatch, dedupe: ReportDedupe) -> tuple[Any, ...]:
    return (
        tuple(dedupe.prepare(batch.reports)),
        batch.works_for_me,
        batch.probes,
        batch.status,
    )


def _unpack(data: tuple[Any, ...]) -> ImportBatch:
    reports, works, probes, status = data
    batch = ImportBatch()
    batch.prepared = PreparedReports(*reports) if reports[0] else None
    batch.works_for_me = list[WorksForMeRow](works)
    batch.probes = list[ProbeRow](probes)
    batch.status = list[StatusRow](status)
    return batch

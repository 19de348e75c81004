"""``outagebot import FILE.jsonl``: bulk-load reports, confirmations, probes and status history.

All or nothing: a malformed line or an unknown service is reported with its line number and the
file leaves nothing behind. Batches are written (each its own transaction, so a running bot's
writes interleave) while the following lines are still being checked, and taken out again if a
bad line turns up. Each import is recorded by the file's content hash: running the same file again
says it is already imported, and an import interrupted by a crash resumes after its last committed
batch. Memory stays at about two batches whatever the file size.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.import_check import ChildChecker
from bot.importer_lines import (
    BATCH_SIZE,
    MAX_ERRORS_SHOWN,
    MAX_LINE_BYTES,
    BadLine,
    ImportErrors,
    LineParser,
    Progress,
    iter_batches,
)
from bot.resolve import Resolver
from bot.store import ImportBatch, ImportCounts, ImportJob, Store

__all__ = [
    "BATCH_SIZE",
    "MAX_ERRORS_SHOWN",
    "MAX_LINE_BYTES",
    "BadLine",
    "ImportErrors",
    "ImportResult",
    "check_file",
    "import_file",
]

# Below this size a child process costs more than it saves (it takes ~0.3 s to start).
PARALLEL_MIN_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportResult:
    counts: ImportCounts
    events: int = 0
    batches: int = 0
    skipped_batches: int = 0  # committed by an earlier, interrupted run of the same file
    already_imported: bool = False


async def import_file(
    path: Path,
    store: Store,
    resolver: Resolver,
    *,
    dedupe_seconds: int,
    progress: Progress | None = None,
    parallel: bool | None = None,
) -> ImportResult:
    """Import ``path``; on any bad line raise ImportErrors with nothing left behind.

    Batch k is written on the store's thread while later lines are still being checked: in a
    child process for files of ``PARALLEL_MIN_BYTES`` or more (``parallel`` forces the
    choice), so both cores work. If a bad line turns up, writing stops, the rest of the file is
    still checked (to report every problem), and every batch this import wrote is taken out
    again, rollups included.
    """
    digest, size = await asyncio.to_thread(_sha256, path)
    job = await store.begin_import(digest, path.name, BATCH_SIZE)
    if job.finished:
        return ImportResult(ImportCounts(), already_imported=True)
    if parallel is None:
        parallel = size >= PARALLEL_MIN_BYTES
    source = _Source(
        path, resolver, store.service_ids(), progress, parallel=parallel, dedupe=dedupe_seconds
    )
    writer = _Writer(store, job, dedupe_seconds)
    number = 0
    try:
        async for batch in source.batches():
            number += 1
            # Once a line is bad nothing more is written; batches an earlier run committed
            # are not written twice.
            if not source.errors.total and number > job.batches_done:
                await writer.submit(number, batch)
        await writer.drain()
    except BaseException:
        # Interrupted (Ctrl-C, a crash of ours): committed batches stay recorded, and running
        # the same import again resumes after them.
        await writer.drain(quiet=True)
        raise
    if source.errors.total:
        await store.abort_import(job)
        raise source.errors
    await store.finish_import(job, source.events)
    return ImportResult(writer.counts, source.events, number, min(job.batches_done, number))


def check_file(
    path: Path, resolver: Resolver, ids: dict[str, int], *, progress: Progress | None = None
) -> int:
    """Check every line without writing anything; return the number of events."""
    errors = ImportErrors()
    parser = LineParser(resolver, ids)
    for _batch in iter_batches(
        path, parser, errors, progress, phase="check", batch_size=BATCH_SIZE
    ):
        pass
    if errors.total:
        raise errors
    return parser.events


class _Source:
    """Checked batches in file order, from this process or from a child process."""

    def __init__(
        self,
        path: Path,
        resolver: Resolver,
        ids: dict[str, int],
        progress: Progress | None,
        *,
        parallel: bool,
        dedupe: int,
    ) -> None:
        self.errors = ImportErrors()
        self._parser = LineParser(resolver, ids)
        self._child = (
            ChildChecker(path, resolver.catalog, ids, BATCH_SIZE, dedupe, progress)
            if parallel
            else None
        )
        self._path = path
        self._progress = progress

    @property
    def events(self) -> int:
        return self._child.events if self._child is not None else self._parser.events

    async def batches(self) -> AsyncIterator[ImportBatch]:
        if self._child is not None:
            async for batch in self._child.batches():
                yield batch
            self.errors = self._child.errors
            return
        for batch in iter_batches(
            self._path,
            self._parser,
            self.errors,
            self._progress,
            phase="import",
            batch_size=BATCH_SIZE,
        ):
            yield batch


def _sha256(path: Path) -> tuple[str, int]:
    """The file's content hash (the import's identity) and its size."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _Writer:
    """Keeps one batch in flight on the store's thread while the caller checks the next."""

    def __init__(self, store: Store, job: ImportJob, dedupe_seconds: int) -> None:
        self._store = store
        self._job = job
        self._dedupe = dedupe_seconds
        self._pending: asyncio.Future[ImportCounts] | None = None
        self._sums = dict.fromkeys(("reports", "counted", "works_for_me", "probes", "status"), 0)

    async def submit(self, number: int, batch: ImportBatch) -> None:
        await self.drain()
        self._pending = asyncio.ensure_future(
            self._store.import_batch(batch, self._dedupe, job=self._job, number=number)
        )
        # Let the task hand the batch to the store thread before we go back to parsing.
        await asyncio.sleep(0)

    async def drain(self, *, quiet: bool = False) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            counts = await pending
        except Exception:
            if quiet:
                return
            raise
        for key in self._sums:
            self._sums[key] += getattr(counts, key)

    @property
    def counts(self) -> ImportCounts:
        return ImportCounts(**self._sums)

"""The agent's write-ahead spool: every batch is on disk before it is sent, until the core has it.

One file per batch, named ``<time_ns>-<batch id>.json`` so a directory listing is oldest first,
written atomically (temporary file, fsync, rename, fsync of the directory): after a crash a batch
file is either complete or absent. A file is deleted only after the core answered 200 (stored, or
already had it), so nothing is lost while the core is down and nothing is stored twice when either
side restarts. Batches the core refuses for their content move to ``rejected/`` with a ``.why``
note: kept for an operator, never retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, Protocol

log = logging.getLogger(__name__)

# At about one batch a second this is half a day of outage; past it the oldest batch goes
# (loudly) rather than filling the agent's disk.
DEFAULT_MAX_BATCHES: Final = 50_000
_SUFFIX: Final = ".json"


@dataclass(frozen=True, slots=True)
class Spooled:
    name: str  # the file name: its order is the send order
    batch_id: str
    body: bytes


class Spool(Protocol):
    """Batches waiting for the core, oldest first."""

    def __len__(self) -> int: ...

    async def put(self, batch_id: str, body: bytes) -> None: ...

    async def oldest(self) -> Spooled | None: ...

    async def done(self, item: Spooled) -> None: ...

    async def reject(self, item: Spooled, reason: str) -> None: ...


class SpoolLocked(Exception):
    """Another agent process already uses this spool directory."""


class DiskSpool:
    def __init__(self, directory: Path, *, max_batches: int = DEFAULT_MAX_BATCHES) -> None:
        self.directory = directory
        self.rejected = directory / "rejected"
        self._max = max_batches
        self._names: deque[str] = deque()
        self._lock: IO[bytes] | None = None

    @classmethod
    async def open(
        cls, directory: str | Path, *, max_batches: int = DEFAULT_MAX_BATCHES
    ) -> DiskSpool:
        spool = cls(Path(directory), max_batches=max_batches)
        await asyncio.to_thread(spool._open)
        return spool

    def _open(self) -> None:
        self.rejected.mkdir(parents=True, exist_ok=True)
        lock = (self.directory / ".lock").open("ab")
        try:
            # Two agents draining one spool would race on deletes; one owner at a time.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise SpoolLocked(f"{self.directory} is in use by another agent process") from None
        self._lock = lock
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()  # a write interrupted before its rename: never acknowledged
        self._names.extend(sorted(p.name for p in self.directory.glob("*" + _SUFFIX)))
        if self._names:
            log.info(
                "spool has batches from before count=%d dir=%s", len(self._names), self.directory
            )

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def __len__(self) -> int:
        return len(self._names)

    async def put(self, batch_id: str, body: bytes) -> None:
        name = f"{time.time_ns():020d}-{batch_id}{_SUFFIX}"
        await asyncio.to_thread(self._write, name, body)
        self._names.append(name)
        while len(self._names) > self._max:
            dropped = self._names.popleft()
            log.error("spool full, dropping the oldest batch max=%d file=%s", self._max, dropped)
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread((self.directory / dropped).unlink)

    def _write(self, name: str, body: bytes) -> None:
        final = self.directory / name
        tmp = final.with_name(name + ".tmp")
        with tmp.open("wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(final)
        _fsync_dir(self.directory)  # the rename itself must survive a power cut

    async def oldest(self) -> Spooled | None:
        while self._names:
            name = self._names[0]
            try:
                body = await asyncio.to_thread((self.directory / name).read_bytes)
            except FileNotFoundError:
                self._names.popleft()  # removed by hand; nothing to send
                continue
            return Spooled(name, name.removesuffix(_SUFFIX).split("-", 1)[-1], body)
        return None

    async def done(self, item: Spooled) -> None:
        # No directory fsync: if this unlink is lost in a crash, the resend is a duplicate the
        # core recognises by batch id and the file goes then.
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread((self.directory / item.name).unlink)
        self._discard(item.name)

    async def reject(self, item: Spooled, reason: str) -> None:
        def move() -> None:
            (self.rejected / (item.name + ".why")).write_text(reason + "\n", encoding="utf-8")
            with contextlib.suppress(FileNotFoundError):
                (self.directory / item.name).replace(self.rejected / item.name)

        await asyncio.to_thread(move)
        self._discard(item.name)
        log.error(
            "batch rejected by the core batch=%s reason=%s kept=%s",
            item.batch_id,
            reason,
            self.rejected / item.name,
        )

    def _discard(self, name: str) -> None:
        if self._names and self._names[0] == name:
            self._names.popleft()  # the usual case, O(1) even with a long backlog
            return
        with contextlib.suppress(ValueError):
            self._names.remove(name)


class MemorySpool:
    """The same contract in memory, for the core's in-process agent (its store is local)."""

    def __init__(self, *, max_batches: int = DEFAULT_MAX_BATCHES) -> None:
        self._items: deque[Spooled] = deque()
        self._max = max_batches
        self._seq = 0

    def __len__(self) -> int:
        return len(self._items)

    async def put(self, batch_id: str, body: bytes) -> None:
        self._seq += 1
        self._items.append(Spooled(f"{self._seq:020d}", batch_id, body))
        while len(self._items) > self._max:
            dropped = self._items.popleft()
            log.error("spool full, dropping the oldest batch batch=%s", dropped.batch_id)

    async def oldest(self) -> Spooled | None:
        return self._items[0] if self._items else None

    async def done(self, item: Spooled) -> None:
        if self._items and self._items[0] is item:
            self._items.popleft()
            return
        with contextlib.suppress(ValueError):
            self._items.remove(item)

    async def reject(self, item: Spooled, reason: str) -> None:
        log.error("batch rejected batch=%s reason=%s", item.batch_id, reason)
        await self.done(item)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

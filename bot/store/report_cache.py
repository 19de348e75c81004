"""Report counts the verdict already read, kept on the store's worker thread between verdicts.

During a large outage one verdict sums about 870 per-minute rollup rows and counts a few hundred
raw rows at the cut edge of its 30-minute window: 1-1.5 ms of SQL for every question about the
outage service (the verdict benchmark's svc0042 missed its 5 ms p99 target by that much), while
hundreds of people ask about that service and nothing but its newest minute changes. So the
store remembers the result of each of those queries, per service, under the span of time it was
counted over, and asks SQL again only once something in that span changed. A first read costs
what it did without the cache.

Kept exact, never merely "fresh enough":

- Writes through this connection: temporary triggers on ``report_minutes`` and ``report_hours``
  forget every result whose span covers the minute (or hour) of a changed row, inside the
  writing statement. Every change to counted reports changes that minute's rollup (inserts,
  imports, their abort, a tenant's service deleted by cascade), so the triggers see them all,
  whichever code path wrote; a write that is rolled back afterwards only costs a re-read.
- Writes by any other connection or process (``outagebot import`` beside the bot, an operator's
  sqlite3 shell): ``PRAGMA data_version`` changes, checked inside the verdict's own read
  transaction, and then everything is dropped.

The triggers are created by the first verdict, so a process that never asks for one (the CLI
import) pays nothing on its writes. The cache is touched only by the thread holding the store's
connection (its worker thread, or the event loop for a warm read, ``bot.store.inline``), one at a
time, so it needs no lock of its own.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

Counts = dict[tuple[str, str], int]  # counted reports per (region, problem)
History = dict[str, tuple[int, ...]]  # counted reports per region, one per previous day
V = TypeVar("V")

log = logging.getLogger(__name__)

DAY = 86_400
# Bounds on memory. Per service a verdict remembers four spans (the two edges of its window, its
# whole minutes and its newest minute), a little more while "now" moves on or someone asks about
# a past moment; services beyond MAX_SERVICES, least recently asked first, are dropped.
MAX_SERVICES = 2000
MAX_SPANS = 8
MAX_HISTORIES = 2

# SQLite calls these back from the triggers, with (service_id, minute or hour) of a changed row.
_FORGET_MINUTE = "outagebot_report_minute_changed"
_FORGET_HOUR = "outagebot_report_hour_changed"


def _triggers(table: str, column: str, function: str) -> list[str]:
    # Rows are only ever updated in place (n), but forgetting the old key too costs nothing.
    bodies = {
        "INSERT": f"SELECT {function}(NEW.service_id, NEW.{column});",
        "UPDATE": f"SELECT {function}(OLD.service_id, OLD.{column}), "
        f"{function}(NEW.service_id, NEW.{column});",
        "DELETE": f"SELECT {function}(OLD.service_id, OLD.{column});",
    }
    return [
        f"CREATE TEMP TRIGGER IF NOT EXISTS {table}_cache_{event.lower()} "
        f"AFTER {event} ON main.{table} BEGIN {body} END"
        for event, body in bodies.items()
    ]


_TRIGGERS = (
    *_triggers("report_minutes", "minute", _FORGET_MINUTE),
    *_triggers("report_hours", "hour", _FORGET_HOUR),
)


class NotCached(Exception):
    """A result was not remembered, inside ``ReportCache.remembered_only``."""


@dataclass(slots=True)
class _Service:
    """Results for one service; every one is exact for the committed state."""

    # (first, last second, both inclusive) -> counts of the reports with at in that span.
    counts: dict[tuple[int, int], Counts] = field(default_factory=dict)
    # (hour, days) -> the same-hour history of the ``days`` days before ``hour``.
    history: dict[tuple[int, int], History] = field(default_factory=dict)


class ReportCache:
    """Per-service results of the verdict's report queries for one connection (module docstring).

    Results are shared between callers: never modify one.
    """

    def __init__(self, max_services: int = MAX_SERVICES) -> None:
        self._max_services = max_services
        self._services: OrderedDict[int, _Service] = OrderedDict()
        self._conn: sqlite3.Connection | None = None
        self._data_version: int | None = None
        self._refused = False  # attach failed once already: warned
        self._remembered_only = False

    def attach(self, conn: sqlite3.Connection) -> bool:
        """Watch this connection's writes (once; call outside any transaction).

        False if SQLite refused the triggers (``PRAGMA query_only`` refuses even temporary
        ones): the caller then reads without the cache, exactly as before, and tries again
        next time.
        """
        if self._conn is conn:
            return True
        if self._conn is not None:
            raise ValueError("a ReportCache belongs to one connection")
        conn.create_function(_FORGET_MINUTE, 2, self._forget_minute, deterministic=False)
        conn.create_function(_FORGET_HOUR, 2, self._forget_hour, deterministic=False)
        try:
            for sql in _TRIGGERS:
                conn.execute(sql)
        except sqlite3.OperationalError as exc:
            if not self._refused:
                log.warning("report cache off: SQLite refused its triggers (%s)", exc)
            self._refused = True
            return False
        self._conn = conn
        self.clear()
        return True

    def attached(self, conn: sqlite3.Connection) -> bool:
        """Whether this cache already watches ``conn``'s writes."""
        return self._conn is conn

    @contextlib.contextmanager
    def remembered_only(self) -> Iterator[None]:
        """Inside, a result not remembered raises ``NotCached`` instead of being computed."""
        self._remembered_only = True
        try:
            yield
        finally:
            self._remembered_only = False

    def check(self, conn: sqlite3.Connection) -> None:
        """Drop everything if another connection committed; call inside the read transaction.

        Inside a transaction ``data_version`` belongs to its snapshot, so the results computed in
        this transaction are exact for the version recorded here.
        """
        if conn is not self._conn:
            raise ValueError("attach the cache to this connection first")
        version = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._data_version:
            self.clear()
            self._data_version = version

    def clear(self) -> None:
        self._services.clear()

    def __len__(self) -> int:
        return len(self._services)

    def counts(
        self, service_id: int, first: int, last: int, compute: Callable[[], Counts]
    ) -> Counts:
        """The counted reports with first <= at <= last: remembered, else ``compute()``."""
        return _recall(
            self._entry(service_id).counts, (first, last), self._computing(compute), MAX_SPANS
        )

    def history(
        self, service_id: int, hour: int, days: int, compute: Callable[[], History]
    ) -> History:
        """The same-hour history before ``hour``: remembered, else ``compute()``."""
        return _recall(
            self._entry(service_id).history, (hour, days), self._computing(compute), MAX_HISTORIES
        )

    def _computing(self, compute: Callable[[], V]) -> Callable[[], V]:
        return _not_cached if self._remembered_only else compute

    def _entry(self, service_id: int) -> _Service:
        entry = self._services.get(service_id)
        if entry is None:
            entry = self._services[service_id] = _Service()
            if len(self._services) > self._max_services:
                self._services.popitem(last=False)
        else:
            self._services.move_to_end(service_id)
        return entry

    # Called by SQLite from the triggers, once per changed row: keep them cheap, never raise.

    def _forget_minute(self, service_id: int, minute: int) -> None:
        try:
            entry = self._services.get(service_id)
            if entry is not None and entry.counts:
                end = minute + 59
                for span in [s for s in entry.counts if s[0] <= end and minute <= s[1]]:
                    del entry.counts[span]
        except Exception:
            # Raised into SQLite, it would fail the user's write (a chat report): forget all.
            log.exception("report cache: forgetting everything")
            self.clear()

    def _forget_hour(self, service_id: int, hour: int) -> None:
        try:
            entry = self._services.get(service_id)
            if entry is not None and entry.history:
                for key in [k for k in entry.history if _has_slot(k, hour)]:
                    del entry.history[key]
        except Exception:
            log.exception("report cache: forgetting everything")
            self.clear()


def _recall(
    results: dict[tuple[int, int], V], key: tuple[int, int], compute: Callable[[], V], limit: int
) -> V:
    found = results.get(key)
    if found is None:
        found = compute()
        if len(results) >= limit:  # the oldest goes first: "now" has moved on from it
            del results[next(iter(results))]
        results[key] = found
    return found


def _not_cached() -> NoReturn:
    raise NotCached


def _has_slot(key: tuple[int, int], hour: int) -> bool:
    """Whether the history ``key`` (hour, days) reads ``hour``: the same hour, 1..days before."""
    at, days = key
    before = at - hour
    return before % DAY == 0 and 1 <= before // DAY <= days

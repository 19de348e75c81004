"""Short reads the event loop runs itself instead of handing them to the store's worker thread.

A verdict whose report counts are already in the report cache (``bot.store.report_cache``) is
about 0.3 ms of SQL: nine short statements, about 700 SQLite steps. Handing it to the worker
thread adds two thread wake-ups (the worker's, then the loop's), and on a virtual machine a
wake-up of a thread whose vCPU sits idle waits for the hypervisor: usually tens of microseconds,
now and then 3-6 ms. Those stray stalls, not SQL, were the slowest verdicts (the verdict
benchmark in benchmarks/RESULTS.md). So ``Store.evidence`` first tries the read here, on the
calling thread, and hands it to the worker thread instead whenever it cannot be done quickly:

- the connection is not free: the worker thread is using it, or has jobs queued (a read must
  not overtake a write submitted before it), or a transaction is open. The loop never waits;
- a report count is not in the cache (a cold read sums rollup rows, milliseconds in an outage);
- SQLite would have to wait for a lock: ``busy_timeout`` is 0 for the read, so it fails at once;
- a statement runs past the budget: a progress handler interrupts it.

The budget bounds long queries, not every microsecond. SQLite calls the handler each time a
statement's step count (kept over the statement's lifetime, as Python reuses prepared
statements) passes a multiple of ``every``: a statement that runs long is interrupted within
``every`` steps of passing the budget, while a read of short statements, like the warm read, may
finish without being checked at all (its size bounds it). A step that waits for the disk cannot
be interrupted; the wall-time budget only stops a read that keeps going after such a wait.
(Callers reading many services in a row, like the incident pass, still give the loop its turn
between reads: ``VerdictService`` runs each verdict in a task of its own.)

A read given up writes nothing and caches nothing from its partial results, and the connection
leaves it outside any transaction, with its busy timeout and no progress handler; the worker
thread then does the whole read.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bot.store.connection import BUSY_TIMEOUT_MS
from bot.store.report_cache import NotCached

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InlineBudget:
    """How much a statement run on the event loop may cost before the read is handed over.

    ``cpu_ms`` bounds the work (a 0.3 ms read has plenty of room), ``wall_ms`` the time including
    waits. SQLite checks them every ``every`` steps of a statement (a few microseconds of work);
    a check costs a clock read.
    """

    cpu_ms: float = 2.0
    wall_ms: float = 10.0
    every: int = 100


@dataclass(slots=True)
class InlineStats:
    """How evidence reads went; in the verdict benchmark's facts and in tests."""

    inline: int = 0  # done on the calling thread
    busy: int = 0  # the connection was not free (worker, queued jobs, a transaction, closed)
    cold: int = 0  # a report count was not in the cache, or the cache was not set up yet
    refused: int = 0  # over budget, a lock it would have waited for, or another OperationalError


def read_inline(
    conn: sqlite3.Connection,
    read: Callable[[sqlite3.Connection], T],
    budget: InlineBudget,
    stats: InlineStats,
) -> T | None:
    """``read(conn)`` within ``budget``, or None if it could not be done so (module docstring).

    The caller holds the connection (no other thread uses it meanwhile) and ``read`` raises
    ``NotCached`` instead of computing a missing report count.
    """
    start = time.perf_counter_ns()
    cpu_ns, wall_ns = int(budget.cpu_ms * 1e6), int(budget.wall_ms * 1e6)
    cpu_start = time.thread_time_ns()

    def over_budget() -> bool:
        elapsed = time.perf_counter_ns() - start
        # A thread uses at most as much CPU as wall time passes, so the CPU clock (a system
        # call, where the wall clock is not) is read only once the wall time could exceed it.
        if elapsed <= cpu_ns:
            return False
        return elapsed > wall_ns or time.thread_time_ns() - cpu_start > cpu_ns

    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.set_progress_handler(over_budget, budget.every)
        try:
            found = read(conn)
        finally:
            conn.set_progress_handler(None, 0)
            # The read's own COMMIT may have been interrupted too: never leave a transaction open.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
    except NotCached:
        stats.cold += 1
        return None
    except sqlite3.OperationalError:
        # "interrupted" (over budget) or "database is locked" (a lock we would have waited for).
        # Anything else fails the same way on the worker thread, which then raises it.
        stats.refused += 1
        return None
    finally:
        # Whatever happened above: the worker thread's writes must wait for locks again.
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    stats.inline += 1
    return found

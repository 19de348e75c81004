"""Short reads the event loop runs itself instead of handing them to the store's worker thread.

A verdict whose report counts are already in the report cache (``bot.store.report_cache``) is
about 0.3 ms of SQL: a handful of indexed lookups. Handing it to the worker thread adds two
thread wake-ups (the worker's, then the loop's), and on a virtual machine a wake-up of a thread
whose vCPU sits idle waits for the hypervisor: usually tens of microseconds, now and then 3-6 ms.
Those stray stalls, not SQL, were the slowest verdicts (the verdict benchmark in
benchmarks/RESULTS.md). So ``Store.evidence`` first tries the read here, on the calling thread,
and hands it to the worker thread, exactly as before, whenever it cannot be done quickly:

- the worker thread is using the connection (a write, or another read, is under way): the loop
  never waits for it;
- a report count is not in the cache (a cold read sums rollup rows, milliseconds in an outage);
- SQLite would have to wait for a lock: ``busy_timeout`` is 0 for the read, so it fails at once;
- the read takes more than its budget (CPU time, or wall time for I/O): a progress handler
  interrupts it.

The event loop therefore never blocks on a long query: at most on one budget's worth of a short
one. (Callers reading many services in a row, like the incident pass, still give the loop its
turn between reads: ``VerdictService`` runs each verdict in a task of its own.)

A read given up writes nothing and caches nothing from its partial results, and the connection
leaves it outside any transaction, with its busy timeout and no progress handler.
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
    """How much a read on the event loop may cost before it is handed to the worker thread.

    ``cpu_ms`` bounds the work (a 0.3 ms read has plenty of room); ``wall_ms`` bounds time spent
    waiting for the disk, which costs no CPU. SQLite checks them every ``every`` virtual-machine
    steps (about 20-100 µs of work): checking costs a clock read each time.
    """

    cpu_ms: float = 2.0
    wall_ms: float = 10.0
    every: int = 1000


@dataclass(slots=True)
class InlineStats:
    """How evidence reads went; in the verdict benchmark's facts and in tests."""

    inline: int = 0  # done on the calling thread
    busy: int = 0  # the worker thread had the connection
    cold: int = 0  # a report count was not in the cache
    interrupted: int = 0  # over budget, or SQLite would have waited for a lock


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
    conn.set_progress_handler(over_budget, budget.every)
    try:
        found = read(conn)
    except NotCached:
        stats.cold += 1
        return None
    except sqlite3.OperationalError:
        # "interrupted" (over budget) or "database is locked" (a lock we would have waited for).
        # Anything else fails the same way on the worker thread, which then raises it.
        stats.interrupted += 1
        return None
    finally:
        # The read's own COMMIT may have been interrupted too: never leave a transaction open.
        conn.set_progress_handler(None, 0)
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    stats.inline += 1
    return found

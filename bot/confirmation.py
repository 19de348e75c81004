"""The failure-confirmation state machine for one target in one region.

N consecutive failures open "failing", M consecutive successes close it (gatus uses 3 and 2), so
a target that fails one probe in ten never opens anything, and a recovering one does not flap.
"""

from __future__ import annotations

from collections.abc import Iterable


def confirmed_failing(results: Iterable[bool], *, failures: int, successes: int) -> bool:
    """Replay ``results`` (True = probe passed), oldest first; return whether it ends failing."""
    failing = False
    run = 0
    for ok in results:
        # Count the streak that would flip the current state; anything else resets it.
        run = run + 1 if ok == failing else 0
        if (failing and run >= successes) or (not failing and run >= failures):
            failing = not failing
            run = 0
    return failing

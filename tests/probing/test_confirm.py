"""The confirmation state machine: N failures open, M passes close, first failure is a suspicion."""

from __future__ import annotations

import pytest

from bot.probes.base import Outcome, Reason
from bot.probing.confirm import Change, Confirmer
from bot.probing.tasks import ProbeRecord


def feed(confirmer: Confirmer, pattern: str, *, region: str = "US", start: int = 0) -> list[str]:
    """Feed '.' (pass) and 'x' (fail) results; return the change names in order."""
    changes = []
    for i, ch in enumerate(pattern):
        ok = ch == "."
        outcome = Outcome(ok, 200 if ok else 503, 50.0, None if ok else Reason.STATUS)
        t = confirmer.observe(ProbeRecord("svc", "web", region, start + i * 1000, outcome))
        if t is not None:
            changes.append(t.change.value)
    return changes


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("....", []),
        ("x..", ["suspect"]),
        ("xxx", ["suspect", "opened"]),
        ("xx.xx.", ["suspect", "suspect"]),  # never three in a row
        ("xxx.x..", ["suspect", "opened", "closed"]),  # a pass then a fail resets recovery
        ("xxx..xxx", ["suspect", "opened", "closed", "suspect", "opened"]),
        (".........x" * 5, ["suspect"] * 5),  # one in ten fails: never opens
    ],
)
def test_transitions(pattern: str, expected: list[str]) -> None:
    assert feed(Confirmer(failures=3, successes=2), pattern) == expected


def test_regions_are_independent() -> None:
    c = Confirmer(failures=2, successes=2)
    assert feed(c, "xx", region="JP") == ["suspect", "opened"]
    assert feed(c, "..", region="US") == []
    assert c.failing() == {("svc", "web", "JP")}


def test_out_of_order_results_are_ignored() -> None:
    c = Confirmer(failures=2, successes=2)
    feed(c, "x", start=10_000)
    assert feed(c, "x", start=0) == []  # older than what was seen
    assert feed(c, "x", start=11_000) == ["opened"]
    assert Change.OPENED.value == "opened"

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


async def test_inside_the_cooldown_only_the_failing_region_rechecks() -> None:
    from bot.model import Target
    from bot.probing.coordinator import ProbeCoordinator, RecheckPolicy
    from bot.probing.tasks import ProbeTask

    task = ProbeTask("svc", Target("web", "https://svc.invalid/"), 60)
    asked: list[tuple[tuple[str, ...], tuple[str, ...] | None]] = []

    async def hub(ids, times, spacing, regions):  # the agent hub's side of the wire
        asked.append((tuple(ids), None if regions is None else tuple(regions)))

    now = [0.0]
    coordinator = ProbeCoordinator(
        Confirmer(failures=3, successes=2),
        {task.id: task},
        policy=RecheckPolicy(cooldown=60.0),
        remote=hub,
        clock=lambda: now[0],
    )
    fail = Outcome(False, 503, 10.0, Reason.STATUS)
    await coordinator.on_results([ProbeRecord("svc", "web", "JP", 1, fail)])
    now[0] = 30.0  # within the cooldown, another region's first failure
    await coordinator.on_results([ProbeRecord("svc", "web", "GB", 2, fail)])
    await coordinator.drain()
    assert asked == [(("probe:svc:web",), None), (("probe:svc:web",), ("GB",))]

"""Incidents from real verdicts over a real store: open, update, flap suppression, resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import parse_settings
from bot.incidents import IncidentPolicy, IncidentTracker
from bot.model import Catalog, Service, Target, to_epoch
from bot.store import ImportBatch, ProbeRow, ReportRow, Store
from bot.verdicts import VerdictService

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SVC = Service("acme", "Acme", (), (Target("web", "https://acme.invalid/"),))
CATALOG = Catalog((SVC,))
REGIONS = ("US", "JP", "GB")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def world(tmp_path: Path):
    settings = parse_settings({"reports": {"min_reports": 5}})
    store = await Store.open(tmp_path / "i.db", CATALOG)
    clock = Clock()
    tracker = IncidentTracker(
        store,
        VerdictService(store, settings),
        lambda: CATALOG.services,
        policy=IncidentPolicy(open_after=2, resolve_after=timedelta(minutes=10)),
        clock=clock,
    )
    yield store, clock, tracker
    await store.close()


async def probes(store: Store, at: datetime, ok: bool, regions: tuple[str, ...] = REGIONS) -> None:
    """Three probes per region in the 90 s before ``at``: enough to confirm either way."""
    sid = store.service_id("acme")
    assert sid is not None
    t = to_epoch(at)
    batch = ImportBatch()
    batch.probes = [
        ProbeRow(sid, "web", r, (t - k * 30) * 1000, ok, 200 if ok else 503, 80.0, None)
        for r in regions
        for k in range(3)
    ]
    await store.import_batch(batch, 3600)


async def test_an_outage_opens_once_updates_and_resolves_after_quiet(world) -> None:  # type: ignore[no-untyped-def]
    store, clock, tracker = world
    await probes(store, clock.now, ok=False)
    (opened,) = await tracker.run_pass()
    assert opened.kind == "open" and opened.verdict.category.value == "down"
    assert not opened.suppressed
    assert await tracker.run_pass() == []  # the same picture is not news

    # Japan recovers: what subscribers read changed, so it is an update of the same incident.
    clock.now += timedelta(minutes=2)
    await probes(store, clock.now, ok=False, regions=("US", "GB"))
    await probes(store, clock.now, ok=True, regions=("JP",))
    (updated,) = await tracker.run_pass()
    assert updated.kind == "update" and updated.incident_id == opened.incident_id
    assert updated.verdict.category.value in ("down", "regional")

    # Everything passes: quiet, but not resolved before resolve_after.
    clock.now += timedelta(minutes=2)
    await probes(store, clock.now, ok=True)
    assert await tracker.run_pass() == []
    clock.now += timedelta(minutes=5)
    await probes(store, clock.now, ok=True)
    assert await tracker.run_pass() == []
    clock.now += timedelta(minutes=6)
    await probes(store, clock.now, ok=True)
    (resolved,) = await tracker.run_pass()
    assert resolved.kind == "resolve" and resolved.incident_id == opened.incident_id
    assert await store.open_incidents() == []
    (row,) = await store.incidents_between(T0, clock.now + timedelta(seconds=1))
    assert row.resolved_at == to_epoch(clock.now) and row.opened_at == to_epoch(T0)


async def test_a_flapping_target_stays_one_incident(world) -> None:  # type: ignore[no-untyped-def]
    store, clock, tracker = world
    opened_ids = set()
    for minute in range(0, 40, 4):
        clock.now = T0 + timedelta(minutes=minute)
        await probes(store, clock.now, ok=(minute // 4) % 2 == 1)
        for change in await tracker.run_pass():
            assert change.kind != "resolve"
            opened_ids.add(change.incident_id)
    assert len(opened_ids) == 1
    assert len(await store.open_incidents()) == 1


async def test_user_reports_must_persist_for_two_passes(world) -> None:  # type: ignore[no-untyped-def]
    store, clock, tracker = world
    sid = store.service_id("acme")
    assert sid is not None
    await probes(store, clock.now, ok=True)
    t = to_epoch(clock.now)
    batch = ImportBatch()
    batch.reports = [
        ReportRow(sid, t - i, "US", "website", "import", "", f"u{i}") for i in range(60)
    ]
    await store.import_batch(batch, 3600)
    assert await tracker.run_pass() == []  # once could be noise
    (opened,) = await tracker.run_pass()
    assert opened.kind == "open" and opened.verdict.category.value == "user_reports"


async def test_quiet_time_survives_a_restart(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store, clock, tracker = world
    await probes(store, clock.now, ok=False)
    (opened,) = await tracker.run_pass()
    clock.now += timedelta(minutes=1)
    await probes(store, clock.now, ok=True)
    assert await tracker.run_pass() == []  # quiet since now
    settings = parse_settings({})
    restarted = IncidentTracker(
        store,
        VerdictService(store, settings),
        lambda: CATALOG.services,
        policy=IncidentPolicy(resolve_after=timedelta(minutes=10)),
        clock=clock,
    )
    clock.now += timedelta(minutes=10, seconds=30)
    await probes(store, clock.now, ok=True)
    (resolved,) = await restarted.run_pass()
    assert resolved.kind == "resolve" and resolved.incident_id == opened.incident_id

"""The verdict service over a real store: identical concurrent questions share one computation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import parse_settings
from bot.model import Catalog, Service, Target, to_epoch
from bot.store import ImportBatch, ReportRow, Store
from bot.verdicts import VerdictService

AT = datetime(2026, 3, 2, 12, 0, 0, 250_000, tzinfo=UTC)
SVC = Service("acme", "Acme", (), (Target("web", "https://acme.invalid/"),))
OTHER = Service("other", "Other", (), (Target("web", "https://other.invalid/"),))
CATALOG = Catalog((SVC, OTHER))


async def open_service(tmp_path: Path) -> tuple[Store, VerdictService]:
    store = await Store.open(tmp_path / "v.db", CATALOG)
    sid = store.service_id("acme")
    assert sid is not None
    batch = ImportBatch()
    batch.reports = [
        ReportRow(sid, to_epoch(AT) - 60 - i, "US", "website", "test", "", f"u{i}")
        for i in range(40)
    ]
    await store.import_batch(batch, 3600)
    return store, VerdictService(store, parse_settings({"reports": {"min_reports": 5}}))


async def test_concurrent_questions_in_the_same_second_share_one_answer(tmp_path: Path) -> None:
    store, verdicts = await open_service(tmp_path)
    try:
        later = AT + timedelta(milliseconds=500)  # the same second: the store counts in seconds
        answers = await asyncio.gather(
            *(verdicts.verdict(SVC, AT if i % 2 else later) for i in range(20))
        )
        assert all(a is answers[0] for a in answers)
        charts = await asyncio.gather(*(verdicts.chart(SVC, AT) for _ in range(20)))
        assert all(c is charts[0] for c in charts)
        assert sum(charts[0].reports) == 40
    finally:
        await store.close()


async def test_different_questions_and_later_questions_are_computed_anew(tmp_path: Path) -> None:
    store, verdicts = await open_service(tmp_path)
    try:
        next_second = AT + timedelta(seconds=1)
        first, other, later = await asyncio.gather(
            verdicts.verdict(SVC, AT),
            verdicts.verdict(OTHER, AT),
            verdicts.verdict(SVC, next_second),
        )
        assert first is not other and first is not later
        assert first.service == "acme" and other.service == "other"
        # Nothing is kept once the computation is done: the same question again reads the store.
        again = await verdicts.verdict(SVC, AT)
        assert again is not first and again == first
    finally:
        await store.close()


async def test_an_asker_giving_up_does_not_cancel_the_others(tmp_path: Path) -> None:
    store, verdicts = await open_service(tmp_path)
    try:
        quitter = asyncio.ensure_future(verdicts.verdict(SVC, AT))
        stayer = asyncio.ensure_future(verdicts.verdict(SVC, AT))
        await asyncio.sleep(0)
        quitter.cancel()
        answer = await stayer
        assert answer.service == "acme"
        assert quitter.cancelled()
    finally:
        await store.close()
